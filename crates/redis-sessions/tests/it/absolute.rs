//! The absolute timeout on every backend: the creation record is written once and kept, every
//! write's and every sliding read's TTL is capped at what is left of it, and a session past it
//! reads as gone (and is deleted), however recently it was used.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_sessions::{Backend, KeyTtl, Outcome, RedisStore, Session, SessionId, SetMode};
use serde_json::{json, Value};

use crate::support::{eventually, id, session, ttl_of};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The stored value of `id`, as JSON.
async fn raw<B: Backend>(b: &B, store: &RedisStore<B>, id: &SessionId) -> Value {
    let bytes = b.get(&store.keyspace().key(id)).await.unwrap().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Plants a session as another instance of the store wrote it `age` ago: its fields, the
/// creation record, and a key TTL of a day.
async fn plant<B: Backend>(b: &B, store: &RedisStore<B>, id: &SessionId, age: Duration) {
    let created = now_ms() - age.as_millis() as u64;
    let value = json!({"n": 1, "user_id": "alice", "__created": created});
    let key = store.keyspace().key(id);
    let bytes = serde_json::to_vec(&value).unwrap();
    assert!(b
        .set(&key, &bytes, Some(DAY), SetMode::Always)
        .await
        .unwrap());
}

async fn missing<B: Backend>(b: &B, store: &RedisStore<B>, id: &SessionId) -> bool {
    b.pttl(&store.keyspace().key(id)).await.unwrap() == KeyTtl::Missing
}

/// The record is written at the first write, read back as `Session::created`, and kept by
/// every later write: the read session's own, a session without one (an application that
/// cleared its data: read back from Redis), `set`, and a `create` under a new id of a session
/// that carries it (an id cycled at login).
pub async fn the_creation_record_is_written_once_and_kept<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .absolute_timeout(HOUR)
        .build();
    let id = id();
    let before = now_ms();
    assert_eq!(
        store.create(&id, &session(1)).await.unwrap(),
        Outcome::Written
    );
    let created = raw(&b, &store, &id).await["__created"].as_u64().unwrap();
    assert!(created >= before && created <= now_ms(), "{created}");
    let read = store.get(&id).await.unwrap().unwrap();
    let at = UNIX_EPOCH + Duration::from_millis(created);
    assert_eq!(read.created(), Some(at));
    // A session read and written back keeps its bytes.
    let bytes = b.get(&store.keyspace().key(&id)).await.unwrap().unwrap();
    assert!(store.update(&id, &read).await.unwrap().is_written());
    assert_eq!(
        b.get(&store.keyspace().key(&id)).await.unwrap().unwrap(),
        bytes
    );
    // Writes of sessions without the record keep the stored one.
    assert!(store.update(&id, &session(2)).await.unwrap().is_written());
    assert!(store.set(&id, &session(3)).await.unwrap().is_written());
    let value = raw(&b, &store, &id).await;
    assert_eq!(value["__created"], json!(created));
    assert_eq!(value["n"], json!(3));
    // A session carrying its record keeps it under a new id.
    let cycled = self::id();
    let carried = store.get(&id).await.unwrap().unwrap();
    assert!(store.create(&cycled, &carried).await.unwrap().is_written());
    assert_eq!(
        store.get(&cycled).await.unwrap().unwrap().created(),
        Some(at)
    );
    // A session written without the option has no record; its first write under the option
    // records that write's time.
    let plain = RedisStore::new(b.clone());
    let legacy = self::id();
    assert!(plain
        .create(&legacy, &session(4))
        .await
        .unwrap()
        .is_written());
    assert_eq!(plain.get(&legacy).await.unwrap().unwrap().created(), None);
    let before = now_ms();
    assert!(store
        .update(&legacy, &session(5))
        .await
        .unwrap()
        .is_written());
    let recorded = raw(&b, &store, &legacy).await["__created"]
        .as_u64()
        .unwrap();
    assert!(recorded >= before, "{recorded} < {before}");
}

