//! The client-side cache on real servers: two stores, each with its cache on a tracked
//! connection of its own, on one Redis. "Fence" below is a `PING` on B's connection
//! (`health`): every invalidation Redis sent B before its reply has been applied when it
//! returns, so what B serves after it shows whether B honours what Redis told it.

use std::sync::Arc;
use std::time::Duration;

use redis_harness::RedisServer;
use redis_sessions::{
    Error, MemoryBackend, RedisBackend, RedisStore, Serializer, StoreBuilder, TrackedConnection,
};

use crate::support::{eventually, held_then_run_in_order, id, session};

type Tracked = RedisStore<RedisBackend<TrackedConnection>>;

async fn cached_with(
    server: &RedisServer,
    options: impl FnOnce(
        StoreBuilder<RedisBackend<TrackedConnection>>,
    ) -> StoreBuilder<RedisBackend<TrackedConnection>>,
) -> Tracked {
    let backend = RedisBackend::connect_tracked(&server.url()).await.unwrap();
    options(RedisStore::builder(backend).cache(10_000).unwrap()).build()
}

async fn cached(server: &RedisServer) -> Tracked {
    cached_with(server, |b| b).await
}

/// The commands served since the last `CONFIG RESETSTAT`, less the test's own `INFO` and
/// `CONFIG` and the connections' set-up (`HELLO`, `CLIENT`).
fn data_calls(server: &RedisServer) -> Vec<(String, u64)> {
    let control = ["info", "config", "hello", "client", "ping"];
    let mut calls = server.command_calls();
    calls.retain(|(name, _)| !control.iter().any(|c| name.starts_with(c)));
    calls
}

fn n_of(s: &Option<redis_sessions::Session>) -> Option<i64> {
    s.as_ref().and_then(|s| s.get::<i64>("n").unwrap())
}

#[tokio::test]
async fn a_cache_is_refused_where_nothing_tracks_keys() {
    let server = RedisServer::start();
    let Err(err) = RedisStore::builder(MemoryBackend::new()).cache(10) else {
        panic!("a cache on the memory backend")
    };
    assert!(matches!(err, Error::CacheUnsupported), "{err}");
    let manager = RedisBackend::connect(&server.url()).await.unwrap();
    let Err(err) = RedisStore::builder(manager).cache(10) else {
        panic!("a cache on a connection manager")
    };
    assert!(err.to_string().contains("connect_tracked"), "{err}");
    let resp2 = format!("{}?protocol=resp2", server.url());
    let err = RedisBackend::connect_tracked(&resp2).await.unwrap_err();
    assert!(err.to_string().contains("RESP3"), "{err}");
    // The one-URL connect: one server is tracked (and Sentinel and Cluster, see
    // sentinel_cache.rs and cluster_cache.rs, where the plain connects are refused a cache).
    let tracked = redis_sessions::connect_tracked(&server.url())
        .await
        .unwrap();
    assert!(RedisStore::builder(tracked).cache(10).is_ok());
}

#[tokio::test]
async fn a_hit_costs_no_command_and_a_save_of_a_cached_session_one() {
    let server = RedisServer::start();
    let store = cached_with(&server, |b| b.idle_timeout(Duration::from_secs(600))).await;
    let id = id();
    assert!(store.create(&id, &session(1)).await.unwrap().is_written());
    server.cmd(&["CONFIG", "RESETSTAT"]);
    // A miss under the idle timeout: one `GETEX PX`, nothing else.
    assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(1));
    assert_eq!(data_calls(&server), vec![("getex".to_owned(), 1)]);
    assert!(store.update(&id, &session(1)).await.unwrap().is_written());
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(1));
    assert_eq!(data_calls(&server), vec![], "a hit");
    assert!(store.update(&id, &session(2)).await.unwrap().is_written());
    assert_eq!(
        data_calls(&server),
        vec![("set".to_owned(), 1)],
        "the save: one plain SET"
    );
    for _ in 0..10 {
        assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(2));
    }
    assert_eq!(
        data_calls(&server),
        vec![("set".to_owned(), 1)],
        "the saved session is cached"
    );
    let stats = store.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.entries), (11, 1, 1));
}

