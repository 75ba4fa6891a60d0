//! `RedisStore::check` on real servers: what a deployment gets wrong (eviction policy,
//! persistence, a user without INFO or without a command the store needs, a cluster with a
//! primary down), what a healthy one reports, and TLS.

use redis_harness::{RedisServer, Reply};
use redis_sessions::{
    Backend, Check, CheckLevel, Diagnosis, MemoryBackend, RedisBackend, RedisStore,
};

/// The finding named `name` (about `server`, when given); fails the test when there is none.
#[track_caller]
fn finding<'a>(diagnosis: &'a Diagnosis, name: &str) -> &'a Check {
    diagnosis
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {diagnosis:#?}"))
}

async fn check<B: Backend>(backend: B) -> Diagnosis {
    RedisStore::new(backend).check().await
}

async fn connect(url: &str) -> RedisBackend {
    RedisBackend::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

fn start(extra: &[&str]) -> RedisServer {
    RedisServer::try_start(extra).unwrap_or_else(|e| panic!("{e}"))
}

/// Every key the scratch test may have left under the default prefix.
fn leftovers(server: &RedisServer) -> Vec<String> {
    server.scan_keys("sess:*")
}

#[tokio::test]
async fn a_healthy_server_is_ok_on_every_check() {
    let server = start(&["appendonly", "yes", "maxmemory-policy", "volatile-lru"]);
    let diagnosis = check(connect(&server.url()).await).await;
    assert_eq!(diagnosis.level(), CheckLevel::Ok, "{diagnosis:#?}");
    for name in [
        "version",
        "eviction",
        "persistence",
        "replicas",
        "tls",
        "permissions",
    ] {
        let found = finding(&diagnosis, name);
        assert_eq!(found.fix, None, "{found:?}");
    }
    let version = finding(&diagnosis, "version");
    assert!(version.reason.contains("GETEX"), "{version:?}");
    assert_eq!(
        version.server.as_deref(),
        Some(format!("127.0.0.1:{}", server.port()).as_str())
    );
    assert!(finding(&diagnosis, "eviction")
        .reason
        .contains("volatile-lru"));
    assert!(finding(&diagnosis, "persistence").reason.contains("AOF"));
    assert!(finding(&diagnosis, "tls").reason.contains("loopback"));
    assert_eq!(
        leftovers(&server),
        Vec::<String>::new(),
        "scratch key deleted"
    );
}

#[tokio::test]
async fn an_allkeys_policy_is_a_warning_about_random_logouts() {
    let server = start(&["appendonly", "yes", "maxmemory-policy", "allkeys-lru"]);
    let diagnosis = check(connect(&server.url()).await).await;
    let eviction = finding(&diagnosis, "eviction");
    assert_eq!(eviction.level, CheckLevel::Warning);
    assert!(eviction.reason.contains("allkeys-lru"), "{eviction:?}");
    assert!(eviction.reason.contains("logouts"), "{eviction:?}");
    assert!(eviction.fix.as_deref().unwrap().contains("volatile-lru"));
    assert_eq!(diagnosis.level(), CheckLevel::Warning, "{diagnosis:#?}");
}

#[tokio::test]
async fn persistence_off_is_a_warning_and_aof_is_ok() {
    // The harness starts servers with `--save ""`: no RDB save points.
    let off = RedisServer::start();
    let diagnosis = check(connect(&off.url()).await).await;
    let persistence = finding(&diagnosis, "persistence");
    assert_eq!(persistence.level, CheckLevel::Warning, "{persistence:?}");
    assert!(persistence.reason.contains("restart"), "{persistence:?}");
    assert!(persistence.fix.as_deref().unwrap().contains("appendonly"));

    let aof = start(&["appendonly", "yes"]);
    let diagnosis = check(connect(&aof.url()).await).await;
    assert_eq!(finding(&diagnosis, "persistence").level, CheckLevel::Ok);
}

/// `ACL SETUSER name on >pw resetkeys ~sess:* -@all +...` on `server`.
fn user(server: &RedisServer, name: &str, commands: &[&str]) -> String {
    let mut args = vec![
        "ACL",
        "SETUSER",
        name,
        "on",
        ">pw",
        "resetkeys",
        "~sess:*",
        "-@all",
    ];
    args.extend_from_slice(commands);
    assert_eq!(server.cmd(&args), Reply::Status("OK".into()));
    format!("redis://{name}:pw@127.0.0.1:{}", server.port())
}

const STORE_COMMANDS: [&str; 9] = [
    "+get", "+getex", "+set", "+pexpire", "+pttl", "+unlink", "+mget", "+scan", "+ping",
];

#[tokio::test]
async fn a_user_without_info_gets_a_warning_with_the_acl_fix() {
    let server = RedisServer::start();
    let url = user(&server, "noinfo", &STORE_COMMANDS);
    let diagnosis = check(connect(&url).await).await;
    let info = finding(&diagnosis, "info");
    assert_eq!(info.level, CheckLevel::Warning, "{info:?}");
    assert!(info.fix.as_deref().unwrap().contains("+info"), "{info:?}");
    assert_eq!(finding(&diagnosis, "permissions").level, CheckLevel::Ok);
    assert!(
        !diagnosis.checks.iter().any(|c| c.name == "version"),
        "nothing read from an INFO that was refused: {diagnosis:#?}"
    );
}

#[tokio::test]
async fn a_user_without_a_store_command_is_a_failure_naming_it() {
    let server = RedisServer::start();
    let mut commands = STORE_COMMANDS.to_vec();
    commands.retain(|c| *c != "+getex");
    commands.push("+info");
    let url = user(&server, "nogetex", &commands);
    let diagnosis = check(connect(&url).await).await;
    let permissions = finding(&diagnosis, "permissions");
    assert_eq!(permissions.level, CheckLevel::Failure, "{permissions:?}");
    assert!(permissions.reason.starts_with("GETEX"), "{permissions:?}");
    let fix = permissions.fix.as_deref().unwrap();
    assert!(fix.contains("+getex") && fix.contains("~sess:*"), "{fix}");
    assert_eq!(diagnosis.level(), CheckLevel::Failure);
    assert_eq!(
        leftovers(&server),
        Vec::<String>::new(),
        "scratch key deleted"
    );
}

#[tokio::test]
async fn a_replica_is_a_failure_writes_would_be_refused() {
    let primary = RedisServer::start();
    let port = primary.port().to_string();
    let replica = RedisServer::start();
    let reply = replica.cmd(&["REPLICAOF", "127.0.0.1", &port]);
    assert_eq!(reply, Reply::Status("OK".into()));
    let diagnosis = check(connect(&replica.url()).await).await;
    let role = finding(&diagnosis, "role");
    assert_eq!(role.level, CheckLevel::Failure, "{role:?}");
    assert!(role.reason.contains("READONLY"), "{role:?}");
    assert_eq!(
        finding(&diagnosis, "permissions").level,
        CheckLevel::Failure
    );
}

#[tokio::test]
async fn the_memory_backend_says_what_it_is() {
    let diagnosis = check(MemoryBackend::new()).await;
    let backend = finding(&diagnosis, "backend");
    assert_eq!(backend.level, CheckLevel::Warning);
    assert!(backend.reason.contains("memory"), "{backend:?}");
    assert_eq!(finding(&diagnosis, "permissions").level, CheckLevel::Ok);
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_is_reported() {
    let (backend, _server) = crate::support::redis_tls().await;
    let diagnosis = check(backend).await;
    let tls = finding(&diagnosis, "tls");
    assert_eq!(tls.level, CheckLevel::Ok);
    assert_eq!(tls.reason, "connections use TLS");
    assert_eq!(finding(&diagnosis, "permissions").level, CheckLevel::Ok);
}

#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_primary_down_names_that_primary() {
    use std::time::Duration;

    // A long node timeout: no replica takes over while the test runs.
    let mut cluster = tokio::task::spawn_blocking(|| {
        redis_harness::RedisCluster::start_with_node_timeout(Duration::from_secs(60))
    })
    .await
    .unwrap();
    let backend = redis_sessions::connect(&cluster.url()).await.unwrap();
    let store = RedisStore::new(backend);

    let healthy = store.check().await;
    let slots = finding(&healthy, "slots");
    assert_eq!(slots.level, CheckLevel::Ok, "{slots:?}");
    assert!(slots.reason.contains("3 primaries"), "{slots:?}");
    let primaries: Vec<&Check> = healthy
        .checks
        .iter()
        .filter(|c| c.name == "version")
        .collect();
    assert_eq!(primaries.len(), 3, "one INFO per primary: {healthy:#?}");
    assert_eq!(finding(&healthy, "permissions").level, CheckLevel::Ok);
    assert!(
        healthy
            .checks
            .iter()
            .all(|c| c.level == CheckLevel::Ok || c.name == "persistence"),
        "{healthy:#?}"
    );

    let victim = cluster.primary_ports()[1];
    cluster.kill(victim);
    let broken = store.check().await;
    let address = format!("127.0.0.1:{victim}");
    let down: Vec<&Check> = broken
        .checks
        .iter()
        .filter(|c| c.level == CheckLevel::Failure)
        .collect();
    assert!(
        down.iter()
            .any(|c| c.server.as_deref() == Some(address.as_str())),
        "a failure names {address}: {broken:#?}"
    );
    assert_eq!(broken.level(), CheckLevel::Failure);
    let others = broken
        .checks
        .iter()
        .filter(|c| c.name == "version" && c.level == CheckLevel::Ok)
        .count();
    assert_eq!(
        others, 2,
        "the two live primaries still answer: {broken:#?}"
    );

    // One cluster node reached with a plain redis:// URL: MOVED for other slots.
    let node = cluster.primary_ports()[0];
    let direct = check(connect(&format!("redis://127.0.0.1:{node}")).await).await;
    assert_eq!(
        finding(&direct, "role").level,
        CheckLevel::Failure,
        "{direct:#?}"
    );
}

#[cfg(feature = "sentinel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_agree_and_the_primary_has_a_replica() {
    let (backend, _group) = crate::support::sentinel().await;
    let diagnosis = check(backend).await;
    let sentinels = finding(&diagnosis, "sentinels");
    assert_eq!(sentinels.level, CheckLevel::Ok, "{sentinels:?}");
    assert!(
        sentinels.reason.contains("all 3 sentinels agree"),
        "{sentinels:?}"
    );
    let replicas = finding(&diagnosis, "replicas");
    assert_eq!(replicas.level, CheckLevel::Ok, "{replicas:?}");
    assert!(replicas.reason.contains("1 connected"), "{replicas:?}");
}

