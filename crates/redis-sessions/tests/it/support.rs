//! Fixtures shared by the integration tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis_harness::RedisServer;
use redis_sessions::{Backend, KeyTtl, MemoryBackend, RedisBackend, Session, SessionId};

/// Something that keeps a backend's server alive for the length of a test.
pub type Guard = Option<RedisServer>;

pub async fn memory() -> (MemoryBackend, Guard) {
    (MemoryBackend::new(), None)
}

pub async fn redis() -> (RedisBackend, Guard) {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to the test server: {e}"));
    (backend, Some(server))
}

/// A plain `MultiplexedConnection` (no reconnects) with explicit timeouts.
pub async fn redis_multiplexed() -> (RedisBackend<redis::aio::MultiplexedConnection>, Guard) {
    let server = RedisServer::start();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    let conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    (RedisBackend::new(conn), Some(server))
}

pub fn id() -> SessionId {
    SessionId::generate().unwrap()
}

pub fn session(n: i64) -> Session {
    let mut s = Session::new();
    s.insert("n", n).unwrap();
    s.insert("user", format!("user-{n}")).unwrap();
    s
}

/// `secs` from now, at millisecond precision (what the stored expiry keeps).
pub fn in_secs(secs: u64) -> SystemTime {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(now.as_millis() as u64 + secs * 1000)
}

/// The remaining TTL of `key`, which must exist and expire.
pub async fn ttl_of<B: Backend>(backend: &B, key: &str) -> Duration {
    match backend.pttl(key).await.unwrap() {
        KeyTtl::Expires(d) => d,
        other => panic!("expected an expiring key, got {other:?}"),
    }
}
