//! Least privilege: the users of `acl/setuser.redis` (the README's ACL block, byte for byte)
//! run the store on one server, on a cluster and behind Sentinel (the conformance suite's
//! `redis_acl`, `cluster_acl` and `sentinel_acl` backends), and stay inside their key prefix. A missing
//! permission: `acl_denied.rs`.

use redis_harness::{AclLines, RedisServer};
use redis_sessions::{Backend, RedisBackend, RedisStore};

use crate::support::{id, session, Deployment};

/// The one source of truth of the ACL lines.
pub const ACL_FILE: &str = include_str!("../../acl/setuser.redis");
const README: &str = include_str!("../../../../README.md");
/// The comment that precedes the ACL block in the README.
const README_MARKER: &str = "<!-- the ACL block: crates/redis-sessions/acl/setuser.redis -->";

pub const STORE_USER: &str = "sessions";
pub const STORE_PASSWORD: &str = "store-secret";

pub fn lines() -> AclLines {
    AclLines::parse(ACL_FILE)
}

/// The placeholders' values, with `prefix` as the ACL key pattern's prefix.
pub fn values(prefix: &str) -> [(&'static str, String); 4] {
    [
        ("prefix", prefix.to_owned()),
        ("store-password", STORE_PASSWORD.to_owned()),
        ("admin-password", "admin-secret".to_owned()),
        ("sentinel-password", "sentinel-secret".to_owned()),
    ]
}

pub fn filled(prefix: &str) -> Vec<(&'static str, String)> {
    values(prefix).to_vec()
}

pub fn refs<'a>(values: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    values.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `redis://sessions:<password>@` in front of a URL's host part.
fn with_user(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://{STORE_USER}:{STORE_PASSWORD}@{rest}")
}

/// A server whose `sessions` user is the file's store line. The conformance suite uses many
/// prefixes and writes foreign keys itself, so its user's key pattern is `~*` (the prefix
/// placeholder left empty): what it checks is that the line's commands are enough. The
/// tests below check the line's `~sess:*` confinement.
pub struct AclServer {
    pub server: RedisServer,
}

impl Deployment for AclServer {
    fn url(&self) -> String {
        with_user(&self.server.url())
    }
    fn primary_for(&self, _key: &str) -> u16 {
        self.server.port()
    }
}

pub fn acl_server(line: &str, prefix: &str) -> AclServer {
    let server = RedisServer::start();
    server.acl_setuser_line(line, &refs(&filled(prefix)));
    AclServer { server }
}

/// The conformance suite's backend on one server, as the store's ACL user.
pub async fn redis_acl() -> (RedisBackend, AclServer) {
    let server = acl_server(lines().line(STORE_USER), "");
    let backend = RedisBackend::connect(&server.url())
        .await
        .unwrap_or_else(|e| panic!("connect as the ACL user: {e}"));
    (backend, server)
}

/// A cluster whose every node has the store's ACL user (`~*`, as [`AclServer`]).
#[cfg(feature = "cluster")]
pub struct AclCluster(pub redis_harness::RedisCluster);

#[cfg(feature = "cluster")]
impl Deployment for AclCluster {
    fn url(&self) -> String {
        with_user(&self.0.url())
    }
    fn primary_for(&self, key: &str) -> u16 {
        self.0.primary_for_key(key)
    }
}

#[cfg(feature = "cluster")]
pub async fn acl_cluster(line: String, prefix: &str) -> AclCluster {
    let values = filled(prefix);
    tokio::task::spawn_blocking(move || {
        let cluster = redis_harness::RedisCluster::start();
        cluster.acl_setuser_line(&line, &refs(&values));
        AclCluster(cluster)
    })
    .await
    .unwrap()
}

/// The conformance suite's backend on a cluster, as the store's ACL user on every node.
#[cfg(feature = "cluster")]
pub async fn cluster_acl() -> (redis_sessions::AnyBackend, AclCluster) {
    let cluster = acl_cluster(lines().line(STORE_USER).to_owned(), "").await;
    let backend = redis_sessions::connect(&cluster.url())
        .await
        .unwrap_or_else(|e| panic!("connect to the cluster as the ACL user: {e}"));
    assert!(matches!(backend, redis_sessions::AnyBackend::Cluster(_)));
    (backend, cluster)
}

/// A Sentinel group with the store's user (`~*`, as [`AclServer`]) on its data servers and
/// the sentinels' user on every sentinel.
#[cfg(feature = "sentinel")]
pub struct AclSentinelGroup(pub redis_harness::RedisSentinelGroup);

#[cfg(feature = "sentinel")]
impl Deployment for AclSentinelGroup {
    fn url(&self) -> String {
        format!(
            "{}?sentinel_username=sessions-sentinel&sentinel_password=sentinel-secret",
            with_user(&self.0.url())
        )
    }
    fn primary_for(&self, _key: &str) -> u16 {
        self.0.primary_port()
    }
}

#[cfg(feature = "sentinel")]
async fn acl_sentinel_group(prefix: &str) -> AclSentinelGroup {
    let values = filled(prefix);
    tokio::task::spawn_blocking(move || {
        let group = redis_harness::RedisSentinelGroup::start();
        group.acl_setuser_line_on_servers(lines().line(STORE_USER), &refs(&values));
        group.acl_setuser_line_on_sentinels(lines().line("sessions-sentinel"), &refs(&values));
        AclSentinelGroup(group)
    })
    .await
    .unwrap()
}

/// The conformance suite's backend behind Sentinel, as the store's and the sentinels' users.
#[cfg(feature = "sentinel")]
pub async fn sentinel_acl() -> (redis_sessions::AnyBackend, AclSentinelGroup) {
    let group = acl_sentinel_group("").await;
    let backend = redis_sessions::connect(&group.url())
        .await
        .unwrap_or_else(|e| panic!("connect through the sentinels as the ACL users: {e}"));
    assert!(matches!(backend, redis_sessions::AnyBackend::Sentinel(_)));
    (backend, group)
}

#[test]
fn readme_shows_the_acl_file_byte_for_byte() {
    let (_, after) = README
        .split_once(README_MARKER)
        .expect("the README's ACL block is preceded by its marker comment");
    let block = after
        .trim_start_matches(['\r', '\n'])
        .strip_prefix("```text\n")
        .expect("a ```text block right after the marker");
    let (block, _) = block.split_once("```").expect("the block ends");
    assert_eq!(
        block, ACL_FILE,
        "the README's ACL block is acl/setuser.redis"
    );
    // Every user the README talks about has its line.
    for user in [STORE_USER, "sessions-admin", "sessions-sentinel"] {
        lines().line(user);
    }
}

/// Everything the store does, as the line's user confined to `~sess:*`; a store with another
/// prefix is refused with a typed error, and nothing outside the prefix is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_user_is_confined_to_its_prefix() {
    let server = acl_server(lines().line(STORE_USER), "sess:");
    server
        .server
        .cmd(&["SET", "other:0123456789abcdefghij", "{}"]);
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::new(backend.clone());
    exercise(&store).await;

    let outside = RedisStore::builder(backend.clone())
        .prefix("other:")
        .build();
    let err = outside.set(&id(), &session(1)).await.unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert_eq!(err.denied_command(), Some("set"), "{err}");
    assert!(err.to_string().contains("SET"), "{err}");
    let err = outside.length().await;
    // SCAN lists every key name whatever the user's pattern; the store re-checks the prefix,
    // and reading a value outside the pattern is refused.
    assert!(matches!(err, Ok(1)), "{err:?}");
    let err = outside.all().await.unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
}

