//! Per-user sessions (the index), written once and run on every backend: listing, counting,
//! revoking, the limit's two policies, user changes, destroy, the sliding-read trap, no leak,
//! `clear`, hashed ids, encrypted values and corrupt values.

use std::time::{Duration, Instant};

use redis_sessions::{
    Backend, IdHashing, KeyTtl, LimitPolicy, Outcome, RedisStore, Session, SessionId, SetMode,
    StoredId, INDEX_SLACK,
};

use crate::support::{eventually, id, in_secs};

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

async fn missing<B: Backend>(b: &B, key: &str) -> bool {
    b.pttl(key).await.unwrap() == KeyTtl::Missing
}

fn ids(listed: &[redis_sessions::UserSession]) -> Vec<StoredId> {
    listed.iter().map(|s| s.id.clone()).collect()
}

pub async fn lists_counts_and_revokes<B: Backend + Clone>(b: B) {
    let store = indexed(&b);
    let (a1, a2, a3, bob, anon) = (id(), id(), id(), id(), id());
    for (n, id) in [&a1, &a2, &a3].into_iter().enumerate() {
        assert_eq!(
            store.create(id, &of("alice", n as i64)).await.unwrap(),
            Outcome::Written
        );
    }
    assert!(store
        .create(&bob, &of("bob", 9))
        .await
        .unwrap()
        .is_written());
    let mut plain = Session::new();
    plain.insert("n", 1).unwrap();
    assert!(store.create(&anon, &plain).await.unwrap().is_written());
    // a1 used last (times are in milliseconds: let one pass).
    crate::support::next_millisecond().await;
    assert!(store
        .update(&a1, &of("alice", 10))
        .await
        .unwrap()
        .is_written());

    let listed = store.user_sessions("alice").await.unwrap();
    let stored = |id: &SessionId| store.keyspace().stored_id(id);
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, stored(&a1), "most recently used first");
    assert_eq!(listed[0].session.get::<i64>("n").unwrap(), Some(10));
    for s in &listed {
        assert!(s.created <= s.last_used);
        assert!(matches!(s.ttl, KeyTtl::Expires(d) if d > Duration::from_secs(86_000)));
    }
    assert!(listed.windows(2).all(|w| w[0].last_used >= w[1].last_used));
    assert_eq!(store.user_session_count("alice").await.unwrap(), 3);
    assert_eq!(store.user_session_count("bob").await.unwrap(), 1);
    assert_eq!(store.user_session_count("nobody").await.unwrap(), 0);
    // Indexes are never sessions.
    assert_eq!(store.length().await.unwrap(), 5);
    assert_eq!(store.ids().await.unwrap().len(), 5);
    assert_eq!(store.all().await.unwrap().len(), 5);

    // Alice cannot end Bob's session through her listing.
    assert!(!store
        .revoke_user_session("alice", &stored(&bob))
        .await
        .unwrap());
    assert!(store.get(&bob).await.unwrap().is_some());
    assert!(store
        .revoke_user_session("alice", &stored(&a2))
        .await
        .unwrap());
    assert_eq!(store.get(&a2).await.unwrap(), None);
    assert!(!store
        .revoke_user_session("alice", &stored(&a2))
        .await
        .unwrap());
    // Sign out everywhere else.
    assert_eq!(
        store
            .revoke_user_sessions("alice", Some(&stored(&a1)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ids(&store.user_sessions("alice").await.unwrap()),
        [stored(&a1)]
    );
    assert!(store.get(&a1).await.unwrap().is_some());
    assert_eq!(store.get(&a3).await.unwrap(), None);
    // Everywhere.
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 1);
    assert_eq!(store.get(&a1).await.unwrap(), None);
    assert!(missing(&b, &store.keyspace().index_key("alice")).await);
    assert!(store.get(&bob).await.unwrap().is_some());
    assert!(store.get(&anon).await.unwrap().is_some());
    // A store that does not index lists nothing.
    let plain_store = RedisStore::new(b.clone());
    assert!(plain_store.user_sessions("bob").await.unwrap().is_empty());
}

