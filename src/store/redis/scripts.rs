//! The Lua scripts of the Redis store (`lua/*.lua`, embedded), hashed once
//! per process and called by SHA. A script that shares logic with another
//! is its `lib_*.lua` functions followed by its own body.

use std::sync::LazyLock;

use redis::Script;

/// The Lua scripts, hashed once per process.
pub(super) struct Scripts {
    pub(super) hit_all: Script,
    pub(super) challenge_put: Script,
    pub(super) challenge_attempt: Script,
    pub(super) challenge_remove: Script,
    pub(super) challenge_consume: Script,
    pub(super) session_create: Script,
    pub(super) session_index_add: Script,
    pub(super) session_start: Script,
    pub(super) session_rotate: Script,
    pub(super) revoke: Script,
    pub(super) session_state: Script,
    pub(super) session_end: Script,
    pub(super) session_list: Script,
    pub(super) session_revoke: Script,
    pub(super) session_revoke_subject: Script,
    pub(super) api_key_put: Script,
    pub(super) api_key_delete: Script,
    pub(super) api_key_list: Script,
    pub(super) tenant_create: Script,
    pub(super) tenant_update: Script,
    pub(super) tenant_list: Script,
    pub(super) counters_add: Script,
    pub(super) counters_get: Script,
    pub(super) pending_put: Script,
    pub(super) pending_take: Script,
}

impl Scripts {
    pub(super) fn all(&self) -> [&Script; 25] {
        [
            &self.hit_all,
            &self.challenge_put,
            &self.challenge_attempt,
            &self.challenge_remove,
            &self.challenge_consume,
            &self.session_create,
            &self.session_index_add,
            &self.session_start,
            &self.session_rotate,
            &self.revoke,
            &self.session_state,
            &self.session_end,
            &self.session_list,
            &self.session_revoke,
            &self.session_revoke_subject,
            &self.api_key_put,
            &self.api_key_delete,
            &self.api_key_list,
            &self.tenant_create,
            &self.tenant_update,
            &self.tenant_list,
            &self.counters_add,
            &self.counters_get,
            &self.pending_put,
            &self.pending_take,
        ]
    }
}

/// `script!("name" with "lib", …)`: `lua/lib_<lib>.lua` for each lib, then
/// `lua/<name>.lua`, as one script.
macro_rules! script {
    ($body:literal $(with $($lib:literal),+)?) => {
        Script::new(concat!(
            $($(include_str!(concat!("lua/lib_", $lib, ".lua")),)+)?
            include_str!(concat!("lua/", $body, ".lua"))
        ))
    };
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    hit_all: script!("hit_all" with "rate"),
    challenge_put: script!("challenge_put" with "rate"),
    challenge_attempt: script!("challenge_attempt" with "rate"),
    challenge_remove: script!("challenge_remove" with "challenge"),
    challenge_consume: script!("challenge_consume" with "challenge", "session"),
    session_create: script!("session_create" with "session"),
    session_index_add: script!("session_index_add" with "session"),
    session_start: script!("session_start" with "session"),
    session_rotate: script!("session_rotate" with "session"),
    revoke: script!("revoke" with "session"),
    session_state: script!("session_state" with "session"),
    session_end: script!("session_end" with "session"),
    session_list: script!("session_list" with "session"),
    session_revoke: script!("session_revoke" with "session"),
    session_revoke_subject: script!("session_revoke_subject" with "session"),
    api_key_put: script!("api_key_put"),
    api_key_delete: script!("api_key_delete"),
    api_key_list: script!("api_key_list"),
    tenant_create: script!("tenant_create"),
    tenant_update: script!("tenant_update"),
    tenant_list: script!("tenant_list"),
    counters_add: script!("counters_add"),
    counters_get: script!("counters_get"),
    pending_put: script!("pending_put"),
    pending_take: script!("pending_take"),
});
