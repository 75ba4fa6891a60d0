//! The per-user limit under concurrent logins and failed writes, on every backend.
//!
//! Each round fires a burst of creates of new sessions for one user at once (every task
//! waits on one barrier, then creates) and asserts the outcome. On one server and in memory
//! the limit is atomic with the create: exactly `max` sessions live after the burst. On a
//! cluster the limit runs in steps around the write: the least-recently-used policy still
//! leaves exactly `max`, and the refuse policy never more than `max` once the burst has
//! returned, but racing logins at the limit may all be refused (the documented weaker bound).

use std::collections::HashSet;
use std::sync::Arc;

use redis_sessions::{
    Backend, Conditional, LimitPolicy, Outcome, RedisStore, Session, SessionId, StoredId,
};
use tokio::sync::Barrier;

use crate::support::{id, next_millisecond};

const FIELD: &str = "user_id";
/// The limit under test.
const MAX: u32 = 3;
/// Creates fired together in one round.
const BURST: usize = 12;

fn of(user: &str, n: usize) -> Session {
    let mut s = Session::new();
    s.insert(FIELD, user).unwrap();
    s.insert("n", n).unwrap();
    s
}

fn limited<B: Backend + Clone>(b: &B, policy: LimitPolicy) -> RedisStore<B> {
    RedisStore::builder(b.clone())
        .index_by(FIELD)
        .max_sessions_per_user(MAX, policy)
        .build()
}