/// Every write's TTL is the smaller of its own and what is left of the absolute timeout; a
/// write past it deletes the session.
pub async fn writes_are_capped_at_what_is_left<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .ttl(DAY)
        .absolute_timeout(HOUR)
        .build();
    let fresh = id();
    assert!(store
        .create(&fresh, &session(1))
        .await
        .unwrap()
        .is_written());
    let ttl = ttl_of(&b, &store.keyspace().key(&fresh)).await;
    assert!(
        ttl <= HOUR && ttl > HOUR - Duration::from_secs(5),
        "{ttl:?}"
    );

    // Created 59 minutes ago: one minute left, whatever the session's own TTL.
    let old = id();
    plant(&b, &store, &old, HOUR - Duration::from_secs(60)).await;
    let read = store.get(&old).await.unwrap().unwrap();
    assert!(store.update(&old, &read).await.unwrap().is_written());
    let ttl = ttl_of(&b, &store.keyspace().key(&old)).await;
    assert!(ttl <= Duration::from_secs(60), "{ttl:?}");
    assert!(ttl > Duration::from_secs(55), "{ttl:?}");
    // An explicit expiry past the bound is capped as well.
    let far = read.clone().with_expiry(SystemTime::now() + DAY);
    assert!(store.update(&old, &far).await.unwrap().is_written());
    assert!(ttl_of(&b, &store.keyspace().key(&old)).await <= Duration::from_secs(60));
    // touch and refresh: capped too (refresh reads the record from the value).
    assert!(store.touch(&old, &read).await.unwrap().is_written());
    assert!(ttl_of(&b, &store.keyspace().key(&old)).await <= Duration::from_secs(60));
    assert!(store.refresh(&old, DAY).await.unwrap().is_written());
    assert!(ttl_of(&b, &store.keyspace().key(&old)).await <= Duration::from_secs(60));
    assert!(store.touch(&old, &session(1)).await.unwrap().is_written());
    assert!(ttl_of(&b, &store.keyspace().key(&old)).await <= Duration::from_secs(60));

    // Created more than an hour ago: an update deletes it, a create writes nothing.
    let past = id();
    plant(&b, &store, &past, HOUR + Duration::from_secs(1)).await;
    let carried = store.get_listed(&store.keyspace().stored_id(&past)).await;
    assert_eq!(carried.unwrap(), None, "a read past the bound is gone");
    plant(&b, &store, &past, HOUR + Duration::from_secs(1)).await;
    let mut stale = Session::new();
    stale
        .insert("__created", now_ms() - 2 * HOUR.as_millis() as u64)
        .unwrap();
    assert_eq!(store.update(&past, &stale).await.unwrap(), Outcome::Expired);
    assert!(missing(&b, &store, &past).await);
    assert_eq!(store.create(&past, &stale).await.unwrap(), Outcome::Expired);
    assert!(missing(&b, &store, &past).await);
    assert_eq!(
        store.refresh(&fresh, Duration::ZERO).await.unwrap(),
        Outcome::Expired
    );
}

/// A session past its absolute timeout reads as gone and is deleted, through every read:
/// `get`, `get_and_refresh`, `load`, even while its key would live on.
pub async fn reads_past_the_bound_are_gone<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .absolute_timeout(HOUR)
        .idle_timeout(DAY)
        .build();
    for read in 0..3 {
        let id = id();
        plant(&b, &store, &id, HOUR + Duration::from_millis(1)).await;
        let got = match read {
            0 => store.get(&id).await.unwrap(),
            1 => store.get_and_refresh(&id, DAY).await.unwrap(),
            _ => store.load(&id).await.unwrap(),
        };
        assert_eq!(got, None, "read {read}");
        assert!(missing(&b, &store, &id).await, "read {read} deletes it");
    }
}

