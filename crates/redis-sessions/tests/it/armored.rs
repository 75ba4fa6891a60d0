//! The store with everything on (hashed ids, compression, encryption with a key ring), on every
//! backend: the lifecycle, key rotation, values moved between keys, old formats, the size cap,
//! and what a dump of the keyspace reveals.

use redis_sessions::{
    Backend, Error, IdHashing, Json, KeyRing, KeyTtl, MsgPack, Outcome, RedisStore, ScanCursor,
    Serializer, Session, SessionId, SetMode, StoredForm,
};

use crate::support::{id, session};

const OLD: [u8; 32] = [0x11; 32];
const NEW: [u8; 32] = [0x22; 32];
/// Text in every test session that must never appear in Redis when encryption is on.
const SECRET: &str = "secret-user-name-7c1f";

/// A store with every security option on, writing with `serializer` and the key ring `keys`.
pub fn armored<B: Backend, S: Serializer>(b: B, serializer: S, keys: &[[u8; 32]]) -> RedisStore<B> {
    RedisStore::builder(b)
        .serializer(serializer)
        .hash_ids(IdHashing::Sha256)
        .compress_above(64)
        .encrypt(KeyRing::from_keys(keys.iter().copied()).unwrap())
        .build()
}

fn big_session(n: i64) -> Session {
    let mut s = session(n);
    s.insert("name", SECRET).unwrap();
    s.insert("history", vec!["/some/page/visited"; 50]).unwrap();
    s
}

/// Every key of the backend with its raw value.
async fn dump<B: Backend>(b: &B) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = Some(ScanCursor::default());
    while let Some(c) = cursor {
        let page = b.scan(c, "*", 1000).await.unwrap();
        for key in page.keys {
            let text = String::from_utf8(key.clone()).unwrap();
            let value = b.get(&text).await.unwrap().unwrap_or_default();
            out.push((key, value));
        }
        cursor = page.next;
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub async fn lifecycle_with_everything_on<B: Backend + Clone>(b: B) {
    for (n, store) in [
        armored(b.clone(), Json, &[NEW]),
        armored(b.clone(), MsgPack, &[NEW]),
    ]
    .into_iter()
    .enumerate()
    {
        let (a, c) = (id(), id());
        for (i, id) in [&a, &c].into_iter().enumerate() {
            let s = if i == 0 { session(1) } else { big_session(2) };
            assert_eq!(store.create(id, &s).await.unwrap(), Outcome::Written);
            assert_eq!(store.create(id, &s).await.unwrap(), Outcome::Exists);
            assert_eq!(store.get(id).await.unwrap(), Some(s.clone()));
            assert!(store.touch(id, &s).await.unwrap().is_written());
            assert_eq!(store.load(id).await.unwrap(), Some(s));
        }
        assert!(store.update(&a, &session(3)).await.unwrap().is_written());
        assert_eq!(store.get(&a).await.unwrap(), Some(session(3)));
        assert_eq!(store.length().await.unwrap(), 2, "store {n}");

        // Listings return the hashes, which address the sessions through the `_listed` methods.
        let listed = store.ids().await.unwrap();
        assert_eq!(listed.len(), 2);
        for hash in &listed {
            assert!(hash.as_str() != a.as_str() && hash.as_str() != c.as_str());
            assert_eq!(hash.as_str().len(), 43);
            assert!(store.get_listed(hash).await.unwrap().is_some());
        }
        let all = store.all().await.unwrap();
        assert_eq!(all.len(), 2);
        let hash_of_c = store.keyspace().hashing().stored_id(&c);
        assert!(all
            .iter()
            .any(|(h, s)| h == &hash_of_c && s == &big_session(2)));

        // Revocation by the id the user holds, and by a listed hash.
        assert!(store.destroy(&a).await.unwrap());
        assert_eq!(store.update(&a, &session(4)).await.unwrap(), Outcome::Gone);
        assert!(store.destroy_listed(&hash_of_c).await.unwrap());
        assert_eq!(store.get(&c).await.unwrap(), None);
        assert_eq!(store.length().await.unwrap(), 0);
        assert!(store.set(&a, &session(5)).await.unwrap().is_written());
        assert_eq!(store.clear().await.unwrap(), 1);
        // Debug shows options and key ids, never key material or ids.
        let shown = format!("{store:?}");
        assert!(
            shown.contains("Sha256") && shown.contains("key_ids"),
            "{shown}"
        );
        assert!(
            !shown.contains("34, 34") && !shown.contains(a.as_str()),
            "{shown}"
        );
    }
}

pub async fn nothing_stored_contains_the_id_or_contents<B: Backend + Clone>(b: B) {
    let store = armored(b.clone(), Json, &[NEW]);
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = id();
        assert!(store
            .create(&id, &big_session(n))
            .await
            .unwrap()
            .is_written());
        store.load(&id).await.unwrap();
        ids.push(id);
    }
    assert!(store
        .update(&ids[0], &session(99))
        .await
        .unwrap()
        .is_written());
    let dumped = dump(&b).await;
    assert_eq!(dumped.len(), 20);
    for (key, value) in &dumped {
        for id in &ids {
            assert!(!contains(key, id.as_str().as_bytes()));
            assert!(!contains(value, id.as_str().as_bytes()));
        }
        assert!(!contains(value, SECRET.as_bytes()));
        assert!(!contains(value, b"user-"));
        assert_eq!(value[0], 0x00, "enveloped");
    }
}

