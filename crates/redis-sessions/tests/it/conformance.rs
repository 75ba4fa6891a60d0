//! The store's conformance suite, written once and run against every backend.
//!
//! Covers every case of connect-redis's own test plus the options it never tested, the glob and
//! empty-prefix fixes, create/update races with destroy, and corrupt values.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis_sessions::{
    Backend, CodecError, Error, Json, KeyTtl, Outcome, RedisStore, Serializer, Session, SessionId,
    SetMode, StoredId,
};

use tokio::sync::Barrier;

use crate::support::{
    self, eventually, held_then_run_in_order, id, in_secs, session, ttl_of, Deployment,
};

const DAY: Duration = Duration::from_secs(86_400);

/// Stores a raw value, as another program would.
async fn raw_set<B: Backend>(backend: &B, key: &str, value: &[u8]) {
    assert!(backend
        .set(key, value, None, SetMode::Always)
        .await
        .unwrap());
}

async fn exists<B: Backend>(backend: &B, key: &str) -> bool {
    backend.pttl(key).await.unwrap() != KeyTtl::Missing
}

pub async fn set_get_uses_prefix_and_default_ttl<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    assert_eq!(store.set(&id, &session(1)).await.unwrap(), Outcome::Written);
    assert_eq!(store.get(&id).await.unwrap(), Some(session(1)));
    let key = format!("sess:{}", id.as_str());
    let ttl = ttl_of(&b, &key).await;
    assert!(ttl <= DAY && ttl > DAY - Duration::from_secs(5), "{ttl:?}");
    // The stored value is connect-redis's format: plain JSON of the fields.
    let raw = b.get(&key).await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(json, serde_json::json!({"n": 1, "user": "user-1"}));
    assert_eq!(store.get(&self::id()).await.unwrap(), None);
}

pub async fn explicit_expiry_wins_over_ttl_option<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .ttl(Duration::from_secs(3600))
        .build();
    let id = id();
    let s = session(1).with_expiry(in_secs(10));
    assert!(store.set(&id, &s).await.unwrap().is_written());
    let ttl = ttl_of(&b, &store.keyspace().key(&id)).await;
    assert!(
        ttl <= Duration::from_secs(10) && ttl > Duration::from_secs(8),
        "{ttl:?}"
    );
    // The expiry survives the round trip.
    let back = store.get(&id).await.unwrap().unwrap();
    let diff = back
        .expires()
        .unwrap()
        .duration_since(s.expires().unwrap())
        .unwrap_or_default();
    assert!(diff < Duration::from_millis(1), "{diff:?}");
}

pub async fn ttl_option_fixed_and_function<B: Backend + Clone>(b: B) {
    let fixed = RedisStore::builder(b.clone())
        .ttl(Duration::from_secs(100))
        .build();
    let id1 = id();
    assert!(fixed.set(&id1, &session(1)).await.unwrap().is_written());
    let ttl = ttl_of(&b, &fixed.keyspace().key(&id1)).await;
    assert!(
        ttl <= Duration::from_secs(100) && ttl > Duration::from_secs(95),
        "{ttl:?}"
    );

    let computed = RedisStore::builder(b.clone())
        .ttl_with(|s| match s.get::<bool>("remember").ok().flatten() {
            Some(true) => Duration::from_secs(500),
            _ => Duration::from_secs(50),
        })
        .build();
    let (short, long) = (id(), id());
    let mut remember = session(2);
    remember.insert("remember", true).unwrap();
    assert!(computed
        .set(&short, &session(2))
        .await
        .unwrap()
        .is_written());
    assert!(computed.set(&long, &remember).await.unwrap().is_written());
    let short_ttl = ttl_of(&b, &computed.keyspace().key(&short)).await;
    let long_ttl = ttl_of(&b, &computed.keyspace().key(&long)).await;
    assert!(short_ttl <= Duration::from_secs(50) && short_ttl > Duration::from_secs(45));
    assert!(long_ttl <= Duration::from_secs(500) && long_ttl > Duration::from_secs(495));

    // A zero TTL deletes instead of writing.
    let zero = RedisStore::builder(b.clone())
        .ttl_with(|_| Duration::ZERO)
        .build();
    assert_eq!(
        zero.set(&short, &session(3)).await.unwrap(),
        Outcome::Expired
    );
    assert!(!exists(&b, &zero.keyspace().key(&short)).await);
}

