//! The Lua scripts of the Redis store (`lua/*.lua`, embedded), hashed once
//! per process and called by SHA.

use std::sync::LazyLock;

use redis::Script;

/// The Lua scripts, hashed once per process.
pub(super) struct Scripts {
    pub(super) hit_all: Script,
    pub(super) challenge_put: Script,
    pub(super) challenge_attempt: Script,
    pub(super) challenge_remove: Script,
    pub(super) session_create: Script,
    pub(super) session_rotate: Script,
    pub(super) revoke: Script,
    pub(super) api_key_put: Script,
    pub(super) api_key_delete: Script,
    pub(super) api_key_list: Script,
}

impl Scripts {
    pub(super) fn all(&self) -> [&Script; 10] {
        [
            &self.hit_all,
            &self.challenge_put,
            &self.challenge_attempt,
            &self.challenge_remove,
            &self.session_create,
            &self.session_rotate,
            &self.revoke,
            &self.api_key_put,
            &self.api_key_delete,
            &self.api_key_list,
        ]
    }
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    hit_all: Script::new(include_str!("lua/hit_all.lua")),
    challenge_put: Script::new(include_str!("lua/challenge_put.lua")),
    challenge_attempt: Script::new(include_str!("lua/challenge_attempt.lua")),
    challenge_remove: Script::new(include_str!("lua/challenge_remove.lua")),
    session_create: Script::new(include_str!("lua/session_create.lua")),
    session_rotate: Script::new(include_str!("lua/session_rotate.lua")),
    revoke: Script::new(include_str!("lua/revoke.lua")),
    api_key_put: Script::new(include_str!("lua/api_key_put.lua")),
    api_key_delete: Script::new(include_str!("lua/api_key_delete.lua")),
    api_key_list: Script::new(include_str!("lua/api_key_list.lua")),
});