pub async fn keys_rotate_without_logging_anyone_out<B: Backend + Clone>(b: B) {
    let id = id();
    let before = armored(b.clone(), Json, &[OLD]);
    assert!(before
        .create(&id, &big_session(1))
        .await
        .unwrap()
        .is_written());

    // Deploy with the new key first and the old one kept: the old value still reads.
    let rotated = armored(b.clone(), Json, &[NEW, OLD]);
    assert_eq!(rotated.load(&id).await.unwrap(), Some(big_session(1)));
    // The next write re-encrypts with the new key.
    assert!(rotated
        .update(&id, &big_session(2))
        .await
        .unwrap()
        .is_written());
    let key = rotated.keyspace().key(&id);
    let raw = b.get(&key).await.unwrap().unwrap();
    assert_eq!(&raw[3..7], &KeyRing::new(NEW).key_ids()[0].to_be_bytes());
    // Later the old key is dropped; the session rewritten under the new key still reads.
    let after = armored(b.clone(), Json, &[NEW]);
    assert_eq!(after.get(&id).await.unwrap(), Some(big_session(2)));
    // A store that only knows the old key treats it as corrupt: typed error, and `load` is none.
    let err = before.get(&id).await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert_eq!(before.load(&id).await.unwrap(), None);
}

pub async fn values_moved_or_tampered_fail_cleanly<B: Backend + Clone>(b: B) {
    let store = armored(b.clone(), Json, &[NEW]);
    let (victim, attacker) = (id(), id());
    assert!(store
        .create(&victim, &big_session(1))
        .await
        .unwrap()
        .is_written());
    assert!(store
        .create(&attacker, &session(2))
        .await
        .unwrap()
        .is_written());
    let victim_key = store.keyspace().key(&victim);
    let attacker_key = store.keyspace().key(&attacker);
    let stolen = b.get(&victim_key).await.unwrap().unwrap();

    // Copied to another session's key, the value does not decrypt.
    assert!(b
        .set(&attacker_key, &stolen, None, SetMode::Always)
        .await
        .unwrap());
    let err = store.get(&attacker).await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert!(err
        .to_string()
        .contains(&attacker.fingerprint().to_string()));
    assert!(!err.to_string().contains(attacker.as_str()));
    assert_eq!(store.load(&attacker).await.unwrap(), None);

    // Flipped bits anywhere: a typed error, never a panic.
    for i in [0, 1, 2, 3, 7, 31, stolen.len() / 2, stolen.len() - 1] {
        let mut t = stolen.clone();
        t[i] ^= 0x04;
        b.set(&victim_key, &t, None, SetMode::Always).await.unwrap();
        let err = store.get(&victim).await.unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "byte {i}: {err}");
    }
}

pub async fn reads_connect_redis_json_with_everything_on<B: Backend + Clone>(b: B) {
    let store = armored(b.clone(), MsgPack, &[NEW]);
    let id = id();
    let node = br#"{"cookie":{"originalMaxAge":86400000,"expires":"2099-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"views":1}"#;
    let key = store.keyspace().key(&id);
    b.set(&key, node, None, SetMode::Always).await.unwrap();
    let s = store.get(&id).await.unwrap().unwrap();
    assert_eq!(s.get::<u64>("views").unwrap(), Some(1));
    // Written back, it is enveloped (MessagePack, encrypted) and still reads.
    assert!(store.update(&id, &s).await.unwrap().is_written());
    assert_eq!(b.get(&key).await.unwrap().unwrap()[0], 0x00);
    assert_eq!(store.get(&id).await.unwrap(), Some(s));
}