#[tokio::test]
async fn a_hit_refreshes_the_ttl_once_the_refresh_share_of_the_idle_timeout_has_passed() {
    let server = RedisServer::start();
    let idle = Duration::from_secs(600);
    // Share 0: every hit is due (the bound is then the idle timeout itself).
    let eager = {
        let backend = RedisBackend::connect_tracked(&server.url()).await.unwrap();
        RedisStore::builder(backend)
            .idle_timeout(idle)
            .cache_with(redis_sessions::CacheConfig::new(100).refresh_fraction(0.0))
            .unwrap()
            .build()
    };
    let lazy = cached_with(&server, |b| b.idle_timeout(idle)).await;
    let (a, b) = (id(), id());
    for id in [&a, &b] {
        assert!(eager.create(id, &session(1)).await.unwrap().is_written());
    }
    assert!(lazy.load(&b).await.unwrap().is_some()); // cached by `lazy`, refreshed
    let key_a = eager.keyspace().key(&a);
    server.cmd(&["PEXPIRE", &key_a, "100000"]);
    assert!(eager.load(&a).await.unwrap().is_some());
    let ttl = server.cmd(&["PTTL", &key_a]).int().unwrap();
    assert!(ttl > 500_000, "refreshed to the idle timeout: {ttl}");
    server.cmd(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        assert!(lazy.load(&b).await.unwrap().is_some());
    }
    assert_eq!(data_calls(&server), vec![], "within the share: hits only");
}

#[tokio::test]
async fn a_destroy_through_a_is_never_served_by_b_after_its_invalidation() {
    let server = RedisServer::start();
    let (a, b) = (cached(&server).await, cached(&server).await);
    for round in 0..200 {
        let id = id();
        assert!(a.create(&id, &session(round)).await.unwrap().is_written());
        assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(round)); // miss: cached
        assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(round)); // hit
        assert!(a.destroy(&id).await.unwrap());
        b.health().await.unwrap();
        assert!(b.load(&id).await.unwrap().is_none(), "round {round}");
    }
    let stats = b.cache_stats().unwrap();
    assert_eq!(stats.hits, 200, "{stats:?}");
    assert!(stats.invalidations >= 200, "{stats:?}");
}

#[tokio::test]
async fn an_update_through_a_is_seen_by_bs_next_read() {
    let server = RedisServer::start();
    let (a, b) = (cached(&server).await, cached(&server).await);
    let id = id();
    assert!(a.create(&id, &session(0)).await.unwrap().is_written());
    for n in 1..=100 {
        assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(n - 1));
        assert!(a.update(&id, &session(n)).await.unwrap().is_written());
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(n));
    }
}

/// A session B saved (and so cached without reading it) is still dropped when A changes it.
#[tokio::test]
async fn a_session_b_saved_is_dropped_when_a_changes_it() {
    let server = RedisServer::start();
    let (a, b) = (cached(&server).await, cached(&server).await);
    let id = id();
    assert!(b.create(&id, &session(0)).await.unwrap().is_written());
    for n in (1..=100).step_by(2) {
        assert!(b.update(&id, &session(n)).await.unwrap().is_written());
        assert_eq!(
            n_of(&b.load(&id).await.unwrap()),
            Some(n),
            "cached by the save"
        );
        assert!(a.update(&id, &session(n + 1)).await.unwrap().is_written());
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(n + 1));
    }
    // Every load right after B's own save was a hit, but the first (B had read nothing yet, so
    // knew no shape to install the saved value in).
    assert_eq!(b.cache_stats().unwrap().hits, 49);
}