pub async fn sessions_without_the_field_are_not_indexed<B: Backend + Clone>(b: B) {
    let store = indexed(&b);
    let id = id();
    let mut s = Session::new();
    s.insert(FIELD, serde_json::json!({"not": "a user"}))
        .unwrap();
    assert!(store.create(&id, &s).await.unwrap().is_written());
    assert!(store
        .create(&self::id(), &Session::new())
        .await
        .unwrap()
        .is_written());
    // Numbers name users too, as their text.
    let num = self::id();
    let mut n = Session::new();
    n.insert(FIELD, 42).unwrap();
    assert!(store.create(&num, &n).await.unwrap().is_written());
    assert_eq!(store.user_session_count("42").await.unwrap(), 1);
    let keys = all_keys(&b).await;
    assert_eq!(
        keys.iter().filter(|k| k.contains('~')).count(),
        1,
        "{keys:?}"
    );
}

async fn all_keys<B: Backend>(b: &B) -> Vec<String> {
    let mut cursor = Some(redis_sessions::ScanCursor::default());
    let mut keys = Vec::new();
    while let Some(c) = cursor {
        let page = b.scan(c, "*", 100).await.unwrap();
        keys.extend(page.keys.into_iter().map(|k| String::from_utf8(k).unwrap()));
        cursor = page.next;
    }
    keys
}

