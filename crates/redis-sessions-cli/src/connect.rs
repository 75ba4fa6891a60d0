//! From a URL to a backend. The one place that knows deployment forms: cluster and Sentinel URLs
//! are to be added here, and the rest of the CLI only sees [`Conn`].

use anyhow::Context as _;
use redis_sessions::RedisBackend;

/// The backend every command works on.
pub(crate) type Conn = RedisBackend;

/// Connects to the deployment `url` names (today a single server: `redis://`, `rediss://`).
pub(crate) async fn connect(url: &str) -> anyhow::Result<Conn> {
    RedisBackend::connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))
}

/// `url` with its password replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if userinfo.is_empty() => String::new(),
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://user:secret@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(redact("rediss://:secret@host"), "rediss://:***@host");
        assert_eq!(redact("redis://secret@host"), "redis://***@host");
        assert_eq!(redact("not a url"), "not a url");
    }
}