/// Another client's store under `prefix` creates and changes sessions; `store` caches each
/// and then serves the change.
async fn changes_reach(
    store: &Tracked,
    writer: &RedisBackend<redis::aio::ConnectionManager>,
    prefix: &str,
) {
    let writer = RedisStore::builder(writer.clone()).prefix(prefix).build();
    for n in 0..20 {
        let id = id();
        assert!(writer.create(&id, &session(n)).await.unwrap().is_written());
        assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(n));
        assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(n), "a hit");
        assert!(writer
            .update(&id, &session(n + 1))
            .await
            .unwrap()
            .is_written());
        store.health().await.unwrap();
        assert_eq!(
            n_of(&store.load(&id).await.unwrap()),
            Some(n + 1),
            "{prefix}"
        );
    }
}

/// Two stores with their own prefixes share one tracked connection: each hears of the
/// changes of its own sessions, and the third store's, registered after the connection was
/// made, too.
#[tokio::test]
async fn stores_of_several_prefixes_share_one_tracked_connection() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect_tracked(&server.url()).await.unwrap();
    let build = |prefix: &str| {
        RedisStore::builder(backend.clone())
            .prefix(prefix)
            .cache(100)
            .unwrap()
            .build()
    };
    let (x, y) = (build("x:"), build("y:"));
    let writer = RedisBackend::connect(&server.url()).await.unwrap();
    changes_reach(&x, &writer, "x:").await;
    changes_reach(&y, &writer, "y:").await;
    let z = build("z:");
    changes_reach(&z, &writer, "z:").await;
    changes_reach(&x, &writer, "x:").await;
    for store in [&x, &y, &z] {
        assert!(store.cache_stats().unwrap().invalidations >= 20);
    }
}

/// B's read runs in Redis just before A's update, both in flight together: the invalidation
/// reaches B right behind the old value, and B must not keep that value.
#[tokio::test]
async fn a_read_racing_an_update_never_keeps_the_old_value() {
    let server = RedisServer::start();
    // Under an idle timeout B's read is a `GETEX`, a write that `CLIENT PAUSE WRITE` holds.
    let idle = |b: StoreBuilder<_>| b.idle_timeout(Duration::from_secs(600));
    let (a, b) = (
        Arc::new(cached(&server).await),
        Arc::new(cached_with(&server, idle).await),
    );
    // Both connections made first (the first command after a store registers its prefix
    // makes the broadcast-tracking connection), so the held commands are the read and write.
    let warm = id();
    assert!(a.create(&warm, &session(0)).await.unwrap().is_written());
    assert!(b.load(&warm).await.unwrap().is_some());
    for round in 0..20 {
        let id = id();
        assert!(a.create(&id, &session(0)).await.unwrap().is_written());
        let (read, written) = {
            let (a, b, id2) = (Arc::clone(&a), Arc::clone(&b), id.clone());
            let id1 = id.clone();
            held_then_run_in_order(
                server.port(),
                async move { b.load(&id1).await.unwrap() },
                async move { a.update(&id2, &session(1)).await.unwrap() },
            )
            .await
        };
        assert_eq!(n_of(&read), Some(0), "B's read ran first");
        assert!(written.is_written());
        b.health().await.unwrap();
        assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(1), "round {round}");
    }
    // The other order: the update first, then the read sees (and may keep) the new value.
    let id = id();
    assert!(a.create(&id, &session(0)).await.unwrap().is_written());
    let (written, read) = {
        let (a2, b2, id1, id2) = (Arc::clone(&a), Arc::clone(&b), id.clone(), id.clone());
        held_then_run_in_order(
            server.port(),
            async move { a2.update(&id1, &session(1)).await.unwrap() },
            async move { b2.load(&id2).await.unwrap() },
        )
        .await
    };
    assert!(written.is_written());
    assert_eq!(n_of(&read), Some(1));
    b.health().await.unwrap();
    assert_eq!(n_of(&b.load(&id).await.unwrap()), Some(1));
}

/// Runs `control` on a connection of its own to the server on `port`, off the runtime (it
/// blocks).
async fn on_control(
    port: u16,
    control: impl FnOnce(&mut redis_harness::Connection) + Send + 'static,
) {
    tokio::task::spawn_blocking(move || {
        let mut conn = redis_harness::Connection::open(port).unwrap();
        control(&mut conn);
    })
    .await
    .unwrap();
}

