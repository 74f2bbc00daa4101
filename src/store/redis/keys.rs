//! The key layout of the Redis store: every key under the prefix, in a hash
//! tag that keeps the keys of one script in one cluster slot.

/// Key names under the prefix (see [`RedisStore`](super::RedisStore) for the layout).
pub(super) struct Keys {
    pub(super) prefix: String,
    /// A family's key up to its id: `{P:s:`; the id and `}` follow (the
    /// single-node session scripts build family keys from it).
    pub(super) family_prefix: String,
    pub(super) api_key_record_prefix: String,
    pub(super) api_key_index: String,
    pub(super) tenant_record_prefix: String,
    pub(super) tenant_index: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            family_prefix: format!("{{{prefix}:s:"),
            api_key_record_prefix: format!("{{{prefix}:k}}:r:"),
            api_key_index: format!("{{{prefix}:k}}:i"),
            tenant_record_prefix: format!("{{{prefix}:t}}:r:"),
            tenant_index: format!("{{{prefix}:t}}:i"),
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

    /// A session family in a slot of its own (with its revoked marker):
    /// families spread over a cluster.
    pub(super) fn family(&self, id: &str) -> String {
        format!("{}{id}}}", self.family_prefix)
    }

    /// `lib_session.lua` (`family_keys`) builds the same from
    /// `family_prefix`.
    pub(super) fn revoked(&self, id: &str) -> String {
        format!("{}{id}}}:x", self.family_prefix)
    }

    /// A subject's index of sessions, in the subject's own slot: its
    /// families live in theirs, so on a cluster the index and a family meet
    /// in no script, and the store runs such steps in order (index first).
    pub(super) fn subject(&self, subject: &str) -> String {
        format!("{{{}:u:{subject}}}", self.prefix)
    }

    pub(super) fn api_key(&self, id: &str) -> String {
        format!("{}{id}", self.api_key_record_prefix)
    }

    /// Tenant records share one slot, like API keys: listing them is one
    /// script, and there are few.
    pub(super) fn tenant(&self, id: &str) -> String {
        format!("{}{id}", self.tenant_record_prefix)
    }

    /// A tenant's counter groups share the tenant's own tag, so one script
    /// changes several groups at once and tenants spread over a cluster. The
    /// id is checked to hold no `{` or `}` (else one tenant could name
    /// another's groups).
    pub(super) fn counters(&self, tenant: &str, group: &str) -> String {
        format!("{{{}:t:{tenant}}}:c:{group}", self.prefix)
    }

    /// Each pending signup in a slot of its own: its scripts name one key.
    pub(super) fn pending(&self, key: &str) -> String {
        format!("{{{}:p:{key}}}", self.prefix)
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
        assert_eq!(k.subject("u1"), "{app:u:u1}");
        assert!(k.family("sid").starts_with(&k.family_prefix));
        assert_eq!(k.api_key("id"), "{app:k}:r:id");
        assert_eq!(k.api_key_index, "{app:k}:i");
        assert_eq!(k.tenant("acme"), "{app:t}:r:acme");
        assert_eq!(k.tenant_index, "{app:t}:i");
        assert_eq!(k.counters("acme", "d:1"), "{app:t:acme}:c:d:1");
        assert_eq!(k.pending("p"), "{app:p:p}");
        // The hash tag (first `{` to first `}`) is the same for a family's keys.
        let tag = |key: &str| {
            let start = key.find('{').unwrap_or(0);
            let end = key[start..].find('}').map_or(key.len(), |e| start + e);
            key[start..end].to_owned()
        };
        assert_eq!(tag(&k.family("a}b")), tag(&k.revoked("a}b")));
        assert_eq!(tag(&k.api_key("x")), tag(&k.api_key_index));
        assert_eq!(tag(&k.tenant("x}")), tag(&k.tenant_index));
        assert_eq!(tag(&k.counters("a", "g}{")), tag(&k.counters("a", "h")));
        assert_ne!(tag(&k.counters("a", "g")), tag(&k.counters("b", "g")));
        // No tenant record is a counter group, whatever the names.
        assert!(!k.counters("a", "g").starts_with(&k.tenant_record_prefix));
        // Every rate cell shares one tag: one hit_all may name any of them,
        // and a challenge step names them with its challenge.
        assert_eq!(tag(&k.rate("ip:a}{b")), tag(&k.rate("global")));
        assert_eq!(tag(&k.challenge("x}")), tag(&k.rate("global")));
        // No rate key names a challenge.
        assert_ne!(k.challenge("h"), k.rate("c:h"));
        assert!(!k.challenge("h").starts_with(&k.rate("")));
    }
}
