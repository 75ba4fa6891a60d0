//! Per-user sessions through the index (`index_by`) against a full scan of the keyspace, with
//! 100,000 sessions over 10,000 users (10 each) in one redis-server: for one user, listing
//! (`user_sessions`), counting (`user_session_count`) and revoking all but one
//! (`revoke_user_sessions(user, Some(except))`), each next to the same operation done by a
//! scan: `SCAN MATCH prefix* COUNT 1000`, `MGET` of each page, decode every value, keep the
//! user's (and for the revoke, `UNLINK` them). The commands one call of each sends (from the
//! server's `INFO commandstats`) are printed to stderr.
//!
//! Run with `cargo bench -p redis-sessions --bench users` (starts its own redis-server; the
//! setup writes the 100,000 sessions through the store in about a second or two, and the whole
//! bench takes a few minutes, most of it the scans).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark setup; criterion macros generate undocumented items"
)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use redis_sessions::{RedisBackend, RedisStore, Session, SessionId};

const SESSIONS: usize = 100_000;
const USERS: usize = 10_000;
const PER_USER: usize = SESSIONS / USERS;
/// `SCAN COUNT` of the baseline: ten times the store's default, fewer round trips for it.
const SCAN_COUNT: u32 = 1000;
/// Writes in flight while filling (pipelined on the one multiplexed connection).
const FILL_BATCH: usize = 2000;

fn user_name(n: usize) -> String {
    format!("user-{n}")
}

/// A ~170-byte session of `user`.
fn login(user: &str) -> Session {
    let mut s = Session::new();
    s.insert("user", user).unwrap();
    s.insert(
        "user_agent",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    )
    .unwrap();
    s.insert("ip", "203.0.113.7").unwrap();
    s.insert("roles", ["editor", "viewer"]).unwrap();
    s.insert("csrf", "b7f3c1d9e2a84f6b9c0d1e2f3a4b5c6d")
        .unwrap();
    s
}

/// Creates `n` sessions of `user` through the store (indexed), `FILL_BATCH` in flight.
async fn create_sessions(store: &RedisStore<RedisBackend>, users: &[String]) -> Vec<SessionId> {
    let mut ids = Vec::with_capacity(users.len());
    for chunk in users.chunks(FILL_BATCH) {
        let batch: Vec<(SessionId, &String)> = chunk
            .iter()
            .map(|u| (SessionId::generate().unwrap(), u))
            .collect();
        join_all(batch.iter().map(|(id, user)| async move {
            assert!(store.create(id, &login(user)).await.unwrap().is_written());
        }))
        .await;
        ids.extend(batch.into_iter().map(|(id, _)| id));
    }
    ids
}

/// The scan baseline: every session of `user` (key and value), by `SCAN` + `MGET` + decode.
async fn scan_user(conn: &ConnectionManager, user: &str) -> Vec<(String, serde_json::Value)> {
    let mut conn = conn.clone();
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("sess:*")
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            // The user indexes (hashes) are under the prefix too: MGET gives nil for them.
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
            for (key, value) in keys.into_iter().zip(values) {
                let Some(value) = value else { continue };
                let Ok(session) = serde_json::from_slice::<serde_json::Value>(&value) else {
                    continue;
                };
                if session.get("user").and_then(|u| u.as_str()) == Some(user) {
                    found.push((key, session));
                }
            }
        }
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

/// The scan baseline of a revoke: every session of `user` but `except`'s key, `UNLINK`ed.
async fn scan_revoke(conn: &ConnectionManager, user: &str, except: &str) -> u64 {
    let keys: Vec<String> = scan_user(conn, user)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key != except)
        .collect();
    if keys.is_empty() {
        return 0;
    }
    let mut conn = conn.clone();
    redis::cmd("UNLINK")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The commands sent while `op` ran, from the server's counters: `"HGETALL 1, MGET 1"`.
fn commands_of<T>(server: &RedisServer, op: impl FnOnce() -> T) -> (T, String) {
    let before = server.command_calls();
    let out = op();
    let mut after = server.command_calls();
    after.retain(|(name, _)| name != "info");
    let mut sent: Vec<String> = after
        .into_iter()
        .filter_map(|(name, n)| {
            let was = before
                .iter()
                .find(|(b, _)| *b == name)
                .map_or(0, |(_, n)| *n);
            (n > was).then(|| format!("{} {}", name.to_uppercase(), n - was))
        })
        .collect();
    sent.sort();
    (out, sent.join(", "))
}