/// Two saves of one session by one store, the second started while the first is in flight
/// (held by `CLIENT PAUSE WRITE`): they go one after the other, each installs what it wrote,
/// and the next load is a hit with the second's value, which a change by another client
/// still drops.
#[tokio::test]
async fn overlapping_saves_of_one_session_leave_the_last_one_cached() {
    use futures_util::FutureExt;

    let server = RedisServer::start();
    let port = server.port();
    let store = Arc::new(cached(&server).await);
    let other = cached(&server).await;
    for round in 0..5 {
        let id = id();
        assert!(store.create(&id, &session(0)).await.unwrap().is_written());
        assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(0));
        on_control(port, |c| {
            let ok = c.command(&["CLIENT", "PAUSE", "20000", "WRITE"]).unwrap();
            assert_eq!(ok.text().as_deref(), Some("OK"), "{ok:?}");
        })
        .await;
        let first = {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move { store.update(&id, &session(1)).await.unwrap() })
        };
        // The first save's `SET` is held at the server: it is in flight.
        on_control(port, |c| {
            c.wait_for_blocked(1, Duration::from_secs(5)).unwrap();
        })
        .await;
        // The second is started while it is: its first poll runs up to its turn.
        let session2 = session(2);
        let mut second = Box::pin(store.update(&id, &session2));
        assert!((&mut second).now_or_never().is_none());
        on_control(port, |c| {
            let ok = c.command(&["CLIENT", "UNPAUSE"]).unwrap();
            assert_eq!(ok.text().as_deref(), Some("OK"), "{ok:?}");
        })
        .await;
        assert!(first.await.unwrap().is_written());
        assert!(second.await.unwrap().is_written());
        let before = store.cache_stats().unwrap();
        server.cmd(&["CONFIG", "RESETSTAT"]);
        assert_eq!(
            n_of(&store.load(&id).await.unwrap()),
            Some(2),
            "round {round}"
        );
        let after = store.cache_stats().unwrap();
        assert_eq!(
            (after.hits - before.hits, after.misses - before.misses),
            (1, 0),
            "round {round}: the last save is cached"
        );
        assert_eq!(data_calls(&server), vec![], "round {round}: no command");
        // Another client's change still drops it.
        assert!(other.update(&id, &session(3)).await.unwrap().is_written());
        store.health().await.unwrap();
        assert_eq!(
            n_of(&store.load(&id).await.unwrap()),
            Some(3),
            "round {round}"
        );
    }
}

