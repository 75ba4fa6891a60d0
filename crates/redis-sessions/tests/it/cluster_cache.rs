//! The client-side cache on Redis Cluster: stores with their caches on tracked cluster
//! backends of their own (`ClusterBackend::connect_tracked_with`: a tracked connection to
//! every primary). "Fence" is `health` on B: a `PING` on each of B's tracked connections, so
//! once it returns every invalidation each primary sent B before its reply has been applied
//! (and when it fails, B's caches were emptied).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redis_harness::RedisCluster;
use redis_sessions::{ClusterBackend, ClusterConfig, RedisStore, Session, SessionId};

use crate::support::{id, session};

/// Time allowed for a condition the test waits on; it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

type Cached = RedisStore<ClusterBackend>;

async fn start() -> RedisCluster {
    tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap()
}

async fn cached(cluster: &RedisCluster) -> Cached {
    let backend = ClusterBackend::connect_tracked_with(&cluster.urls(), ClusterConfig::default())
        .await
        .unwrap_or_else(|e| panic!("connect tracked to the test cluster: {e}"));
    RedisStore::builder(backend).cache(1_000).unwrap().build()
}

fn n_of(s: &Option<Session>) -> Option<i64> {
    s.as_ref().and_then(|s| s.get::<i64>("n").unwrap())
}

/// A load of `id` through `store`, after a fence, and whether it was served from memory.
async fn load(store: &Cached, id: &SessionId) -> (Option<i64>, bool) {
    store.health().await.unwrap();
    let hits = store.cache_stats().unwrap().hits;
    let n = n_of(&store.load(id).await.unwrap());
    (n, store.cache_stats().unwrap().hits > hits)
}

/// `count` new ids whose keys live on `primary`.
fn ids_on(cluster: &RedisCluster, store: &Cached, primary: u16, count: usize) -> Vec<SessionId> {
    let mut found = Vec::new();
    while found.len() < count {
        let s = id();
        if cluster.primary_for_key(&store.keyspace().key(&s)) == primary {
            found.push(s);
        }
    }
    found
}

