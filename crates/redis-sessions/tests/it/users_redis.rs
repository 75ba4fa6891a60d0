//! Per-user index cases that need a real Redis: what a write and a read send (one script
//! for a write, no index work on a read right after it), the script loaded again after
//! `SCRIPT FLUSH`, and on Cluster the session's shard failing after the index step.

use std::time::Duration;

use redis_harness::RedisServer;
use redis_sessions::{Backend, RedisBackend, RedisStore, Session};

use crate::support::{id, in_secs};

fn of(user: &str) -> Session {
    let mut s = Session::new();
    s.insert("user_id", user).unwrap();
    s
}

async fn indexed_on(server: &RedisServer, idle: Option<Duration>) -> RedisStore<RedisBackend> {
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let builder = RedisStore::builder(backend).index_by("user_id");
    match idle {
        Some(idle) => builder.idle_timeout(idle).build(),
        None => builder.build(),
    }
}

/// The commands the test's client sent since the last `CONFIG RESETSTAT` (and the commands
/// scripts ran), without the harness's own `INFO`.
fn sent(server: &RedisServer) -> Vec<(String, u64)> {
    let mut calls = server.command_calls();
    calls.retain(|(name, _)| name != "info" && name != "config|resetstat");
    calls.sort();
    calls
}

fn calls(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<_> = list.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_write_is_one_script_and_a_read_after_it_does_no_index_work() {
    let server = RedisServer::start();
    let store = indexed_on(&server, Some(Duration::from_secs(60))).await;
    // The framework adapters' sessions carry an expiry: under an idle timeout it bounds the
    // session, and the index is sized by it at the write.
    let id = id();
    let s = of("alice").with_expiry(in_secs(3600));
    // The first script call on a server loads it (NOSCRIPT, SCRIPT LOAD, EVALSHA again).
    assert!(store
        .create(&crate::support::id(), &s)
        .await
        .unwrap()
        .is_written());
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.create(&id, &s).await.unwrap().is_written());
    let evalsha = server.calls_of("evalsha");
    assert_eq!(evalsha, 1, "{:?}", sent(&server));
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.load(&id).await.unwrap().is_some());
    assert_eq!(sent(&server), calls(&[("getex", 1)]));

    // A session without the field: as without an index.
    let plain = crate::support::id();
    let mut anon = Session::new();
    anon.insert("n", 1).unwrap();
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.create(&plain, &anon).await.unwrap().is_written());
    assert!(store.load(&plain).await.unwrap().is_some());
    assert_eq!(sent(&server), calls(&[("set", 1), ("getex", 1)]));

    // A session without an expiry slides with no bound but its reads: each sliding read
    // keeps the index alive (`PEXPIRE GT`, one more command).
    let unbounded = crate::support::id();
    assert!(store
        .create(&unbounded, &of("bob"))
        .await
        .unwrap()
        .is_written());
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.load(&unbounded).await.unwrap().is_some());
    assert_eq!(sent(&server), calls(&[("getex", 1), ("pexpire", 1)]));
}

#[tokio::test]
async fn the_script_is_loaded_again_after_script_flush() {
    let server = RedisServer::start();
    let store = indexed_on(&server, None).await;
    assert!(store
        .create(&id(), &of("alice"))
        .await
        .unwrap()
        .is_written());
    server.cmd(&["SCRIPT", "FLUSH"]);
    server.cmd(&["CONFIG", "RESETSTAT"]);
    let second = id();
    assert!(store
        .create(&second, &of("alice"))
        .await
        .unwrap()
        .is_written());
    assert_eq!(server.calls_of("script|load"), 1, "{:?}", sent(&server));
    assert_eq!(
        server.calls_of("evalsha"),
        2,
        "NOSCRIPT, then the call again"
    );
    assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
    // Revoke's script too.
    server.cmd(&["SCRIPT", "FLUSH"]);
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 2);
}