pub async fn set_with_past_expiry_deletes<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    assert!(store.set(&id, &session(1)).await.unwrap().is_written());
    let past = session(1).with_expiry(std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(store.set(&id, &past).await.unwrap(), Outcome::Expired);
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert_eq!(store.length().await.unwrap(), 0);
}

pub async fn sessions_expire_by_themselves<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b)
        .ttl(Duration::from_millis(150))
        .build();
    let id = id();
    assert!(store.set(&id, &session(1)).await.unwrap().is_written());
    assert!(store.get(&id).await.unwrap().is_some());
    // Time has to pass here: wait for the expiry itself, not for a guess of how long it takes.
    eventually(
        Duration::from_secs(10),
        "a 150 ms session expires",
        || async { store.get(&id).await.unwrap().is_none() },
    )
    .await;
    assert_eq!(store.length().await.unwrap(), 0);
    assert_eq!(store.touch(&id, &session(1)).await.unwrap(), Outcome::Gone);
}

pub async fn touch_refreshes_ttl_without_rewriting<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    let key = store.keyspace().key(&id);
    assert!(store
        .set(&id, &session(1).with_expiry(in_secs(5)))
        .await
        .unwrap()
        .is_written());
    assert!(ttl_of(&b, &key).await <= Duration::from_secs(5));
    // Touch with other data: only the TTL changes.
    let later = session(2).with_expiry(in_secs(60));
    assert_eq!(store.touch(&id, &later).await.unwrap(), Outcome::Written);
    let ttl = ttl_of(&b, &key).await;
    assert!(
        ttl > Duration::from_secs(55) && ttl <= Duration::from_secs(60),
        "{ttl:?}"
    );
    assert_eq!(
        store
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .get::<i64>("n")
            .unwrap(),
        Some(1)
    );
    // A missing session is reported, not created.
    let missing = self::id();
    assert_eq!(store.touch(&missing, &later).await.unwrap(), Outcome::Gone);
    assert!(!exists(&b, &store.keyspace().key(&missing)).await);
    // Touch with an expiry in the past deletes (connect-redis sends EXPIRE key -1).
    let past = session(1).with_expiry(std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(store.touch(&id, &past).await.unwrap(), Outcome::Expired);
    assert!(!exists(&b, &key).await);
}

pub async fn disable_touch_makes_touch_a_no_op<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).disable_touch(true).build();
    let id = id();
    let key = store.keyspace().key(&id);
    assert!(store
        .set(&id, &session(1).with_expiry(in_secs(5)))
        .await
        .unwrap()
        .is_written());
    let later = session(1).with_expiry(in_secs(600));
    assert_eq!(store.touch(&id, &later).await.unwrap(), Outcome::Skipped);
    assert!(ttl_of(&b, &key).await <= Duration::from_secs(5));
    // Writes still set the TTL.
    assert!(store.set(&id, &later).await.unwrap().is_written());
    assert!(ttl_of(&b, &key).await > Duration::from_secs(500));
}

pub async fn disable_ttl_writes_without_expiry<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).disable_ttl(true).build();
    let id = id();
    let key = store.keyspace().key(&id);
    assert!(store
        .set(&id, &session(1).with_expiry(in_secs(5)))
        .await
        .unwrap()
        .is_written());
    assert_eq!(b.pttl(&key).await.unwrap(), KeyTtl::Persistent);
    assert_eq!(
        store.touch(&id, &session(1)).await.unwrap(),
        Outcome::Skipped
    );
    assert_eq!(b.pttl(&key).await.unwrap(), KeyTtl::Persistent);
    // An expiry that has passed still deletes.
    let past = session(1).with_expiry(std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(store.set(&id, &past).await.unwrap(), Outcome::Expired);
    assert!(!exists(&b, &key).await);
}

pub async fn length_ids_all_destroy<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let ids: Vec<SessionId> = (0..3).map(|_| id()).collect();
    for (n, id) in ids.iter().enumerate() {
        assert!(store
            .set(id, &session(n as i64))
            .await
            .unwrap()
            .is_written());
    }
    // Foreign keys under and beside the prefix.
    raw_set(&b, "sess:admin:config", b"{}").await;
    raw_set(&b, "session:0123456789abcdefgh", b"{}").await;
    assert_eq!(store.length().await.unwrap(), 3);
    let listed: HashSet<StoredId> = store.ids().await.unwrap().into_iter().collect();
    assert_eq!(listed, support::listed(&ids).into_iter().collect());
    let mut all = store.all().await.unwrap();
    all.sort_by_key(|(_, s)| s.get::<i64>("n").unwrap());
    for (n, (id, s)) in all.iter().enumerate() {
        assert_eq!(id.as_str(), ids[n].as_str());
        assert_eq!(s, &session(n as i64));
    }
    assert!(store.destroy(&ids[0]).await.unwrap());
    assert!(!store.destroy(&ids[0]).await.unwrap());
    assert_eq!(store.get(&ids[0]).await.unwrap(), None);
    assert_eq!(store.length().await.unwrap(), 2);
}

