//! A session moved to another user while a revoke or a limit of its old user runs, on every
//! backend: the revoke deletes a session only while it holds the value it checked, and the
//! limit counts only members whose session still holds the value the index recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use redis_sessions::{Backend, LimitPolicy, Outcome, RedisStore, Session, SessionId, StoredId};

use crate::hooked::Hooked;
use crate::support::id;

const FIELD: &str = "user_id";

fn of(user: &str, n: i64) -> Session {
    let mut s = Session::new();
    s.insert(FIELD, user).unwrap();
    s.insert("n", n).unwrap();
    s
}

fn indexed<B: Backend + Clone>(b: &B) -> RedisStore<B> {
    RedisStore::builder(b.clone()).index_by(FIELD).build()
}

fn listed(listed: &[redis_sessions::UserSession]) -> Vec<StoredId> {
    listed.iter().map(|s| s.id.clone()).collect()
}

/// Before the revoke's first delete, `session` is rewritten as `user`'s (through a store
/// on the unhooked backend).
fn rewrite_first<B: Backend + Clone>(hooked: &Hooked<B>, session: &SessionId, user: &'static str) {
    let store = Arc::new(indexed(&hooked.inner));
    let session = session.clone();
    let done = Arc::new(AtomicBool::new(false));
    hooked.before_delete(Box::new(move |_| {
        let (store, session) = (Arc::clone(&store), session.clone());
        let first = !done.swap(true, Ordering::SeqCst);
        async move {
            if first {
                let outcome = store.update(&session, &of(user, 100)).await.unwrap();
                assert_eq!(outcome, Outcome::Written);
            }
        }
        .boxed()
    }));
}