/// A load that misses while a save of its session by the same store is in flight (held by
/// `CLIENT PAUSE WRITE`) waits for the save and takes what it installed: no read is sent.
#[tokio::test]
async fn a_load_during_a_save_in_flight_takes_the_saved_session() {
    use futures_util::FutureExt;

    let server = RedisServer::start();
    let port = server.port();
    let store = Arc::new(cached_with(&server, |b| b.idle_timeout(Duration::from_secs(600))).await);
    let id = id();
    assert!(store.create(&id, &session(0)).await.unwrap().is_written());
    assert_eq!(n_of(&store.load(&id).await.unwrap()), Some(0));
    server.cmd(&["CONFIG", "RESETSTAT"]);
    on_control(port, |c| {
        let ok = c.command(&["CLIENT", "PAUSE", "20000", "WRITE"]).unwrap();
        assert_eq!(ok.text().as_deref(), Some("OK"), "{ok:?}");
    })
    .await;
    let save = {
        let (store, id) = (Arc::clone(&store), id.clone());
        tokio::spawn(async move { store.update(&id, &session(1)).await.unwrap() })
    };
    on_control(port, |c| {
        c.wait_for_blocked(1, Duration::from_secs(5)).unwrap();
    })
    .await;
    let mut load = Box::pin(store.load(&id));
    assert!((&mut load).now_or_never().is_none(), "waits for the save");
    on_control(port, |c| {
        let ok = c.command(&["CLIENT", "UNPAUSE"]).unwrap();
        assert_eq!(ok.text().as_deref(), Some("OK"), "{ok:?}");
    })
    .await;
    assert!(save.await.unwrap().is_written());
    assert_eq!(n_of(&load.await.unwrap()), Some(1));
    assert_eq!(data_calls(&server), vec![("set".to_owned(), 1)], "no read");
    let stats = store.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn an_expired_session_is_not_served() {
    let server = RedisServer::start();
    let a = cached(&server).await;
    let b = cached_with(&server, |b| b.ttl(Duration::from_millis(300))).await;
    let id = id();
    assert!(b.create(&id, &session(7)).await.unwrap().is_written());
    assert!(a.load(&id).await.unwrap().is_some());
    assert!(b.load(&id).await.unwrap().is_some());
    let key = b.keyspace().key(&id);
    eventually(
        Duration::from_secs(5),
        "the key expired in Redis",
        || async { server.cmd(&["EXISTS", &key]).int() == Some(0) },
    )
    .await;
    for store in [&a, &b] {
        store.health().await.unwrap();
        assert!(store.load(&id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_killed_connection_empties_the_cache_so_a_destroy_it_missed_is_honoured() {
    let server = RedisServer::start();
    let (a, b) = (cached(&server).await, cached(&server).await);
    for round in 0..20 {
        let id = id();
        assert!(a.create(&id, &session(round)).await.unwrap().is_written());
        assert!(b.load(&id).await.unwrap().is_some());
        let b_id: i64 = b
            .backend()
            .command(redis::cmd("CLIENT").arg("ID"))
            .await
            .unwrap();
        let killed = server.cmd(&["CLIENT", "KILL", "ID", &b_id.to_string()]);
        assert_eq!(killed.int(), Some(1), "{killed:?}");
        assert!(a.destroy(&id).await.unwrap());
        // The first command after the kill fails or reconnects; either way B knows.
        let _ = b.health().await;
        assert!(b.load(&id).await.unwrap().is_none(), "round {round}");
    }
    assert!(b.cache_stats().unwrap().flushes >= 20);
}

#[tokio::test]
async fn a_hundred_thousand_sessions_through_ten_thousand_entries_stay_within_the_bound() {
    let server = RedisServer::start();
    let cached = Arc::new(cached(&server).await);
    let ids: Arc<Vec<_>> = Arc::new((0..100_000).map(|_| id()).collect());
    let value = String::from_utf8(redis_sessions::Json.encode(&session(1)).unwrap()).unwrap();
    for chunk in ids.chunks(5_000) {
        let mut mset = vec!["MSET".to_owned()];
        for id in chunk {
            mset.push(cached.keyspace().key(id));
            mset.push(value.clone());
        }
        let args: Vec<&str> = mset.iter().map(String::as_str).collect();
        assert_eq!(server.cmd(&args).text().as_deref(), Some("OK"));
    }
    let tasks = 16;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (ids, cached) = (Arc::clone(&ids), Arc::clone(&cached));
        handles.push(tokio::spawn(async move {
            let mut most = 0;
            for id in ids.iter().skip(t).step_by(tasks) {
                assert!(cached.load(id).await.unwrap().is_some());
                most = most.max(cached.cache_stats().unwrap().entries);
            }
            most
        }));
    }
    for handle in handles {
        assert!(handle.await.unwrap() <= 10_000);
    }
    let stats = cached.cache_stats().unwrap();
    assert_eq!(stats.entries, 10_000, "{stats:?}");
    assert!(stats.evictions >= 90_000, "{stats:?}");
    assert!(stats.bytes <= 10_000 * 2048, "{stats:?}");
}

#[tokio::test]
async fn hashed_ids_and_the_user_index_are_invalidated_too() {
    let server = RedisServer::start();
    let options = |b: StoreBuilder<_>| {
        b.hash_ids(redis_sessions::IdHashing::Sha256)
            .index_by("user")
    };
    let a = cached_with(&server, options).await;
    let b = cached_with(&server, options).await;
    let (one, two) = (id(), id());
    let mut s = session(1);
    s.insert("user", "ada").unwrap();
    for id in [&one, &two] {
        assert!(a.create(id, &s).await.unwrap().is_written());
        assert!(b.load(id).await.unwrap().is_some());
        assert!(b.load(id).await.unwrap().is_some());
    }
    assert_eq!(a.revoke_user_sessions("ada", None).await.unwrap(), 2);
    b.health().await.unwrap();
    assert!(b.load(&one).await.unwrap().is_none());
    assert!(b.load(&two).await.unwrap().is_none());
}

/// tower-sessions through an armored cached store: hits in the adapter's shape, saves
/// installed, a delete elsewhere honoured.
#[cfg(all(
    feature = "tower-sessions-015",
    feature = "encryption",
    feature = "compression"
))]
#[tokio::test]
async fn tower_sessions_loads_hit_the_cache_and_see_a_delete_elsewhere() {
    use std::collections::HashMap;
    use tower_sessions_core_015::session::{Id, Record};
    use tower_sessions_core_015::SessionStore;

    let server = RedisServer::start();
    let options = |b: StoreBuilder<_>| {
        b.hash_ids(redis_sessions::IdHashing::Sha256)
            .compress_above(0)
            .encrypt(redis_sessions::KeyRing::new([7; 32]))
            .idle_timeout(Duration::from_secs(600))
    };
    let (a, b) = (
        cached_with(&server, options).await,
        cached_with(&server, options).await,
    );
    let record = |counter: i64| Record {
        id: Id(42),
        data: HashMap::from([("counter".to_owned(), serde_json::json!(counter))]),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(10),
    };
    let mut rec = record(1);
    SessionStore::create(&b, &mut rec).await.unwrap();
    let load = |store: &Tracked, id| {
        let store = store.clone();
        async move { SessionStore::load(&store, &id).await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(load(&b, rec.id).await.unwrap().data["counter"], 1);
    }
    rec.data.insert("counter".to_owned(), serde_json::json!(2));
    SessionStore::save(&b, &rec).await.unwrap();
    assert_eq!(load(&b, rec.id).await.unwrap().data["counter"], 2);
    let stats = b.cache_stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (1, 3), "{stats:?}");
    SessionStore::delete(&a, &rec.id).await.unwrap();
    b.health().await.unwrap();
    assert!(load(&b, rec.id).await.is_none());
}

/// A store that merges concurrent saves keeps each entry's version: a request served by the
/// cache saves with one conditional write, without a conflict or a read. That write is a
/// script, which Redis 7 reports back to the writing connection under broadcast tracking, so
/// the next load reads the session again (and is a hit after that).
#[tokio::test]
async fn merged_saves_of_cached_sessions_need_no_read() {
    use std::collections::HashMap;
    use tower_sessions_core_015::session::{Id, Record};
    use tower_sessions_core_015::SessionStore;

    let server = RedisServer::start();
    let store = cached_with(&server, |b| {
        b.idle_timeout(Duration::from_secs(600))
            .merge_concurrent_saves(true)
    })
    .await;
    let mut rec = Record {
        id: Id(7),
        data: HashMap::from([("counter".to_owned(), serde_json::json!(0))]),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(10),
    };
    SessionStore::create(&store, &mut rec).await.unwrap();
    // One request: load (twice, as a page that reads it in two places), count, save, in one
    // task (as both frameworks run a request).
    let request = |store: &Tracked| {
        let store = store.clone();
        tokio::spawn(async move {
            let _first = SessionStore::load(&store, &Id(7)).await.unwrap().unwrap();
            let mut rec = SessionStore::load(&store, &Id(7)).await.unwrap().unwrap();
            let n = rec.data["counter"].as_i64().unwrap() + 1;
            rec.data.insert("counter".to_owned(), serde_json::json!(n));
            SessionStore::save(&store, &rec).await.unwrap();
            n
        })
    };
    // The first loads the script (its first `EVALSHA` is refused with `NOSCRIPT`).
    assert_eq!(request(&store).await.unwrap(), 1);
    store.health().await.unwrap();
    for n in 2..=10 {
        server.cmd(&["CONFIG", "RESETSTAT"]);
        assert_eq!(request(&store).await.unwrap(), n);
        // Every call of the scripts counts as `evalsha` (their own commands count apart).
        assert_eq!(server.calls_of("evalsha"), 1, "round {n}: no conflict");
        assert_eq!(
            server.calls_of("getex"),
            1,
            "round {n}: one read, then a hit"
        );
        store.health().await.unwrap();
    }
    let stats = store.cache_stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (10, 10), "{stats:?}");
    let stored = SessionStore::load(&store, &Id(7)).await.unwrap().unwrap();
    assert_eq!(stored.data["counter"], 10);
}