pub async fn clear_deletes_only_own_sessions<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).scan_count(2).build();
    for n in 0..7 {
        assert!(store.set(&id(), &session(n)).await.unwrap().is_written());
    }
    raw_set(&b, "sess:admin:config", b"{}").await;
    raw_set(&b, "other:0123456789abcdefgh", b"{}").await;
    assert_eq!(store.clear().await.unwrap(), 7);
    assert_eq!(store.length().await.unwrap(), 0);
    assert!(exists(&b, "sess:admin:config").await);
    assert!(exists(&b, "other:0123456789abcdefgh").await);
}

pub async fn bulk_thousand_sessions<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).scan_count(37).build();
    let ids: Vec<SessionId> = (0..1000).map(|_| id()).collect();
    let one = session(1);
    let writes = ids.iter().map(|id| store.set(id, &one));
    for outcome in futures_util::future::join_all(writes).await {
        assert_eq!(outcome.unwrap(), Outcome::Written);
    }
    assert_eq!(store.length().await.unwrap(), 1000);
    // Streams return each id exactly once, page by page.
    let mut seen = HashSet::new();
    let mut stream = std::pin::pin!(store.ids_stream());
    while let Some(id) = stream.next().await {
        assert!(seen.insert(id.unwrap()), "id listed twice");
    }
    assert_eq!(seen, support::listed(&ids).into_iter().collect());
    assert_eq!(store.all_stream().count().await, 1000);
    assert_eq!(store.clear().await.unwrap(), 1000);
    assert_eq!(store.length().await.unwrap(), 0);
}

pub async fn prefix_option_isolates_stores<B: Backend + Clone>(b: B) {
    let app1 = RedisStore::builder(b.clone()).prefix("app1:").build();
    let app2 = RedisStore::builder(b.clone()).prefix("app2:").build();
    let id = id();
    assert!(app1.set(&id, &session(1)).await.unwrap().is_written());
    assert!(app2.set(&id, &session(2)).await.unwrap().is_written());
    assert!(app2
        .set(&self::id(), &session(3))
        .await
        .unwrap()
        .is_written());
    assert!(exists(&b, &format!("app1:{}", id.as_str())).await);
    assert_eq!(app1.get(&id).await.unwrap(), Some(session(1)));
    assert_eq!(app2.get(&id).await.unwrap(), Some(session(2)));
    assert_eq!(app1.length().await.unwrap(), 1);
    assert_eq!(app2.clear().await.unwrap(), 2);
    assert_eq!(app1.get(&id).await.unwrap(), Some(session(1)));
}

/// A user-supplied serializer: JSON wrapped in a tag, so its use is visible in the raw value.
struct Tagged;

impl Serializer for Tagged {
    fn name(&self) -> &'static str {
        "tagged"
    }
    fn encode(&self, session: &Session) -> Result<Vec<u8>, CodecError> {
        let mut out = b"T1".to_vec();
        out.extend(Json.encode(session)?);
        Ok(out)
    }
    fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError> {
        let body = bytes.strip_prefix(b"T1").ok_or(CodecError::NotASession {
            format: "tagged",
            what: "missing tag",
        })?;
        Json.decode(body)
    }
}

pub async fn serializer_option_is_used<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).serializer(Tagged).build();
    let id = id();
    let s = session(7).with_expiry(in_secs(100));
    assert!(store.set(&id, &s).await.unwrap().is_written());
    let raw = b.get(&store.keyspace().key(&id)).await.unwrap().unwrap();
    assert!(raw.starts_with(b"T1{"));
    assert_eq!(store.all().await.unwrap().len(), 1);
    assert_eq!(store.get(&id).await.unwrap(), Some(s.clone()));

    #[cfg(feature = "msgpack")]
    {
        let packed = RedisStore::builder(b.clone())
            .prefix("mp:")
            .serializer(redis_sessions::MsgPack)
            .build();
        assert!(packed.set(&id, &s).await.unwrap().is_written());
        let raw = b.get(&packed.keyspace().key(&id)).await.unwrap().unwrap();
        assert_eq!(raw[0] & 0xf0, 0x80, "msgpack fixmap expected");
        assert_eq!(packed.get(&id).await.unwrap(), Some(s));
    }
}

