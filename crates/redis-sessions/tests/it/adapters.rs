//! The framework adapters called through their traits, on real Redis: tower-sessions-core 0.14
//! and 0.15 (one generic case list, run for both) and actix-session 0.11.

use std::collections::HashMap;

use redis_sessions::{RedisBackend, RedisStore, SessionId};
use serde_json::json;

use crate::support::redis;

/// Every store configuration whose write and read paths differ for the adapters: JSON and
/// MessagePack, with and without an idle timeout (the stored bound), and armored (hashed ids,
/// compression, encryption). Each is named for failure messages.
fn configurations(backend: &RedisBackend) -> Vec<(&'static str, RedisStore<RedisBackend>)> {
    use std::time::Duration;
    let idle = Duration::from_secs(300);
    let mut stores = vec![
        ("json", RedisStore::new(backend.clone())),
        (
            "json idle",
            RedisStore::builder(backend.clone())
                .idle_timeout(idle)
                .build(),
        ),
    ];
    #[cfg(feature = "msgpack")]
    stores.extend([
        (
            "msgpack",
            RedisStore::builder(backend.clone())
                .serializer(redis_sessions::MsgPack)
                .build(),
        ),
        (
            "msgpack idle",
            RedisStore::builder(backend.clone())
                .serializer(redis_sessions::MsgPack)
                .idle_timeout(idle)
                .build(),
        ),
    ]);
    #[cfg(all(feature = "encryption", feature = "compression"))]
    stores.push((
        "armored idle",
        RedisStore::builder(backend.clone())
            .hash_ids(redis_sessions::IdHashing::Sha256)
            .compress_above(0)
            .encrypt(redis_sessions::KeyRing::new([7; 32]))
            .idle_timeout(idle)
            .build(),
    ));
    stores
}

/// The tower-sessions cases, for one tower-sessions-core version.
macro_rules! tower_cases {
    ($name:ident, $core:ident) => {
        mod $name {
            use super::*;
            use time::{Duration, OffsetDateTime};
            use $core::session::{Id, Record};
            use $core::SessionStore;

            fn record(id: i128, counter: i64) -> Record {
                let mut data = HashMap::new();
                data.insert("counter".to_owned(), json!(counter));
                data.insert("user".to_owned(), json!("ada"));
                Record {
                    id: Id(id),
                    data,
                    expiry_date: OffsetDateTime::now_utc() + Duration::minutes(10),
                }
            }

            fn key(id: Id) -> String {
                format!("sess:{id}")
            }

            async fn store() -> (RedisStore<RedisBackend>, crate::support::Guard) {
                let (backend, guard) = redis().await;
                (RedisStore::new(backend), guard)
            }

            #[tokio::test]
            async fn create_load_save_delete_round_trip() {
                let (store, guard) = store().await;
                let server = guard.as_ref().unwrap();
                let mut rec = record(42, 1);
                SessionStore::create(&store, &mut rec).await.unwrap();
                let loaded = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
                assert_eq!(loaded.data, rec.data);
                assert_eq!(loaded.id, rec.id);
                // The key is prefix + tower's id text, with the record's expiry as TTL, and the
                // value holds the fields alone (the TTL is the expiry).
                let ttl = server.cmd(&["PTTL", &key(rec.id)]).int().unwrap();
                assert!(ttl > 590_000 && ttl <= 600_000, "{ttl}");
                let raw = server.cmd(&["GET", &key(rec.id)]).text().unwrap();
                let value: serde_json::Value = serde_json::from_str(&raw).unwrap();
                assert_eq!(value, json!({"counter": 1, "user": "ada"}));
                rec.data.insert("counter".into(), json!(2));
                SessionStore::save(&store, &rec).await.unwrap();
                assert_eq!(
                    SessionStore::load(&store, &rec.id)
                        .await
                        .unwrap()
                        .unwrap()
                        .data["counter"],
                    json!(2)
                );
                SessionStore::delete(&store, &rec.id).await.unwrap();
                assert!(SessionStore::load(&store, &rec.id).await.unwrap().is_none());
            }

            /// Every configuration round-trips a record, including a `cookie` field of the
            /// application's own; under an idle timeout the stored expiry comes back.
            #[tokio::test]
            async fn every_configuration_round_trips() {
                let (backend, _guard) = redis().await;
                for (i, (name, store)) in configurations(&backend).into_iter().enumerate() {
                    let mut rec = record(1000 + i as i128, 5);
                    rec.data.insert("cookie".into(), json!({"theme": "dark"}));
                    rec.data.insert("cart".into(), json!([{"sku": "a-1", "qty": 2}, 1.5, null]));
                    SessionStore::create(&store, &mut rec).await.unwrap();
                    let loaded = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
                    assert_eq!(loaded.data, rec.data, "{name}");
                    let stored = name.ends_with("idle");
                    let off = (loaded.expiry_date - rec.expiry_date).abs();
                    assert_eq!(off < Duration::milliseconds(1), stored, "{name}: {off}");
                    rec.data.insert("counter".into(), json!(6));
                    SessionStore::save(&store, &rec).await.unwrap();
                    let loaded = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
                    assert_eq!(loaded.data, rec.data, "{name}");
                }
            }

            #[tokio::test]
            async fn create_draws_a_new_id_on_collision() {
                let (store, _guard) = store().await;
                let mut first = record(7, 1);
                SessionStore::create(&store, &mut first).await.unwrap();
                let mut second = record(7, 2);
                SessionStore::create(&store, &mut second).await.unwrap();
                assert_ne!(second.id, first.id, "a colliding id is replaced");
                assert_eq!(
                    SessionStore::load(&store, &first.id)
                        .await
                        .unwrap()
                        .unwrap()
                        .data["counter"],
                    json!(1)
                );
                assert_eq!(
                    SessionStore::load(&store, &second.id)
                        .await
                        .unwrap()
                        .unwrap()
                        .data["counter"],
                    json!(2)
                );
            }

            #[tokio::test]
            async fn save_after_delete_does_not_resurrect() {
                let (store, guard) = store().await;
                let mut rec = record(9, 1);
                SessionStore::create(&store, &mut rec).await.unwrap();
                SessionStore::delete(&store, &rec.id).await.unwrap();
                // Logout wins: Ok for the racing request, nothing written.
                SessionStore::save(&store, &rec).await.unwrap();
                assert!(SessionStore::load(&store, &rec.id).await.unwrap().is_none());
                let exists = guard.as_ref().unwrap().cmd(&["EXISTS", &key(rec.id)]).int();
                assert_eq!(exists, Some(0));
            }

            #[tokio::test]
            async fn corrupt_value_loads_as_none_and_is_kept() {
                let (store, guard) = store().await;
                let server = guard.as_ref().unwrap();
                let id = Id(12345);
                server.cmd(&["SET", &key(id), "\u{1}garbage"]);
                assert!(SessionStore::load(&store, &id).await.unwrap().is_none());
                assert_eq!(
                    server.cmd(&["GET", &key(id)]).text().unwrap(),
                    "\u{1}garbage"
                );
            }

            #[tokio::test]
            async fn redis_down_is_a_backend_error_without_ids() {
                let (store, mut guard) = store().await;
                guard.as_mut().unwrap().stop();
                let id = Id(99);
                let err = SessionStore::load(&store, &id).await.unwrap_err();
                assert!(
                    matches!(err, $core::session_store::Error::Backend(_)),
                    "{err}"
                );
                assert!(!err.to_string().contains(&id.to_string()), "{err}");
            }
        }
    };
}