/// `BURST` creates of new sessions for `user`, each in its own task, all released by one
/// barrier: every id with its outcome.
async fn burst<B: Backend + Clone>(store: &RedisStore<B>, user: &str) -> Vec<(SessionId, Outcome)> {
    let barrier = Arc::new(Barrier::new(BURST));
    let tasks: Vec<_> = (0..BURST)
        .map(|n| {
            let (store, user, barrier) = (store.clone(), user.to_owned(), Arc::clone(&barrier));
            tokio::spawn(async move {
                let id = id();
                let session = of(&user, n);
                barrier.wait().await;
                let outcome = store.create(&id, &session).await.unwrap();
                (id, outcome)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(BURST);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// The ids among `ids` whose session is live.
async fn live<B: Backend + Clone>(store: &RedisStore<B>, ids: &[SessionId]) -> HashSet<StoredId> {
    let mut out = HashSet::new();
    for id in ids {
        if store.get(id).await.unwrap().is_some() {
            out.insert(store.keyspace().stored_id(id));
        }
    }
    out
}

async fn listed<B: Backend + Clone>(store: &RedisStore<B>, user: &str) -> HashSet<StoredId> {
    let sessions = store.user_sessions(user).await.unwrap();
    let set: HashSet<StoredId> = sessions.iter().map(|s| s.id.clone()).collect();
    assert_eq!(set.len(), sessions.len(), "listed once each");
    set
}

/// Refuse: with one session already, a burst of logins. Atomic (memory, one server):
/// exactly `MAX - 1` are written and the rest refused. In steps (Cluster): each is written
/// or refused and at most `MAX - 1` are written (logins racing at the limit may all be
/// refused). Everywhere: every written session is live and listed, every refused one absent,
/// and after the burst logins one at a time fill the room up to `MAX`, then are refused.
pub async fn concurrent_logins_past_a_refusing_limit<B: Backend + Clone>(b: B, rounds: usize) {
    let store = limited(&b, LimitPolicy::Refuse);
    let atomic = !b.index_in_steps();
    let max = MAX as usize;
    for round in 0..rounds {
        let user = format!("refused-{round}");
        let first = id();
        assert!(store
            .create(&first, &of(&user, 0))
            .await
            .unwrap()
            .is_written());
        let outcomes = burst(&store, &user).await;
        let ctx = format!("round {round}: {outcomes:?}");
        let mut ids = vec![first];
        for (id, outcome) in &outcomes {
            match outcome {
                Outcome::Written => ids.push(id.clone()),
                Outcome::LimitReached => {
                    assert_eq!(store.get(id).await.unwrap(), None, "{ctx}: refused, absent");
                }
                other => panic!("{ctx}: {other:?}"),
            }
        }
        match atomic {
            true => assert_eq!(ids.len(), max, "{ctx}: exactly the limit"),
            false => assert!(ids.len() <= max, "{ctx}: never past the limit"),
        }
        let live = live(&store, &ids).await;
        assert_eq!(
            live.len(),
            ids.len(),
            "{ctx}: every written session is live"
        );
        assert_eq!(listed(&store, &user).await, live, "{ctx}: and listed");
        for n in ids.len()..max {
            let login = store.create(&id(), &of(&user, BURST + n)).await.unwrap();
            assert_eq!(login, Outcome::Written, "{ctx}: room for {n}");
        }
        assert_eq!(
            store.create(&id(), &of(&user, 2 * BURST)).await.unwrap(),
            Outcome::LimitReached,
            "{ctx}: the limit holds after the burst"
        );
        assert_eq!(store.user_session_count(&user).await.unwrap(), max, "{ctx}");
    }
}

/// End the least recently used: the user at the limit, then a burst of logins. Every login
/// is written; afterwards the user has exactly `MAX` live sessions, all of them from the
/// burst (the older ones were the least recently used), and each is listed.
pub async fn concurrent_logins_past_a_least_recently_used_limit<B: Backend + Clone>(
    b: B,
    rounds: usize,
) {
    let store = limited(&b, LimitPolicy::EndLeastRecentlyUsed);
    for round in 0..rounds {
        let user = format!("lru-{round}");
        let existing: Vec<SessionId> = (0..MAX).map(|_| id()).collect();
        for (n, id) in existing.iter().enumerate() {
            assert!(store.create(id, &of(&user, n)).await.unwrap().is_written());
        }
        // Last-use times are milliseconds: the burst is strictly more recent.
        next_millisecond().await;
        let outcomes = burst(&store, &user).await;
        let ctx = format!("round {round}");
        assert!(
            outcomes.iter().all(|(_, o)| *o == Outcome::Written),
            "{ctx}: {outcomes:?}"
        );
        assert!(
            live(&store, &existing).await.is_empty(),
            "{ctx}: the older sessions were the least recently used"
        );
        let ids: Vec<SessionId> = outcomes.into_iter().map(|(id, _)| id).collect();
        let live = live(&store, &ids).await;
        assert_eq!(live.len(), MAX as usize, "{ctx}: exactly the limit");
        assert_eq!(listed(&store, &user).await, live, "{ctx}: each listed");
        assert_eq!(store.user_session_count(&user).await.unwrap(), MAX as usize);
    }
}

/// A login at the limit whose write fails ends nothing: a create whose id is taken (by
/// another user's session), and a compare-and-set that gives an anonymous session the user
/// but finds it changed.
pub async fn a_failed_write_at_the_limit_ends_nothing<B: Backend + Clone>(b: B) {
    let store = limited(&b, LimitPolicy::EndLeastRecentlyUsed);
    let mine: Vec<SessionId> = (0..MAX).map(|_| id()).collect();
    for (n, id) in mine.iter().enumerate() {
        assert!(store
            .create(id, &of("alice", n))
            .await
            .unwrap()
            .is_written());
    }
    let bobs = id();
    assert!(store
        .create(&bobs, &of("bob", 0))
        .await
        .unwrap()
        .is_written());
    next_millisecond().await;

    assert_eq!(
        store.create(&bobs, &of("alice", 9)).await.unwrap(),
        Outcome::Exists
    );
    let stored: HashSet<StoredId> = mine.iter().map(|i| store.keyspace().stored_id(i)).collect();
    assert_eq!(
        live(&store, &mine).await,
        stored,
        "a colliding create ended nothing"
    );
    assert_eq!(listed(&store, "alice").await, stored);
    let bob = store.get(&bobs).await.unwrap().unwrap();
    assert_eq!(bob.get::<String>(FIELD).unwrap().as_deref(), Some("bob"));

    let anon = id();
    let mut plain = Session::new();
    plain.insert("n", 1).unwrap();
    assert!(store.create(&anon, &plain).await.unwrap().is_written());
    let version = store.get_versioned(&anon).await.unwrap().unwrap().version;
    plain.insert("n", 2).unwrap();
    assert!(store.update(&anon, &plain).await.unwrap().is_written());
    let outcome = store.update_if(&anon, &of("alice", 10), &version).await;
    assert!(
        matches!(outcome, Ok(Conditional::Conflict(_))),
        "{outcome:?}"
    );
    assert_eq!(
        live(&store, &mine).await,
        stored,
        "a compare-and-set that lost ended nothing"
    );
    assert_eq!(listed(&store, "alice").await, stored);
}

macro_rules! limit_suite {
    ($($backend:ident: $rounds:expr),*) => {
        $(
            mod $backend {
                backend_cases!($backend: a_failed_write_at_the_limit_ends_nothing);

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn concurrent_logins_past_a_refusing_limit() {
                    let (backend, _server) = crate::support::$backend().await;
                    super::concurrent_logins_past_a_refusing_limit(backend, $rounds).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn concurrent_logins_past_a_least_recently_used_limit() {
                    let (backend, _server) = crate::support::$backend().await;
                    super::concurrent_logins_past_a_least_recently_used_limit(backend, $rounds)
                        .await;
                }
            }
        )*
    };
}

limit_suite!(memory: 50, redis: 30);
#[cfg(feature = "cluster")]
limit_suite!(cluster: 15);
#[cfg(feature = "sentinel")]
limit_suite!(sentinel: 15);
