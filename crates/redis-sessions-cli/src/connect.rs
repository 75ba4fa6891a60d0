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
        .with_context(|| format!("cannot connect to {}", redis_sessions::redact_url(url)))
}