/// What a save installs (the adapter's session in memory, not decoded from the bytes) is what
/// a load from Redis returns, on both adapters, under an idle timeout and an absolute one
/// (the stored bound and creation record).
#[cfg(all(feature = "tower-sessions-015", feature = "actix"))]
#[tokio::test]
async fn a_saved_session_served_from_the_cache_is_what_redis_holds() {
    use std::collections::HashMap;
    use tower_sessions_core_015::session::{Id, Record};

    let server = RedisServer::start();
    let (idle, absolute) = (Duration::from_secs(600), Duration::from_secs(3600));
    let store = cached_with(&server, |b| b.idle_timeout(idle).absolute_timeout(absolute)).await;
    let plain = RedisStore::builder(RedisBackend::connect(&server.url()).await.unwrap())
        .idle_timeout(idle)
        .absolute_timeout(absolute)
        .build();
    // tower-sessions: records of the same data as loaded from Redis and from the cache.
    let mut rec = Record {
        id: Id(11),
        data: HashMap::from([
            ("counter".to_owned(), serde_json::json!(1)),
            ("ratio".to_owned(), serde_json::json!(0.1)),
            (
                "nested".to_owned(),
                serde_json::json!({"a": [1, null, "é"]}),
            ),
        ]),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(10),
    };
    tower_sessions_core_015::SessionStore::create(&store, &mut rec)
        .await
        .unwrap();
    let loaded = tower_sessions_core_015::SessionStore::load(&store, &rec.id)
        .await
        .unwrap()
        .unwrap();
    let mut rec = loaded.clone();
    rec.data.insert("counter".to_owned(), serde_json::json!(2));
    tower_sessions_core_015::SessionStore::save(&store, &rec)
        .await
        .unwrap();
    let before = store.cache_stats().unwrap().hits;
    let cached = tower_sessions_core_015::SessionStore::load(&store, &rec.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.cache_stats().unwrap().hits, before + 1, "a hit");
    let fresh = tower_sessions_core_015::SessionStore::load(&plain, &rec.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.data, fresh.data);
    assert!(cached.data.contains_key("__created"), "{:?}", cached.data);
    // The stored bound (whole milliseconds) is the record's expiry on both.
    assert_eq!(cached.expiry_date, fresh.expiry_date);

    // actix-session: the state's texts.
    let state: HashMap<String, String> = [
        ("counter", "1"),
        ("name", "\"Ada \\\"Countess\\\" Lovelace\""),
        ("roles", "[\"admin\",\"editor\"]"),
        ("ratio", "0.1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let ttl = time::Duration::minutes(10);
    let key = actix_session::storage::SessionStore::save(&store, state, &ttl)
        .await
        .unwrap();
    let mut state = actix_session::storage::SessionStore::load(&store, &key)
        .await
        .unwrap()
        .unwrap();
    state.insert("counter".to_owned(), "2".to_owned());
    let key = actix_session::storage::SessionStore::update(&store, key, state, &ttl)
        .await
        .unwrap();
    let before = store.cache_stats().unwrap().hits;
    let cached = actix_session::storage::SessionStore::load(&store, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.cache_stats().unwrap().hits, before + 1, "a hit");
    let fresh = actix_session::storage::SessionStore::load(&plain, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached, fresh);
    assert_eq!(cached["counter"], "2");
}