/// Listed by alice's revoke, then moved to bob, then the revoke's delete: bob keeps it.
pub async fn a_revoke_leaves_a_session_moved_after_its_read<B: Backend + Clone>(b: B) {
    let hooked = Hooked::new(b.clone());
    let store = indexed(&hooked);
    let moved = id();
    assert!(store
        .create(&moved, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    rewrite_first(&hooked, &moved, "bob");
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 0);
    assert!(hooked.deletes() >= 1, "the interleaving happened");
    let back = store
        .get(&moved)
        .await
        .unwrap()
        .expect("bob's session survives");
    assert_eq!(back.get::<String>(FIELD).unwrap().as_deref(), Some("bob"));
    let stored = store.keyspace().stored_id(&moved);
    assert_eq!(
        listed(&store.user_sessions("bob").await.unwrap()),
        std::slice::from_ref(&stored)
    );
    assert!(store.user_sessions("alice").await.unwrap().is_empty());
    let alice = store.keyspace().index_key("alice");
    let members = || async {
        let members = store.backend().inner.index_members(&alice).await.unwrap();
        members.is_empty()
    };
    // alice's stale member is removed.
    crate::support::listings_remove_stale(&store, &["alice"], members).await;

    // The same through the one-session revoke.
    let one = id();
    assert!(store
        .create(&one, &of("alice", 2))
        .await
        .unwrap()
        .is_written());
    rewrite_first(&hooked, &one, "bob");
    let before = hooked.deletes();
    assert!(!store
        .revoke_user_session("alice", &store.keyspace().stored_id(&one))
        .await
        .unwrap());
    assert!(hooked.deletes() > before, "the interleaving happened");
    assert!(
        store.get(&one).await.unwrap().is_some(),
        "bob's session survives"
    );
    assert_eq!(store.user_session_count("bob").await.unwrap(), 2);
}

/// Rewritten by its own user between the revoke's read and its delete: still ended.
pub async fn a_revoke_ends_a_session_rewritten_by_its_user<B: Backend + Clone>(b: B) {
    let hooked = Hooked::new(b.clone());
    let store = indexed(&hooked);
    let (rewritten, other) = (id(), id());
    assert!(store
        .create(&rewritten, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    assert!(store
        .create(&other, &of("alice", 2))
        .await
        .unwrap()
        .is_written());
    rewrite_first(&hooked, &rewritten, "alice");
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 2);
    assert_eq!(store.get(&rewritten).await.unwrap(), None);
    assert_eq!(store.get(&other).await.unwrap(), None);
    assert_eq!(store.user_session_count("alice").await.unwrap(), 0);

    let one = id();
    assert!(store
        .create(&one, &of("alice", 3))
        .await
        .unwrap()
        .is_written());
    rewrite_first(&hooked, &one, "alice");
    assert!(store
        .revoke_user_session("alice", &store.keyspace().stored_id(&one))
        .await
        .unwrap());
    assert_eq!(store.get(&one).await.unwrap(), None);
}

/// Rewritten before every delete: the revoke gives up with a typed error after a bounded
/// number of rounds, never silently.
pub async fn a_revoke_that_keeps_losing_is_an_error<B: Backend + Clone>(b: B) {
    let hooked = Hooked::new(b.clone());
    let store = indexed(&hooked);
    let busy = id();
    assert!(store
        .create(&busy, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    let writer = Arc::new(indexed(&b));
    let session = busy.clone();
    hooked.before_delete(Box::new(move |n| {
        let (writer, session) = (Arc::clone(&writer), session.clone());
        async move {
            let outcome = writer
                .update(&session, &of("alice", n as i64 + 10))
                .await
                .unwrap();
            assert_eq!(outcome, Outcome::Written);
        }
        .boxed()
    }));
    let err = store.revoke_user_sessions("alice", None).await.unwrap_err();
    assert!(err.is_contended(), "{err}");
    assert_eq!(hooked.deletes(), redis_sessions::REVOKE_ROUNDS);
    let err = store
        .revoke_user_session("alice", &store.keyspace().stored_id(&busy))
        .await
        .unwrap_err();
    assert!(
        matches!(err, redis_sessions::Error::Contended(n) if n == redis_sessions::REVOKE_ROUNDS),
        "{err}"
    );
    assert!(store.get(&busy).await.unwrap().is_some());
}

/// A session moved to bob is not one of alice's for her limit: neither counted against her,
/// nor ended to make room for her new one.
pub async fn the_limit_ignores_a_moved_session<B: Backend + Clone>(b: B) {
    for policy in [LimitPolicy::Refuse, LimitPolicy::EndLeastRecentlyUsed] {
        let store = RedisStore::builder(b.clone())
            .index_by(FIELD)
            .max_sessions_per_user(2, policy)
            .build();
        let (moved, kept, new) = (id(), id(), id());
        // `moved` is alice's least recently used.
        assert!(store
            .create(&moved, &of("alice", 1))
            .await
            .unwrap()
            .is_written());
        crate::support::next_millisecond().await;
        assert!(store
            .create(&kept, &of("alice", 2))
            .await
            .unwrap()
            .is_written());
        assert!(store
            .update(&moved, &of("bob", 1))
            .await
            .unwrap()
            .is_written());
        // Index members record milliseconds: `new` must be younger than `kept`.
        crate::support::next_millisecond().await;
        assert_eq!(
            store.create(&new, &of("alice", 3)).await.unwrap(),
            Outcome::Written,
            "{policy:?}: alice has one session"
        );
        assert!(
            store.get(&moved).await.unwrap().is_some(),
            "{policy:?}: bob's session survives"
        );
        assert!(store.get(&kept).await.unwrap().is_some(), "{policy:?}");
        assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
        assert_eq!(store.user_session_count("bob").await.unwrap(), 1);
        // Now at her limit, her sessions count as before.
        let third = id();
        let outcome = store.create(&third, &of("alice", 4)).await.unwrap();
        match policy {
            LimitPolicy::Refuse => assert_eq!(outcome, Outcome::LimitReached),
            _ => {
                assert_eq!(outcome, Outcome::Written);
                assert_eq!(
                    store.get(&kept).await.unwrap(),
                    None,
                    "the least recently used"
                );
            }
        }
        assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
        assert!(store.get(&moved).await.unwrap().is_some());
        store.clear().await.unwrap();
    }
}

/// Unchanged sessions: the conditional delete ends them at the first try.
pub async fn unchanged_sessions_end_at_the_first_delete<B: Backend + Clone>(b: B) {
    let hooked = Hooked::new(b.clone());
    let store = indexed(&hooked);
    let ids: Vec<SessionId> = (0..3).map(|_| id()).collect();
    for (n, id) in ids.iter().enumerate() {
        assert!(store
            .create(id, &of("alice", n as i64))
            .await
            .unwrap()
            .is_written());
    }
    let keep = store.keyspace().stored_id(&ids[0]);
    assert_eq!(
        store
            .revoke_user_sessions("alice", Some(&keep))
            .await
            .unwrap(),
        2
    );
    assert_eq!(hooked.deletes(), 2, "one conditional delete per session");
    assert!(store.revoke_user_session("alice", &keep).await.unwrap());
    assert_eq!(hooked.deletes(), 3);
    for id in &ids {
        assert_eq!(store.get(id).await.unwrap(), None);
    }
}

macro_rules! moved_suite {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                backend_cases!($backend:
                    a_revoke_leaves_a_session_moved_after_its_read,
                    a_revoke_ends_a_session_rewritten_by_its_user,
                    a_revoke_that_keeps_losing_is_an_error,
                    the_limit_ignores_a_moved_session,
                    unchanged_sessions_end_at_the_first_delete
                );
            }
        )*
    };
}

moved_suite!(memory, redis);
#[cfg(feature = "cluster")]
moved_suite!(cluster);
#[cfg(feature = "sentinel")]
moved_suite!(sentinel);