pub async fn user_change_and_destroy_move_the_session<B: Backend + Clone>(b: B) {
    let store = indexed(&b);
    let id = id();
    let stored = store.keyspace().stored_id(&id);
    assert!(store
        .create(&id, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    assert_eq!(
        ids(&store.user_sessions("alice").await.unwrap()),
        std::slice::from_ref(&stored)
    );
    // The user changes: the new user's index has it at once; the old one no longer lists it.
    assert!(store.update(&id, &of("bob", 2)).await.unwrap().is_written());
    assert_eq!(
        ids(&store.user_sessions("bob").await.unwrap()),
        std::slice::from_ref(&stored)
    );
    assert!(store.user_sessions("alice").await.unwrap().is_empty());
    // Revoking everything of alice never ends bob's session.
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 0);
    assert!(store.get(&id).await.unwrap().is_some());
    let alice = store.keyspace().index_key("alice");
    crate::support::listings_remove_stale(&store, &["alice"], || missing(&b, &alice)).await;
    // The field removed: listed nowhere.
    let mut anon = Session::new();
    anon.insert("n", 3).unwrap();
    assert!(store.update(&id, &anon).await.unwrap().is_written());
    assert!(store.user_sessions("bob").await.unwrap().is_empty());
    // Destroyed: gone from the listing.
    let other = self::id();
    assert!(store
        .create(&other, &of("carol", 1))
        .await
        .unwrap()
        .is_written());
    assert!(store.destroy(&other).await.unwrap());
    assert!(store.user_sessions("carol").await.unwrap().is_empty());
    assert_eq!(store.user_session_count("carol").await.unwrap(), 0);
    // An update of a destroyed session does not index it again (logout wins).
    assert_eq!(
        store.update(&other, &of("carol", 2)).await.unwrap(),
        Outcome::Gone
    );
    let carol = store.keyspace().index_key("carol");
    crate::support::listings_remove_stale(&store, &["carol"], || missing(&b, &carol)).await;
}

pub async fn limit_ends_the_least_recently_used<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .max_sessions_per_user(2, LimitPolicy::EndLeastRecentlyUsed)
        .build();
    let (s1, s2, s3) = (id(), id(), id());
    // Last-use times are in milliseconds: let one pass between the writes that set them.
    let tick = crate::support::next_millisecond;
    assert!(store
        .create(&s1, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    tick().await;
    assert!(store
        .create(&s2, &of("alice", 2))
        .await
        .unwrap()
        .is_written());
    tick().await;
    // Rewriting an indexed session is not a new one: no limit.
    assert!(store
        .update(&s1, &of("alice", 11))
        .await
        .unwrap()
        .is_written());
    tick().await;
    assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
    // A third: s2 is the least recently used.
    assert!(store
        .create(&s3, &of("alice", 3))
        .await
        .unwrap()
        .is_written());
    tick().await;
    assert_eq!(store.get(&s2).await.unwrap(), None);
    assert!(store.get(&s1).await.unwrap().is_some());
    assert!(store.get(&s3).await.unwrap().is_some());
    assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
    // Another user is not limited by alice's sessions.
    assert!(store
        .create(&id(), &of("bob", 1))
        .await
        .unwrap()
        .is_written());
    // A session that gains the user (login on an anonymous session) counts as new.
    let anon = id();
    assert!(store
        .create(&anon, &Session::new())
        .await
        .unwrap()
        .is_written());
    assert!(store
        .update(&anon, &of("alice", 4))
        .await
        .unwrap()
        .is_written());
    assert_eq!(
        store.get(&s1).await.unwrap(),
        None,
        "s1 was the least recently used"
    );
    assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
}

pub async fn limit_refuses_the_new_session<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .max_sessions_per_user(2, LimitPolicy::Refuse)
        .build();
    let (s1, s2, s3) = (id(), id(), id());
    assert!(store
        .create(&s1, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    assert!(store
        .create(&s2, &of("alice", 2))
        .await
        .unwrap()
        .is_written());
    assert_eq!(
        store.create(&s3, &of("alice", 3)).await.unwrap(),
        Outcome::LimitReached
    );
    assert_eq!(store.get(&s3).await.unwrap(), None);
    assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
    // An ended session makes room.
    assert!(store.destroy(&s1).await.unwrap());
    assert!(store
        .create(&s3, &of("alice", 3))
        .await
        .unwrap()
        .is_written());
    assert_eq!(store.user_session_count("alice").await.unwrap(), 2);
}

/// THE TRAP: a session kept alive by sliding reads alone, far past what the index recorded
/// at its write and past the index's own TTL from then, stays listed and revocable.
pub async fn sliding_reads_keep_a_session_listed<B: Backend + Clone>(b: B) {
    let idle = Duration::from_secs(1);
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .idle_timeout(idle)
        .build();
    let id = id();
    let index = store.keyspace().index_key("alice");
    assert!(store
        .create(&id, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    let written = Instant::now();
    // Reads every 0.4 s for longer than the index's TTL at the write (idle + slack) and
    // several idle periods.
    let keep_for = idle + INDEX_SLACK + 3 * idle;
    while written.elapsed() < keep_for {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            store.load(&id).await.unwrap().is_some(),
            "the reads keep it alive"
        );
    }
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(ids(&listed), [store.keyspace().stored_id(&id)]);
    assert!(listed[0].last_used > listed[0].created);
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 1);
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert!(missing(&b, &index).await);

    // A session with an explicit expiry (the framework adapters' case) needs no index work
    // on reads: the index was sized by that bound at the write.
    let bounded = self::id();
    let s = of("bob", 1).with_expiry(in_secs(3600));
    assert!(store.create(&bounded, &s).await.unwrap().is_written());
    let ttl = crate::support::ttl_of(&b, &store.keyspace().index_key("bob")).await;
    assert!(ttl > Duration::from_secs(3590), "{ttl:?}");
}

/// No leak: when a user's last session ends, the index is gone within the slack.
pub async fn indexes_end_with_their_last_session<B: Backend + Clone>(b: B) {
    let ttl = Duration::from_millis(300);
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .ttl(ttl)
        .build();
    let index = store.keyspace().index_key("alice");
    let (one, two) = (id(), id());
    assert!(store
        .create(&one, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    assert!(store
        .create(&two, &of("alice", 2))
        .await
        .unwrap()
        .is_written());
    let index_ttl = crate::support::ttl_of(&b, &index).await;
    assert!(index_ttl <= ttl + INDEX_SLACK, "{index_ttl:?}");
    eventually(Duration::from_secs(10), "the sessions expire", || async {
        store.get(&one).await.unwrap().is_none() && store.get(&two).await.unwrap().is_none()
    })
    .await;
    let ended = Instant::now();
    eventually(
        INDEX_SLACK + Duration::from_secs(2),
        "the index expires after its sessions",
        || async { missing(&b, &index).await },
    )
    .await;
    assert!(ended.elapsed() <= INDEX_SLACK + Duration::from_secs(1));

    // Under sliding reads too: once the reads stop, the index follows its session.
    let idle = Duration::from_millis(500);
    let sliding = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .idle_timeout(idle)
        .build();
    let index = sliding.keyspace().index_key("bob");
    let id = self::id();
    assert!(sliding
        .create(&id, &of("bob", 1))
        .await
        .unwrap()
        .is_written());
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(sliding.load(&id).await.unwrap().is_some());
    }
    let index_ttl = crate::support::ttl_of(&b, &index).await;
    assert!(index_ttl <= idle + INDEX_SLACK, "{index_ttl:?}");
    eventually(
        idle + INDEX_SLACK + Duration::from_secs(2),
        "the index expires after its sliding session",
        || async { missing(&b, &index).await },
    )
    .await;
}

pub async fn clear_removes_indexes_and_nothing_else<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .scan_count(2)
        .build();
    for n in 0..5 {
        assert!(store
            .create(&id(), &of(&format!("u{n}"), n))
            .await
            .unwrap()
            .is_written());
    }
    assert!(store
        .create(&id(), &Session::new())
        .await
        .unwrap()
        .is_written());
    let foreign = "sess:~user~not-an-index";
    assert!(b.set(foreign, b"x", None, SetMode::Always).await.unwrap());
    assert_eq!(
        store.clear().await.unwrap(),
        6,
        "sessions counted, indexes not"
    );
    let left = all_keys(&b).await;
    assert_eq!(left, [foreign.to_owned()]);
}

pub async fn hashed_ids_and_keyed_user_hashes<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .hash_ids(IdHashing::HmacSha256([9; 32]))
        .prefix("h:")
        .build();
    let id = id();
    assert!(store
        .create(&id, &of("alice@example.com", 1))
        .await
        .unwrap()
        .is_written());
    let listed = store.user_sessions("alice@example.com").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_ne!(
        listed[0].id.as_str(),
        id.as_str(),
        "a hash is listed, not the id"
    );
    assert_eq!(listed[0].id, store.keyspace().stored_id(&id));
    for key in all_keys(&b).await {
        assert!(
            !key.contains("alice") && !key.contains(id.as_str()),
            "{key}"
        );
    }
    let unkeyed = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .prefix("h:")
        .build();
    assert_ne!(
        unkeyed.keyspace().index_key("alice@example.com"),
        store.keyspace().index_key("alice@example.com")
    );
    // Revoking from the listing works with hashes.
    assert!(store
        .revoke_user_session("alice@example.com", &listed[0].id)
        .await
        .unwrap());
    assert_eq!(store.get(&id).await.unwrap(), None);
}

#[cfg(feature = "encryption")]
pub async fn encrypted_values_are_indexed<B: Backend + Clone>(b: B) {
    let ring = redis_sessions::KeyRing::new([5u8; 32]);
    let store = RedisStore::builder(b.clone())
        .index_by(FIELD)
        .encrypt(ring)
        .build();
    let id = id();
    assert!(store
        .create(&id, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    let raw = b.get(&store.keyspace().key(&id)).await.unwrap().unwrap();
    assert!(!raw.windows(5).any(|w| w == b"alice"), "encrypted at rest");
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].session.get::<String>(FIELD).unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 1);
}

pub async fn corrupt_values_are_skipped_and_revoked<B: Backend + Clone>(b: B) {
    let store = indexed(&b);
    let (good, bad) = (id(), id());
    assert!(store
        .create(&good, &of("alice", 1))
        .await
        .unwrap()
        .is_written());
    assert!(store
        .create(&bad, &of("alice", 2))
        .await
        .unwrap()
        .is_written());
    let bad_key = store.keyspace().key(&bad);
    assert!(b
        .set(
            &bad_key,
            b"{\"n\":",
            Some(Duration::from_secs(60)),
            SetMode::Always
        )
        .await
        .unwrap());
    let listed = store.user_sessions("alice").await.unwrap();
    assert_eq!(ids(&listed), [store.keyspace().stored_id(&good)]);
    assert_eq!(store.user_session_count("alice").await.unwrap(), 1);
    assert_eq!(store.revoke_user_sessions("alice", None).await.unwrap(), 2);
    assert!(missing(&b, &bad_key).await);
}

macro_rules! users_suite {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                backend_cases!($backend:
                    lists_counts_and_revokes,
                    sessions_without_the_field_are_not_indexed,
                    user_change_and_destroy_move_the_session,
                    limit_ends_the_least_recently_used,
                    limit_refuses_the_new_session,
                    sliding_reads_keep_a_session_listed,
                    indexes_end_with_their_last_session,
                    clear_removes_indexes_and_nothing_else,
                    hashed_ids_and_keyed_user_hashes,
                    corrupt_values_are_skipped_and_revoked
                );
                #[cfg(feature = "encryption")]
                backend_cases!($backend: encrypted_values_are_indexed);
            }
        )*
    };
}

users_suite!(memory, redis);
#[cfg(feature = "cluster")]
users_suite!(cluster);
#[cfg(feature = "sentinel")]
users_suite!(sentinel);
