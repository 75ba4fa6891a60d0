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

/// A backend on its own 3-primary cluster; the cluster lives as long as the guard.
#[cfg(feature = "cluster")]
pub async fn cluster_backend() -> (redis_sessions::ClusterBackend, redis_harness::RedisCluster) {
    let cluster = tokio::task::spawn_blocking(redis_harness::RedisCluster::start)
        .await
        .unwrap();
    let backend = redis_sessions::ClusterBackend::connect(&cluster.urls())
        .await
        .unwrap_or_else(|e| panic!("connect to the test cluster: {e}"));
    (backend, cluster)
}

/// A backend on its own Sentinel group; the group lives as long as the guard.
#[cfg(feature = "sentinel")]
pub async fn sentinel_backend() -> (
    redis_sessions::SentinelBackend,
    redis_harness::RedisSentinelGroup,
) {
    let group = tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start)
        .await
        .unwrap();
    let sentinels = group
        .sentinel_ports()
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"));
    let backend = redis_sessions::SentinelBackend::connect(sentinels, group.master_name())
        .await
        .unwrap_or_else(|e| panic!("connect through the test sentinels: {e}"));
    (backend, group)
}

/// The conformance suite's cluster backend: `connect` with the cluster's
/// `redis+cluster://` URL, so the URL form and `AnyBackend` are what the suite runs on.
#[cfg(feature = "cluster")]
pub async fn cluster() -> (redis_sessions::AnyBackend, redis_harness::RedisCluster) {
    let cluster = tokio::task::spawn_blocking(redis_harness::RedisCluster::start)
        .await
        .unwrap();
    let backend = redis_sessions::connect(&cluster.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", cluster.url()));
    assert!(matches!(backend, redis_sessions::AnyBackend::Cluster(_)));
    (backend, cluster)
}

/// The conformance suite's sentinel backend, through a `redis+sentinel://` URL.
#[cfg(feature = "sentinel")]
pub async fn sentinel() -> (
    redis_sessions::AnyBackend,
    redis_harness::RedisSentinelGroup,
) {
    let group = tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start)
        .await
        .unwrap();
    let backend = redis_sessions::connect(&group.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", group.url()));
    assert!(matches!(backend, redis_sessions::AnyBackend::Sentinel(_)));
    (backend, group)
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

/// What a store without id hashing lists for these ids.
pub fn listed<'a>(ids: impl IntoIterator<Item = &'a SessionId>) -> Vec<redis_sessions::StoredId> {
    ids.into_iter()
        .map(|id| redis_sessions::IdHashing::Off.stored_id(id))
        .collect()
}