/// A prefix with glob characters: the ACL pattern is `~` + the store's escaped SCAN pattern.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_prefix_is_escaped_in_the_key_pattern() {
    let probe = RedisStore::builder(redis_sessions::MemoryBackend::new())
        .prefix("a*b:")
        .build();
    let pattern = probe.keyspace().scan_pattern().to_owned();
    let escaped = pattern.strip_suffix('*').unwrap();
    let server = acl_server(lines().line(STORE_USER), escaped);
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend.clone()).prefix("a*b:").build();
    exercise(&store).await;
    let err = backend
        .set(
            "aXXb:0123456789abcdefghij",
            b"{}",
            None,
            redis_sessions::SetMode::Always,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis_sessions::BackendErrorKind::PermissionDenied
    );
}

/// Create, read, refresh, list, count, destroy and clear.
async fn exercise<B: Backend + Clone>(store: &RedisStore<B>) {
    let ids: Vec<_> = (0..5).map(|_| id()).collect();
    for (n, id) in ids.iter().enumerate() {
        assert!(store
            .set(id, &session(n as i64))
            .await
            .unwrap()
            .is_written());
    }
    assert_eq!(store.get(&ids[0]).await.unwrap(), Some(session(0)));
    assert!(store
        .touch(&ids[0], &session(0))
        .await
        .unwrap()
        .is_written());
    let hour = std::time::Duration::from_secs(3600);
    assert!(store
        .get_and_refresh(&ids[1], hour)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .update(&ids[2], &session(9))
        .await
        .unwrap()
        .is_written());
    assert!(store.create(&ids[2], &session(9)).await.unwrap() == redis_sessions::Outcome::Exists);
    assert!(matches!(
        store.ttl(&ids[1]).await.unwrap(),
        redis_sessions::KeyTtl::Expires(_)
    ));
    assert_eq!(store.length().await.unwrap(), 5);
    assert_eq!(store.ids().await.unwrap().len(), 5);
    assert_eq!(store.all().await.unwrap().len(), 5);
    store.destroy(&ids[0]).await.unwrap();
    assert_eq!(store.get(&ids[0]).await.unwrap(), None);
    assert_eq!(store.clear().await.unwrap(), 4);
}