tower_cases!(tower_014, tower_sessions_core_014);
tower_cases!(tower_015, tower_sessions_core_015);

mod actix {
    use super::*;
    use actix_session::storage::{SessionKey, SessionStore};

    type State = HashMap<String, String>;

    fn state(counter: i64) -> State {
        let mut s = State::new();
        s.insert("counter".into(), counter.to_string());
        s.insert("user".into(), "\"ada\"".into());
        s
    }

    fn ttl() -> time::Duration {
        time::Duration::minutes(10)
    }

    #[tokio::test]
    async fn save_load_update_ttl_delete() {
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        let store = RedisStore::new(backend);
        let key = SessionStore::save(&store, state(1), &ttl()).await.unwrap();
        let id = SessionId::parse(key.as_ref()).expect("our own id format");
        assert_eq!(key.as_ref().len(), 22, "128 bits");
        let redis_key = format!("sess:{}", id.as_str());
        // One JSON object, values not nested as strings.
        let raw = server.cmd(&["GET", &redis_key]).text().unwrap();
        let value: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(value, json!({"counter": 1, "user": "ada"}));
        let pttl = server.cmd(&["PTTL", &redis_key]).int().unwrap();
        assert!(pttl > 590_000 && pttl <= 600_000, "{pttl}");
        assert_eq!(
            SessionStore::load(&store, &key).await.unwrap(),
            Some(state(1))
        );

        let key = SessionStore::update(&store, key, state(2), &ttl())
            .await
            .unwrap();
        assert_eq!(
            SessionStore::load(&store, &key).await.unwrap(),
            Some(state(2))
        );

        SessionStore::update_ttl(&store, &key, &time::Duration::seconds(30))
            .await
            .unwrap();
        let pttl = server.cmd(&["PTTL", &redis_key]).int().unwrap();
        assert!(pttl > 25_000 && pttl <= 30_000, "{pttl}");

        SessionStore::delete(&store, &key).await.unwrap();
        assert_eq!(SessionStore::load(&store, &key).await.unwrap(), None);
        // Update after delete: logout wins, nothing created under any key.
        let again = SessionKey::try_from(key.as_ref().to_owned()).unwrap();
        SessionStore::update(&store, again, state(3), &ttl())
            .await
            .unwrap();
        assert_eq!(SessionStore::load(&store, &key).await.unwrap(), None);
        assert!(server.scan_keys("*").is_empty());
    }