fn users(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let backend = rt.block_on(RedisBackend::connect(&server.url())).unwrap();
    let conn: ConnectionManager = backend.connection().clone();
    let store = RedisStore::builder(backend)
        .ttl(Duration::from_secs(3600))
        .index_by("user")
        .build();

    let started = std::time::Instant::now();
    let owners: Vec<String> = (0..SESSIONS).map(|i| user_name(i % USERS)).collect();
    let ids = rt.block_on(create_sessions(&store, &owners));
    eprintln!(
        "filled {SESSIONS} sessions over {USERS} users in {:.1?}",
        started.elapsed()
    );
    assert_eq!(rt.block_on(store.length()).unwrap(), SESSIONS as u64);

    // The measured user, and another for the scan's revoke (the baseline leaves stale index
    // members behind: keep them out of the indexed user's index).
    let (user, scan_victim) = (user_name(42), user_name(43));
    let keep = store.keyspace().stored_id(&ids[42]);
    let keep_key = store.keyspace().key(&ids[43]);
    let keep_for_scan = store.keyspace().stored_id(&ids[43]);

    // One call of each, with what it sends.
    let (n, index_list) = commands_of(&server, || {
        rt.block_on(store.user_sessions(&user)).unwrap().len()
    });
    assert_eq!(n, PER_USER);
    let (n, scan_list) = commands_of(&server, || rt.block_on(scan_user(&conn, &user)).len());
    assert_eq!(n, PER_USER);
    let (n, index_count) = commands_of(&server, || {
        rt.block_on(store.user_session_count(&user)).unwrap()
    });
    assert_eq!(n, PER_USER);
    eprintln!("list/index: {index_list}");
    eprintln!("list/scan and count/scan: {scan_list}");
    eprintln!("count/index: {index_count}");

    let mut group = c.benchmark_group("users");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function(BenchmarkId::new("list", "index"), |b| {
        b.to_async(&rt).iter(|| async {
            assert_eq!(store.user_sessions(&user).await.unwrap().len(), PER_USER)
        })
    });
    group.bench_function(BenchmarkId::new("list", "scan"), |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(scan_user(&conn, &user).await.len(), PER_USER) })
    });
    group.bench_function(BenchmarkId::new("count", "index"), |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(store.user_session_count(&user).await.unwrap(), PER_USER) })
    });
    group.bench_function(BenchmarkId::new("count", "scan"), |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(scan_user(&conn, &user).await.len(), PER_USER) })
    });

    // Revoke all but one: each iteration first gives the user back its other 9 sessions
    // (not timed), so every iteration ends the same number.
    let others = vec![user.clone(); PER_USER - 1];
    let (ended, index_revoke) = commands_of(&server, || {
        rt.block_on(store.revoke_user_sessions(&user, Some(&keep)))
            .unwrap()
    });
    assert_eq!(ended, (PER_USER - 1) as u64);
    eprintln!("revoke-all-but-one/index ({ended} ended): {index_revoke}");
    group.bench_function(BenchmarkId::new("revoke-all-but-one", "index"), |b| {
        b.iter_batched(
            || rt.block_on(create_sessions(&store, &others)),
            |_ids| {
                let ended = rt
                    .block_on(store.revoke_user_sessions(&user, Some(&keep)))
                    .unwrap();
                assert_eq!(ended, (PER_USER - 1) as u64);
            },
            BatchSize::PerIteration,
        )
    });
    let victims = vec![scan_victim.clone(); PER_USER - 1];
    let (ended, scan_revoke_sent) = commands_of(&server, || {
        rt.block_on(scan_revoke(&conn, &scan_victim, &keep_key))
    });
    assert_eq!(ended, (PER_USER - 1) as u64);
    eprintln!("revoke-all-but-one/scan ({ended} ended): {scan_revoke_sent}");
    group.bench_function(BenchmarkId::new("revoke-all-but-one", "scan"), |b| {
        b.iter_batched(
            || rt.block_on(create_sessions(&store, &victims)),
            |_ids| {
                let ended = rt.block_on(scan_revoke(&conn, &scan_victim, &keep_key));
                assert_eq!(ended, (PER_USER - 1) as u64);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    // The kept sessions are still there.
    assert!(rt.block_on(store.get_listed(&keep)).unwrap().is_some());
    assert!(rt
        .block_on(store.get_listed(&keep_for_scan))
        .unwrap()
        .is_some());
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    targets = users
}
criterion_main!(benches);
