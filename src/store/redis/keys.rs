//! The key layout of the Redis store: every key under the prefix, in a hash
//! tag that keeps the keys of one script in one cluster slot.

/// Key names under the prefix (see [`RedisStore`](super::RedisStore) for the layout).
pub(super) struct Keys {
    pub(super) prefix: String,
    pub(super) api_key_record_prefix: String,
    pub(super) api_key_index: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            api_key_record_prefix: format!("{{{prefix}:k}}:r:"),
            api_key_index: format!("{{{prefix}:k}}:i"),
        }
    }

    /// Every rate cell shares the hash tag `{P:r}`: the limits of one
    /// request (per identifier, per IP, the global budget…) are decided in
    /// one script, so on a cluster they must share one slot, and a global
    /// budget key meets every other key.
    pub(super) fn rate(&self, key: &str) -> String {
        format!("{{{}:r}}:{key}", self.prefix)
    }

    /// Challenges share the rate cells' tag: a code request decides its
    /// limits and puts its challenge in one script. `c:` right after the tag
    /// (where a rate cell has `:`) keeps every challenge apart from every
    /// rate key.
    pub(super) fn challenge(&self, key: &str) -> String {
        format!("{{{}:r}}c:{key}", self.prefix)
    }

    pub(super) fn family(&self, id: &str) -> String {
        format!("{{{}:s:{id}}}", self.prefix)
    }

    pub(super) fn revoked(&self, id: &str) -> String {
        format!("{{{}:s:{id}}}:x", self.prefix)
    }

    pub(super) fn api_key(&self, id: &str) -> String {
        format!("{}{id}", self.api_key_record_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_a_slot_per_family() {
        let k = Keys::new("app");
        assert_eq!(k.rate("h"), "{app:r}:h");
        assert_eq!(k.challenge("h"), "{app:r}c:h");
        assert_eq!(k.family("sid"), "{app:s:sid}");
        assert_eq!(k.revoked("sid"), "{app:s:sid}:x");
        assert_eq!(k.api_key("id"), "{app:k}:r:id");
        assert_eq!(k.api_key_index, "{app:k}:i");
        // The hash tag (first `{` to first `}`) is the same for a family's keys.
        let tag = |key: &str| {
            let start = key.find('{').unwrap_or(0);
            let end = key[start..].find('}').map_or(key.len(), |e| start + e);
            key[start..end].to_owned()
        };
        assert_eq!(tag(&k.family("a}b")), tag(&k.revoked("a}b")));
        assert_eq!(tag(&k.api_key("x")), tag(&k.api_key_index));
        // Every rate cell shares one tag: one hit_all may name any of them,
        // and a challenge step names them with its challenge.
        assert_eq!(tag(&k.rate("ip:a}{b")), tag(&k.rate("global")));
        assert_eq!(tag(&k.challenge("x}")), tag(&k.rate("global")));
        // No rate key names a challenge.
        assert_ne!(k.challenge("h"), k.rate("c:h"));
        assert!(!k.challenge("h").starts_with(&k.rate("")));
    }
}
