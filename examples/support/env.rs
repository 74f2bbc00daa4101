//! Settings from the environment, for the reference servers
//! (`examples/production.rs`, `examples/multi_tenant.rs`): each documents
//! its variables in a table at the top.

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A setting from the environment, or its default.
pub(crate) fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A setting that must be there.
pub(crate) fn required(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| {
        format!("{name} must be set (see the table at the top of the example's source)").into()
    })
}

/// A setting parsed, or its default parsed.
pub(crate) fn parsed<T: std::str::FromStr>(name: &str, default: &str) -> Result<T, BoxError> {
    env_or(name, default)
        .parse()
        .map_err(|_| format!("{name} is not valid").into())
}