pub async fn scan_count_does_not_change_results<B: Backend + Clone>(b: B) {
    let writer = RedisStore::new(b.clone());
    for n in 0..25 {
        assert!(writer.set(&id(), &session(n)).await.unwrap().is_written());
    }
    for count in [1, 7, 1000] {
        let store = RedisStore::builder(b.clone()).scan_count(count).build();
        assert_eq!(store.length().await.unwrap(), 25, "scan_count {count}");
        assert_eq!(store.ids().await.unwrap().len(), 25);
        assert_eq!(store.all().await.unwrap().len(), 25);
    }
}

pub async fn glob_special_prefixes_are_escaped<B: Backend + Clone>(b: B) {
    let valid = "0123456789abcdefghij";
    // Each prefix, with a foreign key the unescaped pattern would match.
    for (prefix, foreign) in [
        ("a*b:", "aXXb:"),
        ("x?[y]:", "xqy:"),
        ("back\\slash:", "backslash:"),
        ("[ab]:", "a:"),
    ] {
        let store = RedisStore::builder(b.clone())
            .prefix(prefix)
            .scan_count(3)
            .build();
        let ids: Vec<SessionId> = (0..4).map(|_| id()).collect();
        for id in &ids {
            assert!(store.set(id, &session(1)).await.unwrap().is_written());
        }
        let foreign_key = format!("{foreign}{valid}");
        raw_set(&b, &foreign_key, b"{\"n\":1}").await;
        assert_eq!(store.length().await.unwrap(), 4, "{prefix}");
        assert_eq!(store.ids().await.unwrap().len(), 4, "{prefix}");
        assert_eq!(store.all().await.unwrap().len(), 4, "{prefix}");
        assert_eq!(store.clear().await.unwrap(), 4, "{prefix}");
        assert!(
            exists(&b, &foreign_key).await,
            "{prefix} deleted {foreign_key}"
        );
    }
}

pub async fn empty_prefix_refuses_clear<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).prefix("").build();
    let id = id();
    assert!(store.set(&id, &session(1)).await.unwrap().is_written());
    raw_set(&b, "unrelated:key", b"x").await;
    assert!(exists(&b, id.as_str()).await);
    assert!(matches!(store.clear().await, Err(Error::EmptyPrefix)));
    assert!(exists(&b, "unrelated:key").await);
    assert_eq!(store.length().await.unwrap(), 1);
    assert_eq!(store.ids().await.unwrap(), support::listed([&id]));
    assert_eq!(
        store.all().await.unwrap(),
        vec![(support::listed([&id]).remove(0), session(1))]
    );
}

pub async fn create_never_overwrites<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    assert_eq!(
        store.create(&id, &session(1)).await.unwrap(),
        Outcome::Written
    );
    assert_eq!(
        store.create(&id, &session(2)).await.unwrap(),
        Outcome::Exists
    );
    assert_eq!(store.get(&id).await.unwrap(), Some(session(1)));
    let other = self::id();
    let past = session(3).with_expiry(std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(store.create(&other, &past).await.unwrap(), Outcome::Expired);
    assert_eq!(store.get(&other).await.unwrap(), None);
}

pub async fn update_never_resurrects<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    assert_eq!(store.update(&id, &session(1)).await.unwrap(), Outcome::Gone);
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert!(store.create(&id, &session(1)).await.unwrap().is_written());
    assert_eq!(
        store.update(&id, &session(2)).await.unwrap(),
        Outcome::Written
    );
    assert_eq!(store.get(&id).await.unwrap(), Some(session(2)));
    store.destroy(&id).await.unwrap();
    assert_eq!(store.update(&id, &session(3)).await.unwrap(), Outcome::Gone);
    assert_eq!(store.get(&id).await.unwrap(), None);
}

