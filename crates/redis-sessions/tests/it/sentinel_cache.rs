//! The client-side cache on a Sentinel group: two stores, each with its cache on a tracked
//! backend of its own (`SentinelBackend::connect_tracked_with`), across a `SENTINEL FAILOVER`.
//! "Fence" is a `PING` on B's connection (`health`): every invalidation Redis sent B before
//! its reply has been applied when it returns.

use std::time::{Duration, Instant};

use redis_sessions::{RedisStore, SentinelBackend, SentinelConfig, Session};

use crate::support::{id, session};

/// Time allowed for a condition the test waits on; it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

type Cached = RedisStore<SentinelBackend>;

async fn cached(group: &redis_harness::RedisSentinelGroup) -> Cached {
    let sentinels = group
        .sentinel_ports()
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"));
    let config = SentinelConfig::new(sentinels, group.master_name());
    let backend = SentinelBackend::connect_tracked_with(config)
        .await
        .unwrap_or_else(|e| panic!("connect through the test sentinels: {e}"));
    RedisStore::builder(backend).cache(1_000).unwrap().build()
}

fn n_of(s: &Option<Session>) -> Option<i64> {
    s.as_ref().and_then(|s| s.get::<i64>("n").unwrap())
}

/// Waits until `store`'s backend uses the primary on `port`.
async fn until_on(store: &Cached, port: u16) {
    let deadline = Instant::now() + PATIENCE;
    while store.backend().primary().1 != port {
        assert!(
            Instant::now() < deadline,
            "backend still on {:?} within {PATIENCE:?}, not on {port}",
            store.backend().primary()
        );
        // Poll interval of this wait for the backend's own switch.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A load of `id` through `store`, after a fence, and whether it was served from memory.
async fn load(store: &Cached, id: &redis_sessions::SessionId) -> (Option<i64>, bool) {
    store.health().await.unwrap();
    let hits = store.cache_stats().unwrap().hits;
    let n = n_of(&store.load(id).await.unwrap());
    (n, store.cache_stats().unwrap().hits > hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_a_sentinel_failover_and_never_serves_what_came_before_it() {
    let group = tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start)
        .await
        .unwrap();
    let (a, b) = (cached(&group).await, cached(&group).await);
    let old = group.primary_port();

    // Before: B's cache serves hits and hears A's changes and destroys.
    let (kept, changed, gone) = (id(), id(), id());
    for id in [&kept, &changed, &gone] {
        assert!(a.create(id, &session(1)).await.unwrap().is_written());
        assert_eq!(load(&b, id).await, (Some(1), false), "a miss, then cached");
        assert_eq!(load(&b, id).await, (Some(1), true), "a hit");
    }
    assert!(a.update(&changed, &session(2)).await.unwrap().is_written());
    assert_eq!(load(&b, &changed).await.0, Some(2), "A's update seen by B");
    a.destroy(&gone).await.unwrap();
    assert_eq!(load(&b, &gone).await.0, None, "A's destroy seen by B");

    // The failover; right after it, a client changes `kept` on the new primary, whether or
    // not B has switched yet. `WAIT` first, so the replica has every write of before.
    let (generation, mut conn) = a.backend().connection();
    assert_eq!(generation, 1);
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(acked, 1, "the replica has every write");
    let (group, new) = tokio::task::spawn_blocking(move || {
        let new = group.failover();
        (group, new)
    })
    .await
    .unwrap();
    assert_ne!(new, old);
    let key = b.keyspace().key(&kept);
    let stored = group.cmd(new, &["GET", &key]).text().unwrap();
    let mut changed_elsewhere: serde_json::Value = serde_json::from_str(&stored).unwrap();
    changed_elsewhere["n"] = 3.into();
    let json = changed_elsewhere.to_string();
    let set = group.cmd(new, &["SET", &key, &json, "KEEPTTL"]);
    assert_eq!(set.text().as_deref(), Some("OK"), "{set:?}");

    until_on(&a, new).await;
    until_on(&b, new).await;
    assert!(
        b.cache_stats().unwrap().flushes >= 1,
        "the switch emptied B's cache"
    );
    assert_eq!(
        load(&b, &kept).await,
        (Some(3), false),
        "read anew from the new primary, not served from before the switch"
    );
    assert_eq!(load(&b, &kept).await, (Some(3), true), "cached again");

    // After: tracking is on on the new primary's connection.
    assert!(a.update(&kept, &session(4)).await.unwrap().is_written());
    assert_eq!(
        load(&b, &kept).await,
        (Some(4), false),
        "A's update seen by B"
    );
    for round in 0..50 {
        let s = id();
        assert!(a.create(&s, &session(round)).await.unwrap().is_written());
        assert_eq!(load(&b, &s).await.0, Some(round));
        assert_eq!(load(&b, &s).await, (Some(round), true));
        a.destroy(&s).await.unwrap();
        assert_eq!(
            load(&b, &s).await.0,
            None,
            "round {round}: B serves no destroyed session"
        );
    }
    drop(group);
}

/// The one-URL connect gives a tracked Sentinel backend: a store's cache is accepted, and a
/// saved session is served from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_connects_tracked() {
    let group = tokio::task::spawn_blocking(redis_harness::RedisSentinelGroup::start)
        .await
        .unwrap();
    let backend = redis_sessions::connect_tracked(&group.url()).await.unwrap();
    assert!(matches!(backend, redis_sessions::AnyBackend::Sentinel(_)));
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
    // Not tracked: the plain connect refuses a cache.
    let plain = redis_sessions::connect(&group.url()).await.unwrap();
    assert!(RedisStore::builder(plain).cache(10).is_err());
    drop(group);
}
