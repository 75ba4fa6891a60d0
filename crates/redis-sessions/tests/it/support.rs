//! Fixtures shared by the integration tests.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_harness::{Connection, RedisServer};
use redis_sessions::{Backend, KeyTtl, MemoryBackend, RedisBackend, Session, SessionId};

#[cfg(feature = "cluster")]
pub use crate::acl::cluster_acl;
pub use crate::acl::redis_acl;
#[cfg(feature = "sentinel")]
pub use crate::acl::sentinel_acl;

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

/// A TLS server whose [`Deployment::url`] is its `rediss://` URL with the test CA as a URL
/// option (the harness's own commands use its plain port).
#[cfg(feature = "tls")]
pub struct TlsServer(pub RedisServer);

/// A `rediss://` backend: the CA given through [`redis_sessions::RedisConfig::tls`].
#[cfg(feature = "tls")]
pub async fn redis_tls() -> (RedisBackend, TlsServer) {
    let server = RedisServer::start_tls();
    let certs = redis_harness::TlsCerts::get();
    let config = redis_sessions::RedisConfig {
        tls: redis_sessions::TlsConfig::new().ca_pem(certs.pem("ca.crt")),
        ..Default::default()
    };
    let backend = RedisBackend::connect_with(&server.tls_url(), config)
        .await
        .unwrap_or_else(|e| panic!("connect to the TLS test server: {e}"));
    (backend, TlsServer(server))
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

/// A TLS cluster whose [`Deployment::url`] is its `rediss+cluster://` URL with the test CA.
#[cfg(all(feature = "cluster", feature = "tls"))]
pub struct TlsCluster(pub redis_harness::RedisCluster);

/// The conformance suite's TLS cluster backend: `connect` with a `rediss+cluster://` URL and
/// its `tls_ca_file` option (TLS between the nodes too).
#[cfg(all(feature = "cluster", feature = "tls"))]
pub async fn cluster_tls() -> (redis_sessions::AnyBackend, TlsCluster) {
    let cluster = TlsCluster(
        tokio::task::spawn_blocking(redis_harness::RedisCluster::start_tls)
            .await
            .unwrap(),
    );
    let url = Deployment::url(&cluster);
    let backend = redis_sessions::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    assert!(matches!(backend, redis_sessions::AnyBackend::Cluster(_)));
    (backend, cluster)
}

#[cfg(all(feature = "cluster", feature = "tls"))]
impl Deployment for TlsCluster {
    fn url(&self) -> String {
        let ca = redis_harness::TlsCerts::get().path_str("ca.crt");
        format!("{}?tls_ca_file={ca}", self.0.tls_url())
    }
    fn primary_for(&self, key: &str) -> u16 {
        self.0.primary_for_key(key)
    }
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

/// The test CA and client certificate, for the TLS Sentinel group (it requires client
/// certificates).
#[cfg(all(feature = "sentinel", feature = "tls"))]
pub fn mutual_tls() -> redis_sessions::TlsConfig {
    let certs = redis_harness::TlsCerts::get();
    redis_sessions::TlsConfig::new()
        .ca_pem(certs.pem("ca.crt"))
        .client_cert_pem(certs.pem("client.crt"), certs.pem("client.key"))
}

/// A backend on its own TLS Sentinel group, set up in code ([`redis_sessions::SentinelConfig::tls`]).
#[cfg(all(feature = "sentinel", feature = "tls"))]
pub async fn sentinel_tls_backend() -> (
    redis_sessions::SentinelBackend,
    redis_harness::RedisSentinelGroup,
) {
    let group = tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start_tls)
        .await
        .unwrap();
    let sentinels = group
        .sentinel_tls_ports()
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"));
    let config =
        redis_sessions::SentinelConfig::new(sentinels, group.master_name()).tls(mutual_tls());
    let backend = redis_sessions::SentinelBackend::connect_with(config)
        .await
        .unwrap_or_else(|e| panic!("connect through the TLS test sentinels: {e}"));
    (backend, group)
}

/// A TLS Sentinel group whose [`Deployment::url`] is its `rediss+sentinel://` URL with the
/// test CA and client certificate as URL options.
#[cfg(all(feature = "sentinel", feature = "tls"))]
pub struct TlsSentinels(pub redis_harness::RedisSentinelGroup);

/// The conformance suite's TLS sentinel backend: `connect` with a `rediss+sentinel://` URL
/// (TLS to the sentinels, to the primary, and within the group).
#[cfg(all(feature = "sentinel", feature = "tls"))]
pub async fn sentinel_tls() -> (redis_sessions::AnyBackend, TlsSentinels) {
    let group = TlsSentinels(
        tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start_tls)
            .await
            .unwrap(),
    );
    let url = Deployment::url(&group);
    let backend = redis_sessions::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    assert!(matches!(backend, redis_sessions::AnyBackend::Sentinel(_)));
    (backend, group)
}

