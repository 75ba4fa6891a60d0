//! Durable revocation (`revoke_user_sessions_durably`, `WAIT`) on real servers with real
//! replicas: one server with one replica, a Sentinel group and a Cluster. With the replica
//! up, the revoke reports it acknowledged and the replica itself no longer has the ended
//! sessions; with the replica stopped (`SIGSTOP`), it reports 0 within the timeout, and the
//! sessions are still ended on the primary. The memory backend reports 0 at once.

use std::process::Command;
use std::time::{Duration, Instant};

use redis_harness::{Connection, RedisServer};
use redis_sessions::{
    Backend, MemoryBackend, RedisBackend, RedisStore, Revoked, Session, SessionId, StoredId,
    WaitForReplicas,
};

use crate::support::{eventually, id};

/// Time allowed for a replica to finish its first sync; it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

fn login(user: &str) -> Session {
    let mut s = Session::new();
    s.insert("user", user).unwrap();
    s
}

fn indexed<B: Backend>(backend: B) -> RedisStore<B> {
    RedisStore::builder(backend).index_by("user").build()
}

/// Three sessions of ada and one of bob; ada's ids.
async fn seed<B: Backend>(store: &RedisStore<B>) -> Vec<SessionId> {
    let ids: Vec<SessionId> = (0..3).map(|_| id()).collect();
    for id in &ids {
        assert!(store.create(id, &login("ada")).await.unwrap().is_written());
    }
    assert!(store
        .create(&id(), &login("bob"))
        .await
        .unwrap()
        .is_written());
    ids
}

/// A field of an `INFO` text.
fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

fn info(port: u16, section: &str) -> String {
    Connection::open(port)
        .unwrap()
        .command(&["INFO", section])
        .unwrap()
        .text()
        .unwrap_or_default()
}

/// `GET key` on a replica (`READONLY` first, for a cluster node): whether it holds the key.
fn replica_has(port: u16, key: &str, cluster: bool) -> bool {
    let mut conn = Connection::open(port).unwrap();
    if cluster {
        conn.command(&["READONLY"]).unwrap();
    }
    match conn.command(&["GET", key]).unwrap() {
        redis_harness::Reply::Bulk(Some(_)) => true,
        redis_harness::Reply::Bulk(None) => false,
        other => panic!("GET {key} on the replica: {other:?}"),
    }
}