/// Sentinel: the store's line on the primary and the replica, the sentinels' line on every
/// sentinel. The store works, and every sentinel accepts the backend's `+switch-master`
/// subscription from that user without refusing anything.
#[cfg(feature = "sentinel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_deployment_runs_with_the_sentinel_and_store_users() {
    let deployment = acl_sentinel_group("sess:").await;
    let url = deployment.url();
    let group = &deployment.0;
    let backend = redis_sessions::connect(&url).await.unwrap();
    let store = RedisStore::new(backend);
    exercise(&store).await;
    for port in group.sentinel_ports() {
        crate::support::eventually(
            std::time::Duration::from_secs(10),
            "the backend subscribes to +switch-master as the sentinels' user",
            || async move {
                let clients = group_cmd(port, &["CLIENT", "LIST"]);
                clients
                    .lines()
                    .any(|c| c.contains("user=sessions-sentinel") && c.contains(" sub=1 "))
            },
        )
        .await;
        let log = redis_harness::Connection::open(port)
            .unwrap()
            .command(&["ACL", "LOG"])
            .unwrap();
        assert_eq!(
            log,
            redis_harness::Reply::Array(Some(Vec::new())),
            "sentinel {port}"
        );
    }
    let primary = group.primary_port();
    let log = group.cmd(primary, &["ACL", "LOG"]);
    assert_eq!(
        log,
        redis_harness::Reply::Array(Some(Vec::new())),
        "primary {primary}"
    );
}

#[cfg(feature = "sentinel")]
fn group_cmd(port: u16, args: &[&str]) -> String {
    redis_harness::Connection::open(port)
        .unwrap()
        .command(args)
        .unwrap()
        .text()
        .unwrap_or_default()
}

/// A sentinel whose ACL user may not subscribe refuses the backend's `+switch-master`
/// watcher: the watcher says so once per sentinel, with the fix, and stops instead of asking
/// again every second (it would only be refused again). The store still works.
#[cfg(feature = "sentinel")]
#[tokio::test]
async fn a_refused_switch_master_subscription_stops_the_watcher_with_one_warning() {
    // A current-thread runtime: the watchers run on this thread, under this subscriber.
    let (captured, _guard) = crate::support::CapturedLog::start(tracing::Level::WARN);

    let values = filled("sess:");
    let sentinel_line = lines()
        .line("sessions-sentinel")
        .split_whitespace()
        .filter(|w| *w != "+subscribe")
        .collect::<Vec<_>>()
        .join(" ");
    let deployment = tokio::task::spawn_blocking(move || {
        let group = redis_harness::RedisSentinelGroup::start();
        group.acl_setuser_line_on_servers(lines().line(STORE_USER), &refs(&values));
        group.acl_setuser_line_on_sentinels(&sentinel_line, &refs(&values));
        AclSentinelGroup(group)
    })
    .await
    .unwrap();
    let sentinels = deployment.0.sentinel_ports().len();
    let store = RedisStore::new(redis_sessions::connect(&deployment.url()).await.unwrap());
    exercise(&store).await;
    let stopped = || {
        let log = captured.text();
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("sentinel watcher stopped"))
            .count()
    };
    crate::support::eventually(
        std::time::Duration::from_secs(10),
        "every sentinel's watcher stopped with a warning",
        || async { stopped() == sentinels },
    )
    .await;
    let log = captured.text();
    assert!(log.contains("+subscribe &+switch-master"), "{log}");
}