#[cfg(all(feature = "sentinel", feature = "tls"))]
impl Deployment for TlsSentinels {
    fn url(&self) -> String {
        let certs = redis_harness::TlsCerts::get();
        format!(
            "{}?tls_ca_file={}&tls_cert_file={}&tls_key_file={}",
            self.0.tls_url(),
            certs.path_str("ca.crt"),
            certs.path_str("client.crt"),
            certs.path_str("client.key")
        )
    }
    fn primary_for(&self, _key: &str) -> u16 {
        self.0.command_port(self.0.primary_port())
    }
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

/// The servers behind a conformance backend, for cases that hold commands at the server.
pub trait Deployment {
    /// A URL for [`redis_sessions::connect`]: a second client, with connections of its own.
    fn url(&self) -> String;
    /// The port of the primary that holds `key`.
    fn primary_for(&self, key: &str) -> u16;
}

impl Deployment for Guard {
    fn url(&self) -> String {
        self.as_ref().expect("a Redis server").url()
    }
    fn primary_for(&self, _key: &str) -> u16 {
        self.as_ref().expect("a Redis server").port()
    }
}

#[cfg(feature = "tls")]
impl Deployment for TlsServer {
    fn url(&self) -> String {
        let ca = redis_harness::TlsCerts::get().path_str("ca.crt");
        format!("{}?tls_ca_file={ca}", self.0.tls_url())
    }
    fn primary_for(&self, _key: &str) -> u16 {
        self.0.port()
    }
}

#[cfg(feature = "cluster")]
impl Deployment for redis_harness::RedisCluster {
    fn url(&self) -> String {
        redis_harness::RedisCluster::url(self)
    }
    fn primary_for(&self, key: &str) -> u16 {
        self.primary_for_key(key)
    }
}

#[cfg(feature = "sentinel")]
impl Deployment for redis_harness::RedisSentinelGroup {
    fn url(&self) -> String {
        redis_harness::RedisSentinelGroup::url(self)
    }
    fn primary_for(&self, _key: &str) -> u16 {
        self.primary_port()
    }
}

/// How long the server may take to report a held command (it is a loopback round trip).
const HOLD_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `first` and `second` truly at once, in a known order: every write is held at the
/// primary on `port` (`CLIENT PAUSE .. WRITE`), `first` is started and the server is seen
/// holding it, then `second` likewise, and only then are both let go. The server runs held
/// clients in the order they arrived, so `first`'s command runs before `second`'s, and both
/// were in flight together. Each future must send exactly one write, on connections of its own.
pub async fn held_then_run_in_order<T1, T2>(
    port: u16,
    first: impl Future<Output = T1> + Send + 'static,
    second: impl Future<Output = T2> + Send + 'static,
) -> (T1, T2)
where
    T1: Send + 'static,
    T2: Send + 'static,
{
    let control = |f: Box<dyn FnOnce(&mut Connection) + Send>, mut conn: Connection| async move {
        tokio::task::spawn_blocking(move || {
            f(&mut conn);
            conn
        })
        .await
        .unwrap()
    };
    let conn = Connection::open(port).unwrap();
    let conn = control(
        Box::new(|c| {
            let ok = c.command(&["CLIENT", "PAUSE", "20000", "WRITE"]).unwrap();
            assert_eq!(ok.text().as_deref(), Some("OK"), "{ok:?}");
            // Nothing of the test's is held yet.
            assert_eq!(
                c.wait_for_blocked(0, HOLD_TIMEOUT).unwrap(),
                Vec::<String>::new()
            );
        }),
        conn,
    )
    .await;
    let first = tokio::spawn(first);
    let conn = control(
        Box::new(|c| {
            c.wait_for_blocked(1, HOLD_TIMEOUT).unwrap();
        }),
        conn,
    )
    .await;
    let second = tokio::spawn(second);
    control(
        Box::new(|c| {
            c.wait_for_blocked(2, HOLD_TIMEOUT).unwrap();
            let ok = c.command(&["CLIENT", "UNPAUSE"]).unwrap();
            assert_eq!(ok.text().as_deref(), Some("OK"), "{ok:?}");
        }),
        conn,
    )
    .await;
    (first.await.unwrap(), second.await.unwrap())
}

/// Returns once the wall clock's millisecond has moved past the one current at the call. The
/// store stamps index entries with the client's clock in milliseconds, so two writes that must
/// differ in their stamps (least-recently-used order, "younger than") call this between them:
/// it waits on the clock itself, not for a guessed duration.
pub async fn next_millisecond() {
    let millis = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    let start = millis();
    while millis() <= start {
        tokio::task::yield_now().await;
    }
}

/// Polls `condition` until it holds, failing the test after `within`: for conditions that
/// need time to pass (an expiry), never as a way to order steps.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until a background load's `ok` counter has grown by `more`, failing with both counts
/// when it has not within `patience` (the one wait loop of the failover tests' loads).
pub async fn progress(
    ok: &std::sync::atomic::AtomicU64,
    failed: &std::sync::atomic::AtomicU64,
    more: u64,
    what: &str,
    patience: Duration,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let target = ok.load(SeqCst) + more;
    let deadline = Instant::now() + patience;
    while ok.load(SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "{what}: the load made no progress within {patience:?} ({} ok, {} failed)",
            ok.load(SeqCst),
            failed.load(SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The text a `tracing` subscriber wrote at `max_level` and above, for tests that assert on
/// what the store logs. Install the returned guard's subscriber on the test's thread; use a
/// current-thread runtime when spawned tasks must log into it too.
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Starts capturing on this thread until the guard is dropped.
    pub fn start(max_level: tracing::Level) -> (CapturedLog, tracing::subscriber::DefaultGuard) {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Writer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(max_level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (
            CapturedLog(buffer),
            tracing::subscriber::set_default(subscriber),
        )
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[derive(Clone)]
struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lists `users` (whose listings remove their stale members), then checks `removed`. On one
/// server a listing removes a stale member at once, so `removed` must hold after the first
/// listing; on a backend that writes the index in steps (Cluster) a stale member younger than
/// `INDEX_PENDING` may be a write between its steps and is left, so this lists again until
/// `removed` holds, failing after `INDEX_PENDING` and a margin.
pub async fn listings_remove_stale<B, F, Fut>(
    store: &redis_sessions::RedisStore<B>,
    users: &[&str],
    mut removed: F,
) where
    B: Backend,
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let within = match store.backend().index_in_steps() {
        true => redis_sessions::INDEX_PENDING + Duration::from_secs(5),
        false => Duration::ZERO,
    };
    let deadline = Instant::now() + within;
    loop {
        for user in users {
            store.user_sessions(user).await.unwrap();
        }
        if removed().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stale members of {users:?} not removed within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
