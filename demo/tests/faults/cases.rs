//! The fault cases.

use std::net::SocketAddr;
use std::time::Duration;

use redis_harness::{Connection, RedisCluster, RedisSentinelGroup, RedisServer, Reply};
use tokio::sync::oneshot;

use crate::load::{request, Load};

/// Clients of each case's load.
const CLIENTS: usize = 6;
/// Patience for progress (generous: CI machines are slow; nothing is timed).
const PATIENCE: Duration = Duration::from_secs(15);

/// The axum demo on `url`, stopped on drop.
struct Demo {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Demo {
    async fn start(url: String) -> Demo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = demo::Config::new(Some(url));
        tokio::spawn(async move {
            demo::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let demo = Demo { addr, _stop: stop };
        // Bound before the spawn, so it accepts; the store connects before serving.
        demo.wait_healthz("ok", PATIENCE).await;
        demo
    }

    /// `/healthz`'s JSON.
    async fn healthz(&self) -> serde_json::Value {
        request(self.addr, "GET", "/healthz", None, None)
            .await
            .map(|a| a.json())
            .unwrap_or_default()
    }

    /// Waits until `/healthz` says `redis: <redis>`.
    async fn wait_healthz(&self, redis: &str, patience: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let health = self.healthz().await;
            if health["redis"] == redis {
                return health;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/healthz never said redis={redis}: {health}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn metrics(&self) -> String {
        request(self.addr, "GET", "/metrics", None, None)
            .await
            .unwrap()
            .body
    }
}

/// Blocking harness work (kill, restart, failover waits) off the load's worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Makes every write the primary at `port` acknowledged so far reach a replica: a write of
/// the test's own (after them in the replication stream), then `WAIT 1` on that connection.
fn wait_replicated(port: u16, key: &str) {
    let mut conn = Connection::open(port).unwrap();
    assert_eq!(
        conn.command(&["SET", key, "1"]).unwrap(),
        Reply::Status("OK".into())
    );
    let replicas = conn.command(&["WAIT", "1", "5000"]).unwrap();
    assert!(
        matches!(replicas, Reply::Int(n) if n >= 1),
        "WAIT: {replicas:?}"
    );
}

/// The primary holding the most session keys (the demo's prefix; per-user indexes left out),
/// the lowest port among equals, and how many it holds.
fn primary_with_most_sessions(cluster: &RedisCluster) -> (u16, usize) {
    let mut held: Vec<(u16, usize)> = cluster
        .primary_ports()
        .into_iter()
        .map(|p| (p, 0))
        .collect();
    for key in cluster.scan_keys("sess:*") {
        if key.contains("~user~") {
            continue;
        }
        let port = cluster.primary_for_key(&key);
        if let Some((_, n)) = held.iter_mut().find(|(p, _)| *p == port) {
            *n += 1;
        }
    }
    held.into_iter()
        .max_by_key(|&(port, n)| (n, std::cmp::Reverse(port)))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_aof_then_restart_loses_no_acknowledged_increment() {
    let mut server = RedisServer::try_start(&["appendonly", "yes", "appendfsync", "always"])
        .unwrap_or_else(|e| panic!("{e}"));
    let demo = Demo::start(server.url()).await;
    let load = Load::start(demo.addr, CLIENTS).await;
    load.progress(50, "before the kill", PATIENCE).await;

    blocking(|| server.stop()); // SIGKILL
    load.failing(20, "while Redis is down", PATIENCE).await;
    demo.wait_healthz("unavailable", PATIENCE).await;
    // Every increment acknowledged before the kill was fsynced: the ones to keep.
    let acked = load.acked();

    blocking(|| server.restart()); // same port, same AOF
    load.progress(50, "after the restart", PATIENCE).await;
    demo.wait_healthz("ok", PATIENCE).await;
    load.finish(&acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_engages_fail_fast_and_the_demo_recovers_after_sigcont() {
    let server = RedisServer::start();
    let demo = Demo::start(server.url()).await;
    let load = Load::start(demo.addr, CLIENTS).await;
    load.progress(50, "before the pause", PATIENCE).await;

    server.pause();
    let health = demo.wait_healthz("unavailable", PATIENCE).await;
    // Fail-fast engaged: /healthz shows the breaker's state, /metrics has opened it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut health = health;
    while health["fail_fast"] != "open" && health["fail_fast"] != "probing" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never failing fast: {health}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        health = demo.healthz().await;
    }
    let metrics = demo.metrics().await;
    let opened = metrics
        .lines()
        .find(|l| l.starts_with("redis_sessions_fail_fast_opened_total "))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(opened.is_some_and(|n| n >= 1.0), "{metrics}");
    load.failing(50, "while Redis is hung", PATIENCE).await;
    let acked = load.acked();

    server.resume();
    load.progress(50, "after SIGCONT", PATIENCE).await;
    let health = demo.wait_healthz("ok", PATIENCE).await;
    assert_eq!(health["fail_fast"], "closed", "{health}");
    load.finish(&acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_loses_nothing_acknowledged_with_wait() {
    let group = blocking(RedisSentinelGroup::start);
    let demo = Demo::start(group.url()).await;
    let load = Load::start(demo.addr, CLIENTS).await;
    load.progress(50, "before the failover", PATIENCE).await;

    let acked = load.acked();
    blocking(|| wait_replicated(group.primary_port(), "faults:wait"));
    let new = blocking(|| group.failover());
    load.progress(50, "after the failover", PATIENCE).await;
    assert_eq!(group.primary_port(), new);
    load.finish(&acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_killed_under_load_loses_nothing_acknowledged_with_wait() {
    let mut cluster = blocking(RedisCluster::start);
    let demo = Demo::start(cluster.url()).await;
    let load = Load::start(demo.addr, CLIENTS).await;
    load.progress(50, "before the kill", PATIENCE).await;

    let acked = load.acked();
    blocking(|| {
        for port in cluster.primary_ports() {
            let key = (0..)
                .map(|n| format!("faults:wait:{n}"))
                .find(|k| cluster.primary_for_key(k) == port)
                .unwrap();
            wait_replicated(port, &key);
        }
    });
    // The primary holding the most of the load's sessions: "nothing lost" is about them.
    let (victim, held) = blocking(|| primary_with_most_sessions(&cluster));
    assert!(held >= 1, "no session of the load on any primary");
    let replica = cluster.replica_of(victim);
    blocking(|| {
        cluster.kill(victim);
        cluster.wait_primary(replica);
    });
    load.progress(50, "after the replica took over", PATIENCE)
        .await;
    load.finish(&acked).await;
}