/// Waits until `store`'s cache has been emptied more than `before` times.
async fn until_flushed(store: &Cached, before: u64) {
    let deadline = Instant::now() + PATIENCE;
    while store.cache_stats().unwrap().flushes <= before {
        assert!(
            Instant::now() < deadline,
            "the cache was not emptied within {PATIENCE:?}"
        );
        // Poll interval of this wait for the backend's own topology check.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_on_a_cluster_see_each_others_updates_and_destroys_on_every_primary() {
    let cluster = start().await;
    let (a, b) = (cached(&cluster).await, cached(&cluster).await);
    let primaries = cluster.primary_ports();
    assert_eq!(primaries.len(), 3);
    let mut ids = Vec::new();
    for &p in &primaries {
        ids.extend(ids_on(&cluster, &b, p, 4));
    }
    let on: BTreeSet<u16> = ids
        .iter()
        .map(|s| cluster.primary_for_key(&b.keyspace().key(s)))
        .collect();
    assert_eq!(on.len(), 3, "sessions on every primary");
    for (i, s) in ids.iter().enumerate() {
        let n = i as i64;
        assert!(a.create(s, &session(n)).await.unwrap().is_written());
        assert_eq!(load(&b, s).await, (Some(n), false), "a miss, then cached");
        assert_eq!(load(&b, s).await, (Some(n), true), "a hit");
    }
    for round in 1..=5i64 {
        for (i, s) in ids.iter().enumerate() {
            let n = round * 100 + i as i64;
            assert!(a.update(s, &session(n)).await.unwrap().is_written());
            assert_eq!(
                load(&b, s).await,
                (Some(n), false),
                "round {round}: A's update seen by B"
            );
            assert_eq!(load(&b, s).await, (Some(n), true), "round {round}: cached");
        }
    }
    for s in &ids {
        a.destroy(s).await.unwrap();
        assert_eq!(load(&b, s).await, (None, false), "A's destroy seen by B");
    }
    let stats = b.cache_stats().unwrap();
    assert!(stats.invalidations >= ids.len() as u64 * 6, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_a_cluster_failover_and_never_serves_what_came_before_it() {
    let cluster = start().await;
    let (a, b) = (cached(&cluster).await, cached(&cluster).await);
    let old = cluster.primary_ports()[0];
    let kept = ids_on(&cluster, &b, old, 1).remove(0);
    assert!(a.create(&kept, &session(1)).await.unwrap().is_written());
    assert_eq!(load(&b, &kept).await, (Some(1), false));
    assert_eq!(load(&b, &kept).await, (Some(1), true), "cached before");

    // The failover (manual: the replica takes over once it has every write of its primary);
    // right after it, a client changes `kept` on the new primary.
    let flushes = b.cache_stats().unwrap().flushes;
    let replica = cluster.replica_of(old);
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.failover(replica);
        cluster
    })
    .await
    .unwrap();
    let key = b.keyspace().key(&kept);
    let stored = cluster.cmd(replica, &["GET", &key]).text().unwrap();
    let mut changed_elsewhere: serde_json::Value = serde_json::from_str(&stored).unwrap();
    changed_elsewhere["n"] = 3.into();
    let json = changed_elsewhere.to_string();
    let set = cluster.cmd(replica, &["SET", &key, &json, "KEEPTTL"]);
    assert_eq!(set.text().as_deref(), Some("OK"), "{set:?}");

    // B noticed (its check of the old primary's view), and reads anew.
    until_flushed(&b, flushes).await;
    assert_eq!(
        load(&b, &kept).await,
        (Some(3), false),
        "read anew, not served from before the failover"
    );
    // Cached again once B routes to the new primary's tracked connection.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (n, hit) = load(&b, &kept).await;
        assert_eq!(n, Some(3));
        if hit {
            break;
        }
        assert!(Instant::now() < deadline, "never cached on the new primary");
        // Poll interval of this wait for the backend's own refresh of the slot map.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // After: tracking is on on the new primary.
    assert!(a.update(&kept, &session(4)).await.unwrap().is_written());
    assert_eq!(
        load(&b, &kept).await,
        (Some(4), false),
        "A's update seen by B"
    );
    for (round, s) in ids_on(&cluster, &b, replica, 20).iter().enumerate() {
        let round = round as i64;
        assert!(a.create(s, &session(round)).await.unwrap().is_written());
        assert_eq!(load(&b, s).await.0, Some(round));
        assert_eq!(load(&b, s).await, (Some(round), true));
        a.destroy(s).await.unwrap();
        assert_eq!(
            load(&b, s).await,
            (None, false),
            "round {round}: B serves no destroyed session"
        );
    }
    drop(cluster);
}

/// The ids of the connections on `port` with client-side tracking on (`t` in their flags).
fn tracking_clients(cluster: &RedisCluster, port: u16) -> Vec<String> {
    let list = cluster.cmd(port, &["CLIENT", "LIST"]).text().unwrap();
    list.lines()
        .filter(|line| {
            line.split(' ')
                .any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('t')))
        })
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// B's tracked connection to a primary is killed, then A destroys a session B holds: the
/// invalidation is lost with the connection, every round, and B still never serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tracked_connection_never_leaves_a_destroyed_session_served() {
    let cluster = start().await;
    // A without a cache: the only tracking connections are B's.
    let plain = ClusterBackend::connect(&cluster.urls()).await.unwrap();
    let a = RedisStore::builder(plain).build();
    let b = cached(&cluster).await;
    let primary = cluster.primary_ports()[1];
    for (round, s) in ids_on(&cluster, &b, primary, 8).iter().enumerate() {
        let round = round as i64;
        assert!(a.create(s, &session(round)).await.unwrap().is_written());
        // Cached: the backend's own check may empty the cache once more after the previous
        // round's kill (it finds that connection failed), so until a hit.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (n, hit) = load(&b, s).await;
            assert_eq!(n, Some(round));
            if hit {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: never cached");
        }
        let flushes = b.cache_stats().unwrap().flushes;
        // Every tracking connection there is B's (one, and for a moment after B replaced it,
        // the one it replaced).
        let clients = tracking_clients(&cluster, primary);
        assert!(!clients.is_empty(), "round {round}: B's tracked connection");
        for client in &clients {
            let _killed = cluster.cmd(primary, &["CLIENT", "KILL", "ID", client]);
        }
        a.destroy(s).await.unwrap();
        // The fence reports the lost connection, or it was already noticed and replaced.
        let _fence = b.health().await;
        let hits = b.cache_stats().unwrap().hits;
        assert_eq!(
            n_of(&b.load(s).await.unwrap()),
            None,
            "round {round}: B serves no destroyed session"
        );
        let stats = b.cache_stats().unwrap();
        assert_eq!(stats.hits, hits, "round {round}: not from memory");
        assert!(
            stats.flushes > flushes,
            "round {round}: the loss emptied the cache"
        );
    }
}