    /// A state's JSON texts parsed (members of nested objects may come back in another
    /// order: the same JSON value to actix's `serde_json::from_str`).
    fn parsed(state: Option<State>) -> HashMap<String, serde_json::Value> {
        state
            .expect("a session")
            .into_iter()
            .map(|(k, v)| (k, serde_json::from_str(&v).unwrap()))
            .collect()
    }

    /// Every configuration round-trips a state, including a `cookie` field of the
    /// application's own and nested values.
    #[tokio::test]
    async fn every_configuration_round_trips() {
        let (backend, _guard) = redis().await;
        for (name, store) in configurations(&backend) {
            let mut state = state(1);
            state.insert("cookie".into(), r#"{"theme":"dark"}"#.into());
            state.insert("cart".into(), r#"[{"sku":"a-1","qty":2},1.5,null]"#.into());
            let key = SessionStore::save(&store, state.clone(), &ttl())
                .await
                .unwrap();
            let loaded = SessionStore::load(&store, &key).await.unwrap();
            assert_eq!(parsed(loaded), parsed(Some(state.clone())), "{name}");
            state.insert("counter".into(), "2".into());
            let key = SessionStore::update(&store, key, state.clone(), &ttl())
                .await
                .unwrap();
            let loaded = SessionStore::load(&store, &key).await.unwrap();
            assert_eq!(parsed(loaded), parsed(Some(state)), "{name}");
        }
    }

    /// An id of an earlier release (192 bits, 32 characters), still in a cookie and in Redis,
    /// keeps its session in every configuration: it loads, updates under the same id, has its
    /// TTL refreshed and is deleted, as a 22-character one.
    #[tokio::test]
    async fn ids_of_earlier_releases_keep_their_sessions() {
        use std::time::{Duration, SystemTime};
        const OLD: &str = "ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2";
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        let id = SessionId::parse(OLD).unwrap();
        for (name, store) in configurations(&backend) {
            // What the earlier release's adapter stored: the fields, the expiry in the TTL.
            let mut session = redis_sessions::Session::new()
                .with_key_expiry(SystemTime::now() + Duration::from_secs(600));
            session.insert("counter", 1).unwrap();
            session.insert("user", "ada").unwrap();
            let created = store.create(&id, &session).await.unwrap();
            assert_eq!(created, redis_sessions::Outcome::Written, "{name}");
            if name == "json" {
                assert_eq!(
                    server.cmd(&["EXISTS", &format!("sess:{OLD}")]).int(),
                    Some(1)
                );
            }

            let key = SessionKey::try_from(OLD.to_owned()).unwrap();
            let loaded = SessionStore::load(&store, &key).await.unwrap();
            assert_eq!(loaded, Some(state(1)), "{name}");
            let key = SessionStore::update(&store, key, state(2), &ttl())
                .await
                .unwrap();
            assert_eq!(key.as_ref(), OLD, "{name}: the cookie keeps its id");
            let loaded = SessionStore::load(&store, &key).await.unwrap();
            assert_eq!(loaded, Some(state(2)), "{name}");
            SessionStore::update_ttl(&store, &key, &time::Duration::seconds(30))
                .await
                .unwrap();
            match store.ttl(&id).await.unwrap() {
                redis_sessions::KeyTtl::Expires(left) => {
                    assert!(left <= Duration::from_secs(30), "{name}: {left:?}");
                }
                other => panic!("{name}: {other:?}"),
            }
            SessionStore::delete(&store, &key).await.unwrap();
            assert_eq!(SessionStore::load(&store, &key).await.unwrap(), None);
        }
        assert!(server.scan_keys("*").is_empty());
    }

    #[tokio::test]
    async fn foreign_cookie_values_load_as_no_session() {
        let (backend, guard) = redis().await;
        let store = RedisStore::new(backend);
        for bad in ["sess:*", "short", "../../etc/passwd"] {
            let key = SessionKey::try_from(bad.to_owned()).unwrap();
            assert_eq!(SessionStore::load(&store, &key).await.unwrap(), None);
        }
        // Rejected before Redis: no read was sent.
        let server = guard.as_ref().unwrap();
        assert_eq!(server.calls_of("get") + server.calls_of("getex"), 0);
    }
}
