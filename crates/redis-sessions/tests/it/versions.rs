//! Compare-and-set of the direct API (`get_versioned`, `update_if`, `modify`), written once
//! and run on every backend: the conflict's current value, exact concurrent increments,
//! logout wins, encryption and hashed ids, the per-user index, the TTL a write sets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis_sessions::backend::index::{value_sha1, IndexMember};
use redis_sessions::{
    Backend, Conditional, IdHashing, KeyTtl, RedisStore, Session, SessionId, Version,
};
use tokio::sync::Barrier;

use crate::support::{eventually, id, in_secs, ttl_of};

fn counter(n: i64) -> Session {
    let mut s = Session::new();
    s.insert("count", n).unwrap();
    s
}

fn count(s: &Session) -> i64 {
    s.get::<i64>("count").unwrap().unwrap_or(0)
}

/// Runs `write` from inside a synchronous closure (a `modify` change): the write lands
/// between `modify`'s read and its conditional write, every run.
fn meanwhile<F: std::future::Future>(write: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(write))
}

/// `modify` setting one field; asserts it was written.
async fn modify_field<B: Backend>(
    store: &RedisStore<B>,
    id: &SessionId,
    field: &str,
    value: serde_json::Value,
) {
    let modified = store
        .modify(id, |s| {
            s.insert_value(field, value.clone());
        })
        .await;
    assert!(
        matches!(modified, Ok(Some(((), Conditional::Written(_))))),
        "{modified:?}"
    );
}

async fn stored_version<B: Backend>(b: &B, store: &RedisStore<B>, id: &SessionId) -> Version {
    let raw = b.get(&store.keyspace().key(id)).await.unwrap().unwrap();
    Version::parse(&value_sha1(&raw)).unwrap()
}