/// The replica's port that `primary` reports first (`slave0:ip=…,port=…`).
fn replica_port(primary: u16) -> u16 {
    let text = info(primary, "replication");
    let line = info_field(&text, "slave0").unwrap_or_else(|| panic!("no replica: {text}"));
    line.split(',')
        .find_map(|kv| kv.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// A stopped server (`SIGSTOP` by the pid it reports), continued on drop, also when the
/// test fails.
struct Stopped(u32);

impl Stopped {
    fn stop(port: u16) -> Stopped {
        let pid: u32 = info_field(&info(port, "server"), "process_id")
            .and_then(|p| p.parse().ok())
            .unwrap();
        signal(pid, "STOP");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A primary and a replica of it, once the replica's link is up and the primary counts it.
fn primary_with_replica() -> (RedisServer, RedisServer) {
    let primary = RedisServer::start();
    // One value: the harness passes options as `--name value` pairs.
    let primary_at = format!("127.0.0.1 {}", primary.port());
    let replica =
        RedisServer::try_start(&["replicaof", &primary_at]).unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let up = info_field(&info(replica.port(), "replication"), "master_link_status");
        let online = info_field(&info(primary.port(), "replication"), "slave0")
            .is_some_and(|s| s.contains("state=online"));
        if up.as_deref() == Some("up") && online {
            return (primary, replica);
        }
        assert!(Instant::now() < deadline, "the replica did not sync");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The case every topology runs: sessions that reached the replica are revoked with
/// `--wait 1`; the revoke reports 1 and the replica no longer has them. `replica_of(key)`
/// names the replica that holds a key; `cluster` says whether it needs `READONLY`.
async fn acknowledged_and_gone_from_the_replica<B: Backend>(
    store: &RedisStore<B>,
    replica_of: impl Fn(&str) -> u16,
    cluster: bool,
) {
    let ids = seed(store).await;
    let keys: Vec<String> = ids.iter().map(|id| store.keyspace().key(id)).collect();
    assert_eq!(
        store
            .backend()
            .wait_for_replicas(1, Duration::from_secs(1))
            .await
            .unwrap(),
        1,
        "the writes reached the replica"
    );
    for key in &keys {
        assert!(replica_has(replica_of(key), key, cluster), "{key}");
    }
    let keep = store.keyspace().stored_id(&ids[0]);
    let wait = WaitForReplicas::new(1, Duration::from_millis(300));
    let revoked = store
        .revoke_user_sessions_durably("ada", Some(&keep), wait)
        .await
        .unwrap();
    assert_eq!((revoked.ended, revoked.acknowledged), (2, 1), "{revoked:?}");
    assert!(revoked.is_acknowledged());
    // Acknowledged: the replica has applied the deletes already, no waiting needed.
    assert!(replica_has(replica_of(&keys[0]), &keys[0], cluster));
    for key in &keys[1..] {
        assert!(
            !replica_has(replica_of(key), key, cluster),
            "{key} still on the replica"
        );
    }
}

/// With the replica stopped: 0 acknowledged within about the timeout (cut to fit the
/// connection's response timeout, so a long one is not an error), the revoke done on the
/// primary; once the replica runs again, it gets the deletes.
async fn stopped_replica_gives_zero<B: Backend>(
    store: &RedisStore<B>,
    replica_of: impl Fn(&str) -> u16,
    cluster: bool,
    timeout: Duration,
) {
    let ids = seed(store).await;
    let keys: Vec<String> = ids.iter().map(|id| store.keyspace().key(id)).collect();
    let keep: StoredId = store.keyspace().stored_id(&ids[0]);
    let replica = replica_of(&keys[1]);
    let stopped = Stopped::stop(replica);
    let started = Instant::now();
    let revoked = store
        .revoke_user_sessions_durably("ada", Some(&keep), WaitForReplicas::new(1, timeout))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!((revoked.ended, revoked.acknowledged), (2, 0), "{revoked:?}");
    assert!(!revoked.is_acknowledged());
    // Bounded: it returned instead of waiting for the replica (a bound, not a speed).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(store.user_session_count("ada").await.unwrap(), 1);
    drop(stopped);
    let backend = store.backend();
    eventually(PATIENCE, "the replica catches up", || async {
        backend
            .wait_for_replicas(1, Duration::from_millis(100))
            .await
            .unwrap()
            == 1
    })
    .await;
    for key in &keys[1..] {
        assert!(!replica_has(replica_of(key), key, cluster), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_replica_acknowledges_and_no_longer_has_them() {
    let (primary, replica) = tokio::task::spawn_blocking(primary_with_replica)
        .await
        .unwrap();
    let store = indexed(RedisBackend::connect(&primary.url()).await.unwrap());
    let port = replica.port();
    acknowledged_and_gone_from_the_replica(&store, |_| port, false).await;
}

/// The default response timeout (500 ms) cuts a 10 s wait to 400 ms: 0, not a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_stopped_replica_gives_zero_within_the_timeout() {
    let (primary, replica) = tokio::task::spawn_blocking(primary_with_replica)
        .await
        .unwrap();
    let store = indexed(RedisBackend::connect(&primary.url()).await.unwrap());
    let port = replica.port();
    stopped_replica_gives_zero(&store, |_| port, false, Duration::from_secs(10)).await;
}

/// No replicas asked: no `WAIT` sent; without a replica, `WAIT 1` gives 0 after its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_replicas_sends_no_wait_and_no_replica_counts_zero() {
    let server = RedisServer::start();
    let store = indexed(RedisBackend::connect(&server.url()).await.unwrap());
    let ids = seed(&store).await;
    let revoked = store
        .revoke_user_session_durably(
            "ada",
            &store.keyspace().stored_id(&ids[0]),
            WaitForReplicas::new(0, Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert_eq!((revoked.ended, revoked.acknowledged), (1, 0));
    assert!(revoked.is_acknowledged(), "none asked, none missing");
    assert_eq!(server.calls_of("wait"), 0);
    let revoked = store
        .revoke_user_sessions_durably(
            "ada",
            None,
            WaitForReplicas::new(1, Duration::from_millis(50)),
        )
        .await
        .unwrap();
    assert_eq!((revoked.ended, revoked.acknowledged), (2, 0));
    assert_eq!(server.calls_of("wait"), 1);
}

/// The memory backend has no replicas: 0 at once, the sessions ended.
#[tokio::test]
async fn memory_reports_zero_at_once() {
    let store = indexed(MemoryBackend::new());
    let ids = seed(&store).await;
    let keep = store.keyspace().stored_id(&ids[2]);
    let started = Instant::now();
    let revoked: Revoked = store
        .revoke_user_sessions_durably(
            "ada",
            Some(&keep),
            WaitForReplicas::new(2, Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (revoked.ended, revoked.acknowledged, revoked.replicas),
        (2, 0, 2)
    );
    assert!(!revoked.is_acknowledged());
    assert_eq!(store.user_session_count("ada").await.unwrap(), 1);
}

#[cfg(feature = "sentinel")]
mod sentinel {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replica_acknowledges_and_no_longer_has_them() {
        let (backend, group) = crate::support::sentinel_backend().await;
        let store = indexed(backend);
        let replica = replica_port(group.primary_port());
        acknowledged_and_gone_from_the_replica(&store, |_| replica, false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_replica_gives_zero_within_the_timeout() {
        let (backend, group) = crate::support::sentinel_backend().await;
        let store = indexed(backend);
        let replica = replica_port(group.primary_port());
        stopped_replica_gives_zero(&store, |_| replica, false, Duration::from_millis(300)).await;
    }
}

#[cfg(feature = "cluster")]
mod cluster {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_shards_replica_acknowledges_and_no_longer_has_them() {
        let (backend, cluster) = crate::support::cluster_backend().await;
        let store = indexed(backend);
        let replica_of = |key: &str| cluster.replica_of(cluster.primary_for_key(key));
        acknowledged_and_gone_from_the_replica(&store, replica_of, true).await;
    }

    /// One shard's replica stopped: the smallest count, 0, within the (cut) timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_stopped_replica_gives_zero_within_the_timeout() {
        let (backend, cluster) = crate::support::cluster_backend().await;
        let store = indexed(backend);
        let replica_of = |key: &str| cluster.replica_of(cluster.primary_for_key(key));
        stopped_replica_gives_zero(&store, replica_of, true, Duration::from_secs(10)).await;
    }
}