/// Spawns `a` and `b` and releases both at the same instant (a barrier), on the test's
/// multi-threaded runtime.
async fn at_once<A, B>(
    a: impl Future<Output = A> + Send + 'static,
    b: impl Future<Output = B> + Send + 'static,
) -> (A, B)
where
    A: Send + 'static,
    B: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let (for_a, for_b) = (barrier.clone(), barrier);
    let a = tokio::spawn(async move {
        for_a.wait().await;
        a.await
    });
    let b = tokio::spawn(async move {
        for_b.wait().await;
        b.await
    });
    (a.await.unwrap(), b.await.unwrap())
}

/// Rounds of each barrier race: the outcome is checked in every one.
const RACE_ROUNDS: usize = 100;

/// Updates racing a destroy (invariant 3): in fixed orders, in a destroy that lands inside a
/// stream of updates every time, and in rounds of an update and a destroy released at once.
pub async fn updates_racing_destroy_never_resurrect<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let key_of = |id: &SessionId| store.keyspace().key(id);

    // Destroy completes, then the update: Gone, and no key.
    let id = id();
    assert!(store.create(&id, &session(0)).await.unwrap().is_written());
    assert!(store.destroy(&id).await.unwrap());
    assert_eq!(store.update(&id, &session(1)).await.unwrap(), Outcome::Gone);
    assert!(!exists(&b, &key_of(&id)).await, "update resurrected");
    // Update completes, then the destroy: written, then gone for good.
    let id = self::id();
    assert!(store.create(&id, &session(0)).await.unwrap().is_written());
    assert_eq!(
        store.update(&id, &session(1)).await.unwrap(),
        Outcome::Written
    );
    assert!(store.destroy(&id).await.unwrap());
    assert!(!exists(&b, &key_of(&id)).await);
    assert_eq!(store.update(&id, &session(2)).await.unwrap(), Outcome::Gone);

    // A destroy inside a stream of updates: the writer updates until it sees Gone, and the
    // destroy is sent once the writer has written, so it always lands while updates are in
    // flight (between two of them, or during one).
    for round in 0..10 {
        let id = self::id();
        assert!(store.create(&id, &session(0)).await.unwrap().is_written());
        let (wrote, has_written) = tokio::sync::oneshot::channel();
        let writer = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mut wrote = Some(wrote);
                let mut outcomes = Vec::new();
                for n in 1..=100_000 {
                    let outcome = store.update(&id, &session(n)).await.unwrap();
                    outcomes.push(outcome);
                    if outcome == Outcome::Gone {
                        // Every later update is refused too.
                        for late in 0..3 {
                            outcomes.push(store.update(&id, &session(-late)).await.unwrap());
                        }
                        return outcomes;
                    }
                    if let Some(wrote) = wrote.take() {
                        wrote.send(()).unwrap();
                    }
                }
                panic!("100000 updates and the destroy never landed")
            })
        };
        has_written.await.unwrap();
        assert!(
            store.destroy(&id).await.unwrap(),
            "round {round}: the destroy found the session"
        );
        let outcomes = writer.await.unwrap();
        let written = outcomes.iter().take_while(|o| o.is_written()).count();
        assert!(written >= 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes[written..].iter().all(|o| *o == Outcome::Gone),
            "round {round}: a write after the destroy: {outcomes:?}"
        );
        assert!(
            !exists(&b, &key_of(&id)).await,
            "round {round}: session resurrected"
        );
    }

    // One update and one destroy released at once. Either serial order ends with no session
    // and a destroy that found it; the update is Written (it ran first) or Gone (second).
    for round in 0..RACE_ROUNDS {
        let id = self::id();
        assert!(store.create(&id, &session(0)).await.unwrap().is_written());
        let (updated, destroyed) = {
            let (s1, s2, id1, id2) = (store.clone(), store.clone(), id.clone(), id.clone());
            at_once(
                async move { s1.update(&id1, &session(1)).await.unwrap() },
                async move { s2.destroy(&id2).await.unwrap() },
            )
            .await
        };
        assert!(
            matches!(updated, Outcome::Written | Outcome::Gone),
            "round {round}: {updated:?}"
        );
        assert!(destroyed, "round {round}: the destroy found the session");
        assert!(
            !exists(&b, &key_of(&id)).await,
            "round {round}: update {updated:?} resurrected the session"
        );
    }
}