/// THE SLIDING CASE: a session read more often than its idle timeout would live for ever by
/// its reads alone (each `GETEX` re-arms the idle timeout, none rewrites the value); the
/// absolute timeout ends it all the same. Each read leaves the server's TTL at most what is
/// left of the bound, and the session is gone from the bound on.
pub async fn sliding_reads_never_pass_the_bound<B: Backend + Clone>(b: B) {
    // Deterministic first: one minute left, and an idle timeout of a day.
    let store = RedisStore::builder(b.clone())
        .absolute_timeout(HOUR)
        .idle_timeout(DAY)
        .build();
    let id = id();
    plant(&b, &store, &id, HOUR - Duration::from_secs(60)).await;
    assert!(store.load(&id).await.unwrap().is_some());
    let ttl = ttl_of(&b, &store.keyspace().key(&id)).await;
    assert!(
        ttl <= Duration::from_secs(60),
        "{ttl:?}: the read would give a day"
    );
    assert!(store.get_and_refresh(&id, DAY).await.unwrap().is_some());
    assert!(ttl_of(&b, &store.keyspace().key(&id)).await <= Duration::from_secs(60));
    // Far from the bound, a read slides by the idle timeout alone (no second command).
    let young = self::id();
    assert!(store
        .create(&young, &session(1))
        .await
        .unwrap()
        .is_written());
    assert!(store.load(&young).await.unwrap().is_some());
    let ttl = ttl_of(&b, &store.keyspace().key(&young)).await;
    assert!(
        ttl <= HOUR && ttl > HOUR - Duration::from_secs(5),
        "{ttl:?}"
    );

    // Then for real: a 3 s bound, a 1 s idle timeout, reads every 0.1 s.
    let absolute = Duration::from_secs(3);
    let store = RedisStore::builder(b.clone())
        .absolute_timeout(absolute)
        .idle_timeout(Duration::from_secs(1))
        .build();
    let id = self::id();
    let before = SystemTime::now();
    assert!(store.create(&id, &session(1)).await.unwrap().is_written());
    let created = store.get(&id).await.unwrap().unwrap().created().unwrap();
    assert!(created >= before - Duration::from_millis(1));
    let deadline = created + absolute;
    let key = store.keyspace().key(&id);
    let started = Instant::now();
    loop {
        let asked = SystemTime::now();
        let loaded = store.load(&id).await.unwrap();
        let now = SystemTime::now();
        if loaded.is_none() {
            // Redis may expire the key a millisecond early (its TTL is whole milliseconds).
            assert!(
                now + Duration::from_millis(20) >= deadline,
                "ended before its bound"
            );
            break;
        }
        assert!(asked < deadline, "read as live past its bound");
        if let KeyTtl::Expires(ttl) = b.pttl(&key).await.unwrap() {
            let left = deadline.duration_since(now).unwrap_or_default();
            assert!(
                ttl <= left + Duration::from_millis(50),
                "the server's TTL {ttl:?} passes the bound ({left:?} left)"
            );
        }
        assert!(started.elapsed() < absolute + Duration::from_secs(5));
        // Pacing the reads, not ordering anything.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(Duration::from_secs(3), "the key is gone", || async {
        b.pttl(&key).await.unwrap() == KeyTtl::Missing
    })
    .await;
}

/// Listings show the creation time from the record (the one the timeout counts from), and
/// leave out, and never revoke, a session past the bound.
pub async fn listings_show_the_recorded_creation<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .index_by("user_id")
        .absolute_timeout(HOUR)
        .build();
    let id = id();
    let mut s = session(1);
    s.insert("user_id", "alice").unwrap();
    assert!(store.create(&id, &s).await.unwrap().is_written());
    let recorded = store.get(&id).await.unwrap().unwrap().created().unwrap();
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].created, recorded);
    assert_eq!(listed[0].session.created(), Some(recorded));

    // A session whose record says 30 minutes ago (written by another instance, indexed now).
    let older = self::id();
    plant(&b, &store, &older, HOUR / 2).await;
    let planted = store.get(&older).await.unwrap().unwrap();
    assert!(store.update(&older, &planted).await.unwrap().is_written());
    let listed = store.user_sessions("alice").await.unwrap();
    let entry = listed
        .iter()
        .find(|l| l.id == store.keyspace().stored_id(&older));
    assert_eq!(entry.unwrap().created, planted.created().unwrap());
    let age = SystemTime::now()
        .duration_since(entry.unwrap().created)
        .unwrap();
    assert!(age >= HOUR / 2, "{age:?}");
    // Past the bound: not listed, not counted, not ended by a revoke.
    plant(&b, &store, &older, HOUR + Duration::from_secs(1)).await;
    assert_eq!(store.user_session_count("alice").await.unwrap(), 1);
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, store.keyspace().stored_id(&id));
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 1);
}

macro_rules! absolute_suite {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                backend_cases!($backend:
                    the_creation_record_is_written_once_and_kept,
                    writes_are_capped_at_what_is_left,
                    reads_past_the_bound_are_gone,
                    sliding_reads_never_pass_the_bound,
                    listings_show_the_recorded_creation
                );
            }
        )*
    };
}

absolute_suite!(memory, redis);
#[cfg(feature = "cluster")]
absolute_suite!(cluster);
#[cfg(feature = "sentinel")]
absolute_suite!(sentinel);