pub async fn oversized_sessions_are_refused<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone()).max_value_size(512).build();
    let id = id();
    let err = store.create(&id, &big_session(1)).await.unwrap_err();
    let Error::TooLarge { size, cap } = err else {
        panic!("{err}")
    };
    assert_eq!(cap, 512);
    assert!(size > 512);
    assert_eq!(store.get(&id).await.unwrap(), None, "nothing written");
    // An oversized value already in Redis is a decode error, not decoded.
    let key = store.keyspace().key(&id);
    let huge = serde_json::to_vec(&serde_json::json!({ "x": "y".repeat(4096) })).unwrap();
    b.set(&key, &huge, None, SetMode::Always).await.unwrap();
    let err = store.get(&id).await.unwrap_err();
    assert!(
        err.is_decode() && err.to_string().contains("over the cap"),
        "{err}"
    );
    // The default cap is 64 KiB.
    let default = RedisStore::new(b.clone());
    assert!(default
        .set(&id, &big_session(2))
        .await
        .unwrap()
        .is_written());
}

/// `raw` shows the key as stored and the value as an onlooker sees it: readable JSON from a
/// plain store, compressed from a compressing one, encrypted from an armored one; its `Debug`
/// shows neither key nor value; a missing session is `None` and reading it slides nothing.
pub async fn raw_shows_what_redis_holds<B: Backend + Clone>(b: B) {
    let id = id();
    let plain = RedisStore::builder(b.clone()).prefix("raw:").build();
    assert!(plain.raw(&id).await.unwrap().is_none());
    assert!(plain.set(&id, &big_session(1)).await.unwrap().is_written());
    let raw = plain.raw(&id).await.unwrap().unwrap();
    assert_eq!(raw.key, format!("raw:{}", id.as_str()));
    assert_eq!(raw.form(), StoredForm::Json);
    let text = String::from_utf8(raw.value.clone()).unwrap();
    assert!(text.starts_with('{') && text.contains(SECRET), "{text}");
    assert!(matches!(raw.ttl, KeyTtl::Expires(t) if t.as_secs() > 86_000));
    let debug = format!("{raw:?}");
    assert!(
        !debug.contains(id.as_str()) && !debug.contains(SECRET),
        "{debug}"
    );

    let compressed = RedisStore::builder(b.clone())
        .prefix("rawz:")
        .compress_above(64)
        .build();
    assert!(compressed
        .set(&id, &big_session(1))
        .await
        .unwrap()
        .is_written());
    let raw = compressed.raw(&id).await.unwrap().unwrap();
    assert_eq!(raw.form(), StoredForm::Compressed);

    let store = armored(b.clone(), Json, &[NEW]);
    assert!(store.set(&id, &big_session(1)).await.unwrap().is_written());
    let raw = store.raw(&id).await.unwrap().unwrap();
    assert_eq!(raw.key, store.keyspace().key(&id));
    assert!(!raw.key.contains(id.as_str()), "hashed: {}", raw.key);
    assert_eq!(raw.form(), StoredForm::Encrypted);
    assert!(!contains(&raw.value, SECRET.as_bytes()));
    // Not a read: a short TTL stays short.
    assert!(store
        .refresh(&id, std::time::Duration::from_secs(5))
        .await
        .unwrap()
        .is_written());
    let raw = store.raw(&id).await.unwrap().unwrap();
    assert!(
        matches!(raw.ttl, KeyTtl::Expires(t) if t.as_secs() <= 5),
        "{:?}",
        raw.ttl
    );
}

macro_rules! armored_suite {
    ($($backend:ident),*) => {
        $(mod $backend {
            backend_cases!($backend:
                lifecycle_with_everything_on,
                nothing_stored_contains_the_id_or_contents,
                keys_rotate_without_logging_anyone_out,
                values_moved_or_tampered_fail_cleanly,
                reads_connect_redis_json_with_everything_on,
                oversized_sessions_are_refused,
                raw_shows_what_redis_holds,
            );
        })*
    };
}

armored_suite!(memory, redis);

/// With a real server: after a full login flow, neither `SCAN` nor `DUMP` of any key shows the id.
#[tokio::test]
async fn redis_dump_holds_no_session_id() {
    let server = redis_harness::RedisServer::start();
    let backend = redis_sessions::RedisBackend::connect(&server.url())
        .await
        .unwrap();
    let store = armored(backend, Json, &[NEW]);
    let id = id();
    assert!(store
        .create(&id, &big_session(1))
        .await
        .unwrap()
        .is_written());
    store.load(&id).await.unwrap();
    assert!(store
        .update(&id, &big_session(2))
        .await
        .unwrap()
        .is_written());
    assert!(store
        .touch(&id, &big_session(2))
        .await
        .unwrap()
        .is_written());
    let keys = server.scan_keys("*");
    assert_eq!(keys.len(), 1);
    for key in keys {
        assert!(!key.contains(id.as_str()));
        let redis_harness::Reply::Bulk(Some(dumped)) = server.cmd(&["DUMP", &key]) else {
            panic!("DUMP")
        };
        assert!(!contains(&dumped, id.as_str().as_bytes()));
        assert!(!contains(&dumped, SECRET.as_bytes()));
    }
    let _ = SessionId::parse(id.as_str()).unwrap();
}