/// Creates racing a destroy or another create, released at once, many rounds. The outcomes
/// must match the final state in every round:
/// - create (new id) vs destroy: the create is always Written; the destroy found the session
///   (`true`) exactly when it ran second, so then no key is left; `false` means it ran first,
///   and the created session is there, intact.
/// - create vs create of one id: exactly one is Written, the other is Exists, and the stored
///   session is the winner's (never overwritten by the loser).
pub async fn creates_racing_never_overwrite<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    for round in 0..RACE_ROUNDS {
        let id = id();
        let (created, destroyed) = {
            let (s1, s2, id1, id2) = (store.clone(), store.clone(), id.clone(), id.clone());
            at_once(
                async move { s1.create(&id1, &session(1)).await.unwrap() },
                async move { s2.destroy(&id2).await.unwrap() },
            )
            .await
        };
        assert_eq!(created, Outcome::Written, "round {round}");
        let left = store.get(&id).await.unwrap();
        if destroyed {
            assert_eq!(left, None, "round {round}: destroyed but still there");
        } else {
            assert_eq!(left, Some(session(1)), "round {round}: destroy ran first");
        }

        let id = self::id();
        let (one, two) = {
            let (s1, s2, id1, id2) = (store.clone(), store.clone(), id.clone(), id.clone());
            at_once(
                async move { s1.create(&id1, &session(1)).await.unwrap() },
                async move { s2.create(&id2, &session(2)).await.unwrap() },
            )
            .await
        };
        let winner = match (one, two) {
            (Outcome::Written, Outcome::Exists) => session(1),
            (Outcome::Exists, Outcome::Written) => session(2),
            other => panic!("round {round}: two creates of one id gave {other:?}"),
        };
        assert_eq!(store.get(&id).await.unwrap(), Some(winner), "round {round}");
    }
}

/// The same races with both commands truly in flight together: held at a paused server and
/// then run in the order they arrived (real Redis only). One side goes through the backend
/// under test, the other through a second client of the same deployment, each side first once.
pub async fn writes_held_at_the_server_run_in_arrival_order<B, D>(b: B, deployment: &D)
where
    B: Backend + Clone,
    D: Deployment,
{
    let ours = RedisStore::new(b.clone());
    let other = RedisStore::new(redis_sessions::connect(&deployment.url()).await.unwrap());
    held_in_order(
        &ours,
        &other,
        &b,
        deployment,
        "the backend under test first",
    )
    .await;
    held_in_order(&other, &ours, &b, deployment, "the other client first").await;
}

async fn held_in_order<F: Backend, S: Backend, B: Backend>(
    first: &RedisStore<F>,
    second: &RedisStore<S>,
    b: &B,
    deployment: &impl Deployment,
    case: &str,
) {
    let sides = |id: &SessionId| (first.clone(), second.clone(), id.clone(), id.clone());

    // The destroy arrives first, the update second: the update finds nothing.
    let id = id();
    let key = first.keyspace().key(&id);
    assert!(first.create(&id, &session(0)).await.unwrap().is_written());
    assert_eq!(second.get(&id).await.unwrap(), Some(session(0)), "{case}");
    let (d, u, id1, id2) = sides(&id);
    let (destroyed, updated) = held_then_run_in_order(
        deployment.primary_for(&key),
        async move { d.destroy(&id1).await.unwrap() },
        async move { u.update(&id2, &session(1)).await.unwrap() },
    )
    .await;
    assert!(destroyed, "destroy, then update; {case}");
    assert_eq!(updated, Outcome::Gone, "destroy, then update; {case}");
    assert!(!exists(b, &key).await, "update resurrected; {case}");

    // The update arrives first, the destroy second: written, then deleted.
    let id = self::id();
    let key = first.keyspace().key(&id);
    assert!(first.create(&id, &session(0)).await.unwrap().is_written());
    let (u, d, id1, id2) = sides(&id);
    let (updated, destroyed) = held_then_run_in_order(
        deployment.primary_for(&key),
        async move { u.update(&id1, &session(1)).await.unwrap() },
        async move { d.destroy(&id2).await.unwrap() },
    )
    .await;
    assert_eq!(updated, Outcome::Written, "update, then destroy; {case}");
    assert!(destroyed, "update, then destroy; {case}");
    assert!(!exists(b, &key).await, "update, then destroy; {case}");

    // Two creates of one new id: the first wins; the second is Exists and writes nothing.
    let id = self::id();
    let key = first.keyspace().key(&id);
    let (c1, c2, id1, id2) = sides(&id);
    let (one, two) = held_then_run_in_order(
        deployment.primary_for(&key),
        async move { c1.create(&id1, &session(1)).await.unwrap() },
        async move { c2.create(&id2, &session(2)).await.unwrap() },
    )
    .await;
    assert_eq!(
        (one, two),
        (Outcome::Written, Outcome::Exists),
        "create, create; {case}"
    );
    assert_eq!(
        first.get(&id).await.unwrap(),
        Some(session(1)),
        "create, create; {case}"
    );
}