/// The one-URL connect gives a tracked Cluster backend: a store's cache is accepted, and a
/// saved session is served from memory; the plain connect is refused a cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_url_connects_tracked() {
    let cluster = start().await;
    let backend = redis_sessions::connect_tracked(&cluster.url())
        .await
        .unwrap();
    assert!(matches!(backend, redis_sessions::AnyBackend::Cluster(_)));
    let store = RedisStore::builder(backend).cache(10).unwrap().build();
    let s = id();
    assert!(store.create(&s, &session(1)).await.unwrap().is_written());
    assert_eq!(n_of(&store.load(&s).await.unwrap()), Some(1));
    assert!(store.update(&s, &session(2)).await.unwrap().is_written());
    assert_eq!(n_of(&store.load(&s).await.unwrap()), Some(2));
    let stats = store.cache_stats().unwrap();
    assert_eq!(
        (stats.hits, stats.misses),
        (1, 1),
        "a miss, then the saved session is served from memory"
    );
    let plain = redis_sessions::connect(&cluster.url()).await.unwrap();
    assert!(RedisStore::builder(plain).cache(10).is_err());
    let plain = ClusterBackend::connect(&cluster.urls()).await.unwrap();
    assert!(RedisStore::builder(plain).cache(10).is_err());
}

/// The store's ACL user (`acl/setuser.redis`) on every node is enough for the cache on a
/// cluster; without `+cluster|info` the tracked connect is refused, naming the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_user_runs_the_cache_on_a_cluster() {
    use crate::acl::{acl_cluster, lines, STORE_USER};
    use crate::support::Deployment;

    let line = lines().line(STORE_USER).to_owned();
    let deployment = acl_cluster(line.clone(), "sess:").await;
    let backend = redis_sessions::connect_tracked(&deployment.url())
        .await
        .unwrap_or_else(|e| panic!("connect tracked as the store user: {e}"));
    let store = RedisStore::builder(backend).cache(10).unwrap().build();
    let s = id();
    assert!(store.create(&s, &session(1)).await.unwrap().is_written());
    assert_eq!(n_of(&store.load(&s).await.unwrap()), Some(1));
    assert_eq!(n_of(&store.load(&s).await.unwrap()), Some(1));
    assert_eq!(store.cache_stats().unwrap().hits, 1);
    store.health().await.unwrap();
    store.destroy(&s).await.unwrap();
    assert_eq!(n_of(&store.load(&s).await.unwrap()), None);

    let without = line.replace(" +cluster|info", "");
    assert_ne!(without, line);
    let deployment = acl_cluster(without, "sess:").await;
    let err = redis_sessions::connect_tracked(&deployment.url())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis_sessions::BackendErrorKind::PermissionDenied,
        "{err}"
    );
    assert!(err.to_string().contains("CLUSTER"), "{err}");
}