pub async fn conflict_carries_what_is_stored_now<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    assert!(store.create(&id, &counter(1)).await.unwrap().is_written());
    let first = store.get_versioned(&id).await.unwrap().unwrap();
    assert_eq!(first.session, counter(1));
    assert_eq!(first.version, stored_version(&b, &store, &id).await);
    // Two writers loaded the same version; the first wins.
    let v2 = match store.update_if(&id, &counter(2), &first.version).await {
        Ok(Conditional::Written(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(v2, stored_version(&b, &store, &id).await);
    assert_ne!(v2, first.version);
    match store.update_if(&id, &counter(3), &first.version).await {
        Ok(Conditional::Conflict(now)) => {
            assert_eq!(now.session, counter(2));
            assert_eq!(now.version, v2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.get(&id).await.unwrap(),
        Some(counter(2)),
        "no overwrite"
    );
    // A write by another path (plain `set`) is a conflict too.
    assert!(store.set(&id, &counter(7)).await.unwrap().is_written());
    match store.update_if(&id, &counter(3), &v2).await {
        Ok(Conditional::Conflict(now)) => assert_eq!(now.session, counter(7)),
        other => panic!("{other:?}"),
    }
    // The version of the conflict's reply is good for the next write.
    let now = store.get_versioned(&id).await.unwrap().unwrap();
    assert!(matches!(
        store.update_if(&id, &counter(8), &now.version).await,
        Ok(Conditional::Written(_))
    ));
    assert_eq!(store.get_versioned(&self::id()).await.unwrap(), None);
}

pub async fn concurrent_modifies_lose_no_increment<B: Backend + Clone>(b: B) {
    const TASKS: usize = 64;
    let store = RedisStore::new(b.clone());
    let id = id();
    assert!(store.create(&id, &counter(0)).await.unwrap().is_written());
    let barrier = Arc::new(Barrier::new(TASKS));
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, id, barrier, calls) =
                (store.clone(), id.clone(), barrier.clone(), calls.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .modify(&id, |s| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        s.insert("count", count(s) + 1).unwrap();
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(Some(((), Conditional::Written(_)))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(count(&store.get(&id).await.unwrap().unwrap()), TASKS as i64);
    assert!(calls.load(Ordering::SeqCst) >= TASKS);
}

pub async fn modify_reapplies_to_a_concurrent_write<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    assert!(store.create(&id, &counter(0)).await.unwrap().is_written());
    let mut calls = 0;
    let (result, outcome) = store
        .modify(&id, |s| {
            calls += 1;
            if calls == 1 {
                // Another request writes between this modify's read and its write.
                let mut other = counter(10);
                other.insert("other", true).unwrap();
                assert!(meanwhile(store.set(&id, &other)).unwrap().is_written());
            }
            s.insert("count", count(s) + 1).unwrap();
            count(s)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(calls, 2, "applied again after the conflict");
    assert_eq!(result, 11);
    assert!(matches!(outcome, Conditional::Written(_)));
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(count(&stored), 11);
    assert_eq!(stored.get::<bool>("other").unwrap(), Some(true));
}

pub async fn logout_wins_over_conditional_writes<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    let key = store.keyspace().key(&id);
    // Never existed: nothing is written.
    assert!(store
        .modify(&id, |s| s.insert("x", 1))
        .await
        .unwrap()
        .is_none());
    assert_eq!(b.pttl(&key).await.unwrap(), KeyTtl::Missing);
    // Destroyed between the read and the write.
    assert!(store.create(&id, &counter(1)).await.unwrap().is_written());
    let mut calls = 0;
    let modified = store
        .modify(&id, |s| {
            calls += 1;
            assert!(meanwhile(store.destroy(&id)).unwrap());
            s.insert("count", 2).unwrap();
        })
        .await
        .unwrap();
    assert!(modified.is_none(), "{modified:?}");
    assert_eq!(calls, 1);
    assert_eq!(
        b.pttl(&key).await.unwrap(),
        KeyTtl::Missing,
        "not resurrected"
    );
    // update_if of a destroyed session.
    assert!(store.create(&id, &counter(1)).await.unwrap().is_written());
    let v = store.get_versioned(&id).await.unwrap().unwrap().version;
    assert!(store.destroy(&id).await.unwrap());
    assert_eq!(
        store.update_if(&id, &counter(2), &v).await.unwrap(),
        Conditional::Gone
    );
    assert_eq!(b.pttl(&key).await.unwrap(), KeyTtl::Missing);
}

pub async fn the_ttl_is_what_the_write_sets<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .ttl(Duration::from_secs(100))
        .build();
    let id = id();
    let key = store.keyspace().key(&id);
    let short = counter(1).with_expiry(in_secs(10));
    assert!(store.create(&id, &short).await.unwrap().is_written());
    // A modify keeps the session's own expiry (stored in the value): 10 s, not 100 s.
    modify_field(&store, &id, "count", serde_json::json!(2)).await;
    let ttl = ttl_of(&b, &key).await;
    assert!(
        ttl <= Duration::from_secs(10) && ttl > Duration::from_secs(8),
        "{ttl:?}"
    );
    // A session without its own expiry gets the store's TTL.
    let v = store.get_versioned(&id).await.unwrap().unwrap().version;
    assert!(matches!(
        store.update_if(&id, &counter(3), &v).await.unwrap(),
        Conditional::Written(_)
    ));
    let ttl = ttl_of(&b, &key).await;
    assert!(
        ttl <= Duration::from_secs(100) && ttl > Duration::from_secs(98),
        "{ttl:?}"
    );
    // An expiry that has passed ends the session, conditionally.
    let v = store.get_versioned(&id).await.unwrap().unwrap().version;
    let past = counter(4).with_expiry(std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(
        store.update_if(&id, &past, &v).await.unwrap(),
        Conditional::Expired
    );
    eventually(
        Duration::from_secs(2),
        "the ended session is gone",
        || async { b.pttl(&key).await.unwrap() == KeyTtl::Missing },
    )
    .await;
}

pub async fn hashed_ids_and_encryption<B: Backend + Clone>(b: B) {
    let mut builder = RedisStore::builder(b.clone())
        .hash_ids(IdHashing::HmacSha256([3; 32]))
        .prefix("cas:");
    #[cfg(feature = "encryption")]
    {
        builder = builder.encrypt(redis_sessions::KeyRing::new([4u8; 32]));
    }
    let store = builder.build();
    let id = id();
    let key = store.keyspace().key(&id);
    assert!(!key.contains(id.as_str()));
    let mut s = counter(1);
    s.insert("secret", "hunter2").unwrap();
    assert!(store.create(&id, &s).await.unwrap().is_written());
    #[cfg(feature = "encryption")]
    {
        let raw = b.get(&key).await.unwrap().unwrap();
        assert!(
            !raw.windows(7).any(|w| w == b"hunter2"),
            "encrypted at rest"
        );
    }
    let first = store.get_versioned(&id).await.unwrap().unwrap();
    assert_eq!(first.session, s);
    assert_eq!(first.version, stored_version(&b, &store, &id).await);
    modify_field(&store, &id, "count", serde_json::json!(2)).await;
    match store
        .update_if(&id, &counter(9), &first.version)
        .await
        .unwrap()
    {
        Conditional::Conflict(now) => {
            assert_eq!(count(&now.session), 2);
            assert_eq!(
                now.session.get::<String>("secret").unwrap().as_deref(),
                Some("hunter2")
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The index invariant after conditional writes: the user's member records the SHA-1 of the
/// value stored, a conflict leaves the member as it was, and a user change moves it.
pub async fn the_index_follows_conditional_writes<B: Backend + Clone>(b: B) {
    const FIELD: &str = "user_id";
    let store = RedisStore::builder(b.clone()).index_by(FIELD).build();
    let of = |user: &str, n: i64| {
        let mut s = counter(n);
        s.insert(FIELD, user).unwrap();
        s
    };
    let member_matches = |user: &'static str| {
        let (b, store) = (b.clone(), store.clone());
        async move {
            let index = store.keyspace().index_key(user);
            let members = b.index_members(&index).await.unwrap();
            members
                .iter()
                .map(|(m, v)| {
                    let key = format!("{}{m}", store.keyspace().prefix());
                    (key, IndexMember::parse(v).unwrap().sha1.unwrap())
                })
                .collect::<Vec<_>>()
        }
    };
    let id = id();
    let key = store.keyspace().key(&id);
    assert!(store
        .create(&id, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    let first = store.get_versioned(&id).await.unwrap().unwrap();
    let v2 = match store
        .update_if(&id, &of("alice", 2), &first.version)
        .await
        .unwrap()
    {
        Conditional::Written(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        member_matches("alice").await,
        [(key.clone(), v2.to_string())]
    );
    // A conflict: nothing written, the member unchanged.
    match store
        .update_if(&id, &of("alice", 3), &first.version)
        .await
        .unwrap()
    {
        Conditional::Conflict(now) => assert_eq!(now.session, of("alice", 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        member_matches("alice").await,
        [(key.clone(), v2.to_string())]
    );
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session, of("alice", 2));
    // modify through the index script; then a user change moves the session.
    modify_field(&store, &id, "count", serde_json::json!(5)).await;
    let v = stored_version(&b, &store, &id).await;
    assert_eq!(
        member_matches("alice").await,
        [(key.clone(), v.to_string())]
    );
    modify_field(&store, &id, FIELD, serde_json::json!("bob")).await;
    assert!(store.user_sessions("alice").await.unwrap().is_empty());
    let bobs = store.user_sessions("bob").await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(count(&bobs[0].session), 5);
    // Logout wins with an index too.
    let v = stored_version(&b, &store, &id).await;
    assert!(store.destroy(&id).await.unwrap());
    assert_eq!(
        store.update_if(&id, &of("bob", 6), &v).await.unwrap(),
        Conditional::Gone
    );
    assert_eq!(b.pttl(&key).await.unwrap(), KeyTtl::Missing);
}

macro_rules! versions_suite {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                backend_cases!($backend:
                    conflict_carries_what_is_stored_now,
                    concurrent_modifies_lose_no_increment,
                    modify_reapplies_to_a_concurrent_write,
                    logout_wins_over_conditional_writes,
                    the_ttl_is_what_the_write_sets,
                    hashed_ids_and_encryption,
                    the_index_follows_conditional_writes
                );
            }
        )*
    };
}

// `redis_acl`: as the least-privilege ACL user of `acl/setuser.redis`.
versions_suite!(memory, redis, redis_acl);
#[cfg(feature = "cluster")]
versions_suite!(cluster);
#[cfg(feature = "sentinel")]
versions_suite!(sentinel);