pub async fn corrupt_values_are_typed_errors<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let good = id();
    assert!(store.set(&good, &session(1)).await.unwrap().is_written());
    for (n, bad) in [
        &b"not json at all"[..],
        b"{\"n\":",
        b"[1,2,3]",
        b"\xff\x00\x01",
        b"42",
    ]
    .iter()
    .enumerate()
    {
        let id = id();
        raw_set(&b, &store.keyspace().key(&id), bad).await;
        let err = store.get(&id).await.unwrap_err();
        assert!(err.is_decode(), "case {n}: {err}");
        let text = err.to_string();
        assert!(text.contains(&id.fingerprint().to_string()), "{text}");
        assert!(
            !text.contains(id.as_str()) && !text.contains("not json"),
            "{text}"
        );
        // The bad value is left in place: nothing is lost.
        assert_eq!(
            b.get(&store.keyspace().key(&id)).await.unwrap().as_deref(),
            Some(*bad)
        );
    }
    // An empty value reads as no session (connect-redis).
    let empty = id();
    raw_set(&b, &store.keyspace().key(&empty), b"").await;
    assert_eq!(store.get(&empty).await.unwrap(), None);
    // all() fails on the first bad value; the stream reports each and goes on.
    assert!(store.all().await.unwrap_err().is_decode());
    let items: Vec<_> = store.all_stream().collect().await;
    assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(
        items
            .iter()
            .filter(|r| matches!(r, Err(e) if e.is_decode()))
            .count(),
        5
    );
    assert_eq!(store.length().await.unwrap(), 7);
}

