//! Two demo instances with the client-side cache (`--cache`) on one Redis: a session served
//! from one instance's memory still sees a change or a logout made through the other.

use serde_json::json;

use crate::client::Client;
use crate::servers::{spawn_app, Kind, Topology};
use redis_harness::RedisServer;

/// Data commands served since the last `CONFIG RESETSTAT`.
fn data_calls(redis: &RedisServer) -> u64 {
    let control = ["info", "config", "hello", "client", "ping"];
    redis
        .command_calls()
        .iter()
        .filter(|(name, _)| !control.iter().any(|c| name.starts_with(c)))
        .map(|(_, n)| n)
        .sum()
}

pub async fn reads_hit_the_cache_and_see_changes_made_elsewhere(kind: Kind, _: Topology) {
    let redis = RedisServer::start();
    let config = || {
        let mut config = demo::Config::new(Some(redis.url()));
        config.cache = 1000;
        config
    };
    // Two axum instances; actix-session signs its cookies with a key of each process's own,
    // so for actix "elsewhere" is the same instance's other requests and Redis itself.
    let spawn = |config| spawn_app(kind, config, std::future::pending());
    let a = spawn(config()).await;
    let b = match kind {
        Kind::Axum => spawn(config()).await,
        Kind::Actix => a,
    };
    let mut on_a = Client::new(a);
    let r = on_a.post("/api/login", Some(json!({"user": "ada"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut on_b = Client::new(b);
    on_b.cookie.clone_from(&on_a.cookie);
    // B reads the session once from Redis, then from memory.
    assert_eq!(on_b.get("/api/me").await.json()["counter"], 0);
    redis.cmd(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        let r = on_b.get("/api/me").await;
        assert_eq!(r.json(), json!({"user": "ada", "counter": 0}), "{r:?}");
    }
    assert_eq!(data_calls(&redis), 0, "{:?}", redis.command_calls());
    for n in 1..=3 {
        let r = on_a.post("/api/increment", None).await;
        assert_eq!(r.json(), json!({"counter": n}), "{r:?}");
        // A round trip on B's tracked connection: every invalidation Redis sent B before
        // its reply has been applied when it returns.
        assert_eq!(on_b.get("/healthz").await.status, 200);
        assert_eq!(on_b.get("/api/me").await.json()["counter"], n);
    }
    // Another Redis client (an admin's `redis-sessions rm`, say) deletes the session.
    let sessions: Vec<String> = redis
        .scan_keys("sess:*")
        .into_iter()
        .filter(|k| !crate::servers::is_index(k))
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    redis.cmd(&["DEL", &sessions[0]]);
    assert_eq!(on_b.get("/healthz").await.status, 200);
    assert_eq!(
        on_b.get("/api/me").await.status,
        401,
        "B serves no deleted session"
    );
    // And a logout through A.
    let r = on_a.post("/api/login", Some(json!({"user": "bob"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    on_b.cookie.clone_from(&on_a.cookie);
    assert_eq!(on_b.get("/api/me").await.json()["user"], "bob");
    assert_eq!(on_b.get("/api/me").await.json()["user"], "bob");
    assert_eq!(on_a.post("/api/logout", None).await.status, 200);
    assert_eq!(on_b.get("/healthz").await.status, 200);
    assert_eq!(
        on_b.get("/api/me").await.status,
        401,
        "B serves no logged-out session"
    );
}

/// On a Sentinel group (`--cache` with a `redis+sentinel://` URL): reads from memory, a
/// logout through another instance seen, and across a failover a change made on the new
/// primary is read anew.
pub async fn the_cache_works_on_sentinel_across_a_failover(kind: Kind, _: Topology) {
    let group = tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start)
        .await
        .unwrap();
    let config = || {
        let mut config = demo::Config::new(Some(group.url()));
        config.cache = 1000;
        config
    };
    let spawn = |config| spawn_app(kind, config, std::future::pending());
    let a = spawn(config()).await;
    let b = match kind {
        Kind::Axum => spawn(config()).await,
        Kind::Actix => a,
    };
    let mut on_a = Client::new(a);
    let r = on_a.post("/api/login", Some(json!({"user": "ada"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut on_b = Client::new(b);
    on_b.cookie.clone_from(&on_a.cookie);
    assert_eq!(on_b.get("/api/me").await.json()["counter"], 0);
    let primary = group.primary_port();
    group.cmd(primary, &["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        assert_eq!(on_b.get("/api/me").await.json()["counter"], 0);
    }
    let calls = redis_harness::parse_command_calls(
        &group
            .cmd(primary, &["INFO", "commandstats"])
            .text()
            .unwrap(),
    );
    let data: Vec<_> = calls
        .iter()
        .filter(|(name, _)| {
            !["info", "config", "hello", "client", "ping", "role"]
                .iter()
                .any(|c| name.starts_with(c))
        })
        .collect();
    assert_eq!(data, Vec::<&(String, u64)>::new(), "reads from memory");
    let r = on_a.post("/api/increment", None).await;
    assert_eq!(r.json(), json!({"counter": 1}), "{r:?}");
    assert_eq!(on_b.get("/healthz").await.status, 200);
    assert_eq!(on_b.get("/api/me").await.json()["counter"], 1);

    // Every write so far reaches the replica before the failover: a write of this
    // connection acknowledged by the replica (`WAIT`) comes after all of them in the
    // replication stream.
    let mut fence = redis_harness::Connection::open(group.command_port(primary)).unwrap();
    fence.command(&["SET", "fence", "1"]).unwrap();
    let acked = fence.command(&["WAIT", "1", "5000"]).unwrap();
    assert_eq!(acked.int(), Some(1), "the replica acknowledged every write");
    // The failover, then a change made on the new primary (an admin's edit, say): the
    // session is renamed there. B, once on the new primary, never serves the old name.
    let (group, new) = tokio::task::spawn_blocking(move || {
        let new = group.failover();
        (group, new)
    })
    .await
    .unwrap();
    let keys = group.cmd(new, &["KEYS", "sess:*"]);
    let redis_harness::Reply::Array(Some(keys)) = keys else {
        panic!("KEYS: {keys:?}")
    };
    let keys: Vec<String> = keys
        .iter()
        .filter_map(redis_harness::Reply::text)
        .filter(|k| !crate::servers::is_index(k))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored = group.cmd(new, &["GET", &keys[0]]).text().unwrap();
    let renamed = stored.replace("\"ada\"", "\"eve\"");
    assert_ne!(
        renamed, stored,
        "the user's name is in the stored value: {stored}"
    );
    let set = group.cmd(new, &["SET", &keys[0], &renamed, "KEEPTTL"]);
    assert_eq!(set.text().as_deref(), Some("OK"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = on_b.get("/api/me").await;
        if r.status == 200 && r.json()["user"] == "eve" {
            break;
        }
        assert!(
            r.status != 200 || r.json()["user"] == "ada",
            "B serves only the old or the new value: {r:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "B still serves the session as before the failover: {r:?}"
        );
        // Poll interval of this wait for the demo's own switch to the new primary.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // On the new primary, a logout through A is seen by B.
    assert_eq!(on_a.post("/api/logout", None).await.status, 200);
    assert_eq!(on_b.get("/healthz").await.status, 200);
    assert_eq!(
        on_b.get("/api/me").await.status,
        401,
        "B serves no logged-out session"
    );
    drop(group);
}

/// On a Cluster (`--cache` with a `redis+cluster://` URL): reads from memory (no data
/// command on any primary), a change through another instance seen, and across a
/// `CLUSTER FAILOVER` of the session's primary a change made on the new primary is read anew.
pub async fn the_cache_works_on_cluster_across_a_failover(kind: Kind, _: Topology) {
    let cluster = tokio::task::spawn_blocking(redis_harness::RedisCluster::start)
        .await
        .unwrap();
    let config = || {
        let mut config = demo::Config::new(Some(cluster.url()));
        config.cache = 1000;
        config
    };
    let spawn = |config| spawn_app(kind, config, std::future::pending());
    let a = spawn(config()).await;
    let b = match kind {
        Kind::Axum => spawn(config()).await,
        Kind::Actix => a,
    };
    let mut on_a = Client::new(a);
    let r = on_a.post("/api/login", Some(json!({"user": "ada"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut on_b = Client::new(b);
    on_b.cookie.clone_from(&on_a.cookie);
    assert_eq!(on_b.get("/api/me").await.json()["counter"], 0);
    let primaries = cluster.primary_ports();
    for &p in &primaries {
        cluster.cmd(p, &["CONFIG", "RESETSTAT"]);
    }
    for _ in 0..5 {
        assert_eq!(on_b.get("/api/me").await.json()["counter"], 0);
    }
    // Not data: the test's own commands, connection set-up, the backend's topology check
    // (`CLUSTER INFO`, `ROLE`), and the replicas' `REPLCONF ACK`.
    for &p in &primaries {
        let calls = redis_harness::parse_command_calls(
            &cluster.cmd(p, &["INFO", "commandstats"]).text().unwrap(),
        );
        let data: Vec<_> = calls
            .iter()
            .filter(|(name, _)| {
                ![
                    "info", "config", "hello", "client", "ping", "role", "cluster", "replconf",
                ]
                .iter()
                .any(|c| name.starts_with(c))
            })
            .collect();
        assert_eq!(
            data,
            Vec::<&(String, u64)>::new(),
            "reads from memory ({p})"
        );
    }
    let r = on_a.post("/api/increment", None).await;
    assert_eq!(r.json(), json!({"counter": 1}), "{r:?}");
    assert_eq!(on_b.get("/healthz").await.status, 200);
    assert_eq!(on_b.get("/api/me").await.json()["counter"], 1);

    // The failover of the session's primary, then a change made on the new primary: the
    // session is renamed there. B never serves the old name once it has the new one.
    let keys: Vec<String> = cluster
        .scan_keys("sess:*")
        .into_iter()
        .filter(|k| !crate::servers::is_index(k))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys[0].clone();
    let new = cluster.replica_of(cluster.primary_for_key(&key));
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.failover(new);
        cluster
    })
    .await
    .unwrap();
    let stored = cluster.cmd(new, &["GET", &key]).text().unwrap();
    let renamed = stored.replace("\"ada\"", "\"eve\"");
    assert_ne!(renamed, stored, "the user's name is in the stored value");
    let set = cluster.cmd(new, &["SET", &key, &renamed, "KEEPTTL"]);
    assert_eq!(set.text().as_deref(), Some("OK"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = on_b.get("/api/me").await;
        if r.status == 200 && r.json()["user"] == "eve" {
            break;
        }
        assert!(
            r.status != 200 || r.json()["user"] == "ada",
            "B serves only the old or the new value: {r:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "B still serves the session as before the failover: {r:?}"
        );
        // Poll interval of this wait for the demo's own check of the topology.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        assert_eq!(
            on_b.get("/api/me").await.json()["user"],
            "eve",
            "never back"
        );
    }
    // On the new primary, a logout through A is seen by B.
    assert_eq!(on_a.post("/api/logout", None).await.status, 200);
    assert_eq!(on_b.get("/healthz").await.status, 200);
    assert_eq!(
        on_b.get("/api/me").await.status,
        401,
        "B serves no logged-out session"
    );
    drop(cluster);
}

// The cache on one server, on Sentinel and on Cluster.
app_suite!(axum, Axum, Standalone: reads_hit_the_cache_and_see_changes_made_elsewhere);
app_suite!(actix, Actix, Standalone: reads_hit_the_cache_and_see_changes_made_elsewhere);
app_suite!(axum_sentinel, Axum, Standalone: the_cache_works_on_sentinel_across_a_failover);
app_suite!(actix_sentinel, Actix, Standalone: the_cache_works_on_sentinel_across_a_failover);
app_suite!(axum_cluster, Axum, Standalone: the_cache_works_on_cluster_across_a_failover);
app_suite!(actix_cluster, Actix, Standalone: the_cache_works_on_cluster_across_a_failover);
