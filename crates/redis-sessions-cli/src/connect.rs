//! From a URL to a backend: the library's one deployment description (`redis://`, `rediss://`,
//! `redis+cluster://`, `redis+sentinel://`); the rest of the CLI only sees [`Conn`].

use anyhow::Context as _;
use redis_sessions::AnyBackend;

/// The backend every command works on.
pub(crate) type Conn = AnyBackend;

/// Connects to the deployment `url` names.
pub(crate) async fn connect(url: &str) -> anyhow::Result<Conn> {
    redis_sessions::connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redis_sessions::redact_url(url)))
}