pub async fn get_and_refresh_slides_ttl_in_one_step<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = id();
    let key = store.keyspace().key(&id);
    assert!(store
        .set(&id, &session(1).with_expiry(in_secs(5)))
        .await
        .unwrap()
        .is_written());
    let got = store
        .get_and_refresh(&id, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(got.unwrap().get::<i64>("n").unwrap(), Some(1));
    assert!(ttl_of(&b, &key).await > Duration::from_secs(100));
    assert_eq!(
        store
            .get_and_refresh(&self::id(), Duration::from_secs(5))
            .await
            .unwrap(),
        None
    );
    // A stored absolute expiry that has passed ends the session even though the key lives.
    let stale = self::id();
    let stale_key = store.keyspace().key(&stale);
    raw_set(
        &b,
        &stale_key,
        br#"{"n":1,"cookie":{"expires":"2001-01-01T00:00:00.000Z"}}"#,
    )
    .await;
    assert_eq!(
        store
            .get_and_refresh(&stale, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
    assert!(!exists(&b, &stale_key).await);
}

pub async fn reads_express_session_values<B: Backend + Clone>(b: B) {
    let store = RedisStore::new(b.clone());
    let id = SessionId::parse("ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2").unwrap();
    let key = "sess:ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2";
    let node = br#"{"cookie":{"originalMaxAge":86400000,"expires":"2099-01-01T00:00:00.000Z","secure":false,"httpOnly":true,"path":"/"},"views":3}"#;
    raw_set(&b, key, node).await;
    let s = store.get(&id).await.unwrap().unwrap();
    assert_eq!(s.get::<i64>("views").unwrap(), Some(3));
    assert!(s.expires().is_some());
    // Written back unchanged, the value is byte for byte what express-session wrote.
    assert!(store.set(&id, &s).await.unwrap().is_written());
    assert_eq!(b.get(key).await.unwrap().unwrap(), node);
    // A browser-session cookie (null expiry), members in express-session's order.
    let browser =
        br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#;
    raw_set(&b, key, browser).await;
    let s = store.get(&id).await.unwrap().unwrap();
    assert_eq!(s.expires(), None);
    assert!(store.update(&id, &s).await.unwrap().is_written());
    assert_eq!(b.get(key).await.unwrap().unwrap(), browser);
    // A changed field is the only change.
    let mut changed = s;
    changed.insert("n", 2).unwrap();
    assert!(store.update(&id, &changed).await.unwrap().is_written());
    assert_eq!(
        b.get(key).await.unwrap().unwrap(),
        br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":2}"#
    );
}

pub async fn key_only_expiry_lives_in_the_ttl_alone<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .ttl(Duration::from_secs(3600))
        .build();
    let id = id();
    let key = store.keyspace().key(&id);
    let s = session(1).with_key_expiry(in_secs(10));
    assert!(store.set(&id, &s).await.unwrap().is_written());
    // The TTL is the expiry; the value holds the fields alone.
    let ttl = ttl_of(&b, &key).await;
    assert!(
        ttl <= Duration::from_secs(10) && ttl > Duration::from_secs(8),
        "{ttl:?}"
    );
    let raw = b.get(&key).await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(json, serde_json::json!({"n": 1, "user": "user-1"}));
    let back = store.get(&id).await.unwrap().unwrap();
    assert_eq!(back.expires(), None);
    assert_eq!(back.data(), s.data());
    // A past key-only expiry deletes, as a stored one does.
    let past = session(1).with_key_expiry(std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(store.set(&id, &past).await.unwrap(), Outcome::Expired);
    assert!(!exists(&b, &key).await);

    // Under an idle timeout the store keeps the expiry in the value: it is the absolute bound
    // that sliding reads (GETEX) never pass.
    let sliding = RedisStore::builder(b.clone())
        .idle_timeout(Duration::from_secs(5))
        .build();
    let id = self::id();
    assert!(sliding.create(&id, &s).await.unwrap().is_written());
    let ttl = ttl_of(&b, &sliding.keyspace().key(&id)).await;
    assert!(ttl <= Duration::from_secs(5), "{ttl:?}");
    let back = sliding.load(&id).await.unwrap().unwrap();
    let diff = back
        .expires()
        .unwrap()
        .duration_since(s.expires().unwrap())
        .unwrap_or_default();
    assert!(diff < Duration::from_millis(1), "{diff:?}");
}

/// Declares one test per case for a backend constructor; the `held` cases also get the
/// deployment behind the backend.
macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?; held: $($held:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (backend, _server) = crate::support::$backend().await;
                    super::$case(backend).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $held() {
                    let (backend, deployment) = crate::support::$backend().await;
                    super::$held(backend, &deployment).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    (@cases $backend:ident; $($held:ident),*) => {
        conformance!($backend:
            set_get_uses_prefix_and_default_ttl,
            explicit_expiry_wins_over_ttl_option,
            ttl_option_fixed_and_function,
            set_with_past_expiry_deletes,
            sessions_expire_by_themselves,
            touch_refreshes_ttl_without_rewriting,
            disable_touch_makes_touch_a_no_op,
            disable_ttl_writes_without_expiry,
            length_ids_all_destroy,
            clear_deletes_only_own_sessions,
            bulk_thousand_sessions,
            prefix_option_isolates_stores,
            serializer_option_is_used,
            scan_count_does_not_change_results,
            glob_special_prefixes_are_escaped,
            empty_prefix_refuses_clear,
            create_never_overwrites,
            update_never_resurrects,
            updates_racing_destroy_never_resurrect,
            creates_racing_never_overwrite,
            corrupt_values_are_typed_errors,
            get_and_refresh_slides_ttl_in_one_step,
            reads_express_session_values,
            key_only_expiry_lives_in_the_ttl_alone;
            held: $($held),*
        );
    };
    // Embedded backends: nothing to pause.
    (embedded: $($backend:ident),*) => {
        $(suite!(@cases $backend;);)*
    };
    ($($backend:ident),*) => {
        $(suite!(@cases $backend; writes_held_at_the_server_run_in_arrival_order);)*
    };
}

suite!(embedded: memory);
suite!(redis, redis_multiplexed);
// As the least-privilege ACL user of `acl/setuser.redis`.
suite!(redis_acl);
#[cfg(feature = "cluster")]
suite!(cluster_acl);
#[cfg(feature = "tls")]
suite!(redis_tls);
#[cfg(feature = "cluster")]
suite!(cluster);
#[cfg(all(feature = "cluster", feature = "tls"))]
suite!(cluster_tls);
#[cfg(feature = "sentinel")]
suite!(sentinel);
#[cfg(all(feature = "sentinel", feature = "tls"))]
suite!(sentinel_tls);
#[cfg(feature = "sentinel")]
suite!(sentinel_acl);