/// The store's user exactly as `acl/setuser.redis` (the README's ACL block) defines it.
#[tokio::test]
async fn the_store_acl_line_is_enough_for_every_check() {
    use crate::support::Deployment;
    let server = crate::acl::acl_server(crate::acl::lines().line(crate::acl::STORE_USER), "sess:");
    let diagnosis = check(connect(&server.url()).await).await;
    assert!(
        diagnosis
            .checks
            .iter()
            .all(|c| c.level != CheckLevel::Failure),
        "{diagnosis:#?}"
    );
    assert!(
        !diagnosis.checks.iter().any(|c| c.name == "info"),
        "INFO is granted: {diagnosis:#?}"
    );
    assert_eq!(finding(&diagnosis, "version").level, CheckLevel::Ok);
    assert_eq!(finding(&diagnosis, "permissions").level, CheckLevel::Ok);
}

/// A refused `INFO` on a cluster is a warning per primary, not a slot failure: the primaries
/// answered.
#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_user_without_info_still_covers_every_slot() {
    use crate::support::Deployment;
    let line = crate::acl::lines()
        .line(crate::acl::STORE_USER)
        .replace(" +info", "");
    assert!(!line.contains("+info"), "{line}");
    let cluster = crate::acl::acl_cluster(line, "sess:").await;
    let backend = redis_sessions::connect(&cluster.url()).await.unwrap();
    let diagnosis = check(backend).await;
    let slots = finding(&diagnosis, "slots");
    assert_eq!(slots.level, CheckLevel::Ok, "{diagnosis:#?}");
    assert!(slots.reason.contains("3 primaries"), "{slots:?}");
    let refused: Vec<&Check> = diagnosis
        .checks
        .iter()
        .filter(|c| c.name == "info")
        .collect();
    assert_eq!(refused.len(), 3, "one per primary: {diagnosis:#?}");
    for info in refused {
        assert_eq!(info.level, CheckLevel::Warning, "{info:?}");
        assert!(info.fix.as_deref().unwrap().contains("+info"), "{info:?}");
    }
    assert_eq!(finding(&diagnosis, "permissions").level, CheckLevel::Ok);
    assert_eq!(diagnosis.level(), CheckLevel::Warning, "{diagnosis:#?}");
}

#[cfg(all(feature = "sentinel", feature = "tls"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_sentinel_group_is_reported_as_tls_and_agreeing() {
    let (backend, _group) = crate::support::sentinel_tls().await;
    let diagnosis = check(backend).await;
    assert_eq!(finding(&diagnosis, "tls").reason, "connections use TLS");
    let sentinels = finding(&diagnosis, "sentinels");
    assert_eq!(sentinels.level, CheckLevel::Ok, "{sentinels:?}");
    assert_eq!(finding(&diagnosis, "permissions").level, CheckLevel::Ok);
}