/// The index step succeeded, the session step failed (its shard is down and fails over):
/// what is left is at most a stale index member, never a session missing from its index,
/// and the listing removes the stale member.
#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_failover_between_the_index_and_the_session_leaves_a_stale_member_only() {
    use redis_sessions::{Backend, ClusterBackend, ClusterConfig};
    use std::sync::{Arc, Mutex};

    let cluster = tokio::task::spawn_blocking(redis_harness::RedisCluster::start)
        .await
        .unwrap();
    let config = ClusterConfig {
        response_timeout: Duration::from_millis(500),
        ..ClusterConfig::default()
    };
    let backend = ClusterBackend::connect_with(&cluster.urls(), config)
        .await
        .unwrap();
    let store = RedisStore::builder(backend).index_by("user_id").build();
    let index = store.keyspace().index_key("alice");
    let index_primary = cluster.primary_for_key(&index);
    // A session id whose key lives on another shard than the index.
    let id = loop {
        let id = id();
        if cluster.primary_for_key(&store.keyspace().key(&id)) != index_primary {
            break id;
        }
    };
    let stored = store.keyspace().stored_id(&id);
    let session_primary = cluster.primary_for_key(&store.keyspace().key(&id));
    let replica = cluster.replica_of(session_primary);
    let cluster = Arc::new(Mutex::new(cluster));
    cluster.lock().unwrap().kill(session_primary);

    let outcome = store.create(&id, &of("alice")).await;
    let members = store.backend().index_members(&index).await.unwrap();
    let in_index = members.iter().any(|(m, _)| m == stored.as_str());
    match &outcome {
        // The session step failed: its member was written first and stays, stale.
        Err(e) => {
            assert!(e.is_unavailable() || e.is_timeout(), "{e}");
            assert!(in_index, "the index step runs first");
        }
        // redis-rs reached the promoted replica in time: written, and indexed.
        Ok(o) => {
            assert!(o.is_written(), "{o:?}");
            assert!(in_index);
        }
    }
    let waiting = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || waiting.lock().unwrap().wait_primary(replica))
        .await
        .unwrap();
    let live = store.get(&id).await.unwrap().is_some();
    assert_eq!(live, outcome.is_ok(), "a failed create wrote nothing");
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), usize::from(live));
    // The stale member is removed when found (once past INDEX_PENDING: it may have been a
    // write between its steps).
    let member_as_live = || async {
        let members = store.backend().index_members(&index).await.unwrap();
        members.iter().any(|(m, _)| m == stored.as_str()) == live
    };
    crate::support::listings_remove_stale(&store, &["alice"], member_as_live).await;
    // Writes work again, on the new primary, indexed.
    let again = crate::support::id();
    assert!(store
        .create(&again, &of("alice"))
        .await
        .unwrap()
        .is_written());
    assert_eq!(
        store.user_session_count("alice").await.unwrap(),
        1 + usize::from(live)
    );
}

/// Index members written before the value's hash was recorded (`created:written`) still
/// work: listed (their user read from the session), counted by the limit while their session
/// exists, revoked; a write rewrites them in the new format.
#[tokio::test]
async fn members_without_a_hash_are_read_and_revoked() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend)
        .index_by("user_id")
        .max_sessions_per_user(2, redis_sessions::LimitPolicy::Refuse)
        .build();
    let (old, moved) = (id(), id());
    let index = store.keyspace().index_key("alice");
    for id in [&old, &moved] {
        assert!(store.create(id, &of("alice")).await.unwrap().is_written());
        let member = store.keyspace().stored_id(id);
        server.cmd(&["HSET", &index, member.as_str(), "5:9"]);
    }
    // `moved` goes to bob: alice's old-format member cannot tell, the listing reads it.
    assert!(store.update(&moved, &of("bob")).await.unwrap().is_written());
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, store.keyspace().stored_id(&old));
    assert_eq!(
        listed[0].created,
        std::time::UNIX_EPOCH + Duration::from_millis(5)
    );
    // The limit counts the old member whose session exists.
    assert!(store
        .create(&id(), &of("alice"))
        .await
        .unwrap()
        .is_written());
    assert_eq!(
        store.create(&id(), &of("alice")).await.unwrap(),
        redis_sessions::Outcome::LimitReached
    );
    assert!(store
        .revoke_user_session("alice", &store.keyspace().stored_id(&old))
        .await
        .unwrap());
    assert_eq!(store.get(&old).await.unwrap(), None);
    assert!(store.get(&moved).await.unwrap().is_some());
    // A write records the hash again, the created time kept.
    let member = store.keyspace().stored_id(&moved);
    server.cmd(&[
        "HSET",
        &store.keyspace().index_key("bob"),
        member.as_str(),
        "7:9",
    ]);
    assert!(store.update(&moved, &of("bob")).await.unwrap().is_written());
    let members = store
        .backend()
        .index_members(&store.keyspace().index_key("bob"))
        .await
        .unwrap();
    let value = String::from_utf8(members[0].1.clone()).unwrap();
    assert!(value.starts_with("7:") && value.len() > 45, "{value}");
}