/// A slot moves from one primary to another (`CLUSTER SETSLOT ... MIGRATING`/`IMPORTING`,
/// `MIGRATE`, `SETSLOT ... NODE`), at fixed steps: B held the session; while the slot
/// migrates, its reads are redirected (`ASK`), answered right and never installed; after,
/// B caches it on the new primary and hears A's changes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_is_followed_and_nothing_read_during_it_is_installed() {
    let cluster = start().await;
    let (a, b) = (cached(&cluster).await, cached(&cluster).await);
    let primaries = cluster.primary_ports();
    let (from, to) = (primaries[0], primaries[1]);
    let s = ids_on(&cluster, &b, from, 1).remove(0);
    let key = b.keyspace().key(&s);
    let slot = cluster.slot_of(&key).to_string();
    let node_id = |port: u16| {
        cluster
            .topology()
            .into_iter()
            .find(|n| n.port == port)
            .map(|n| n.id)
            .unwrap()
    };
    let (from_id, to_id) = (node_id(from), node_id(to));
    assert!(a.create(&s, &session(1)).await.unwrap().is_written());
    assert_eq!(load(&b, &s).await, (Some(1), false));
    assert_eq!(load(&b, &s).await, (Some(1), true), "cached on the source");

    let ok = |reply: redis_harness::Reply| assert_eq!(reply.text().as_deref(), Some("OK"));
    ok(cluster.cmd(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]));
    ok(cluster.cmd(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]));
    let port = to.to_string();
    ok(cluster.cmd(from, &["MIGRATE", "127.0.0.1", &port, &key, "0", "5000"]));
    for round in 0..3 {
        assert_eq!(
            load(&b, &s).await,
            (Some(1), false),
            "round {round}: moved, read through the redirection, not installed"
        );
    }
    assert!(a.update(&s, &session(2)).await.unwrap().is_written());
    assert_eq!(load(&b, &s).await, (Some(2), false), "A's update during it");

    // The slot is the target's: on the target first, then the source, then the rest.
    for port in [to, from, primaries[2]] {
        ok(cluster.cmd(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]));
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (n, hit) = load(&b, &s).await;
        assert_eq!(n, Some(2));
        if hit {
            break;
        }
        assert!(Instant::now() < deadline, "never cached on the new primary");
        // Poll interval of this wait for the backend's own refresh of the slot map.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.update(&s, &session(3)).await.unwrap().is_written());
    assert_eq!(
        load(&b, &s).await,
        (Some(3), false),
        "A's update on the target"
    );
    assert_eq!(load(&b, &s).await, (Some(3), true));
    a.destroy(&s).await.unwrap();
    assert_eq!(
        load(&b, &s).await,
        (None, false),
        "A's destroy on the target"
    );
}

/// Over TLS (`rediss+cluster://` with a CA): the tracked connection to each primary is TLS
/// with the seeds' settings; two caches see each other's updates and destroys.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_on_a_tls_cluster() {
    use redis_sessions::{AnyBackend, Deployment, TlsConfig};

    let cluster = tokio::task::spawn_blocking(RedisCluster::start_tls)
        .await
        .unwrap();
    let tls = TlsConfig::new().ca_pem(redis_harness::TlsCerts::get().pem("ca.crt"));
    let deployment = Deployment::parse(&cluster.tls_url()).unwrap();
    let connect = || async {
        let backend = deployment
            .connect_tracked_with_tls(tls.clone())
            .await
            .unwrap_or_else(|e| panic!("connect tracked over TLS: {e}"));
        assert!(matches!(backend, AnyBackend::Cluster(_)));
        RedisStore::builder(backend).cache(100).unwrap().build()
    };
    let (a, b) = (connect().await, connect().await);
    let ids: Vec<SessionId> = (0..12).map(|_| id()).collect();
    for (i, s) in ids.iter().enumerate() {
        let n = i as i64;
        assert!(a.create(s, &session(n)).await.unwrap().is_written());
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(s).await.unwrap()), Some(n));
        let hits = b.cache_stats().unwrap().hits;
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(s).await.unwrap()), Some(n));
        assert_eq!(b.cache_stats().unwrap().hits, hits + 1, "a hit");
        assert!(a.update(s, &session(n + 100)).await.unwrap().is_written());
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(s).await.unwrap()), Some(n + 100), "A's update");
        a.destroy(s).await.unwrap();
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(s).await.unwrap()), None, "A's destroy");
    }
}
