//! The absolute timeout through both framework adapters, on real Redis: the creation record
//! travels from a load to the next save in the framework's own map (tower-sessions' `Record`
//! data, actix-session's state) and never moves; saves, sliding loads and actix's
//! `update_ttl` are capped at what is left of it; a session past it loads as none.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis_sessions::{RedisBackend, RedisStore};
use serde_json::json;

use crate::support::redis;

const HOUR: Duration = Duration::from_secs(3600);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Stores whose write and read paths differ for the adapters, each with an absolute timeout.
fn configurations(backend: &RedisBackend) -> Vec<(&'static str, RedisStore<RedisBackend>)> {
    let idle = Duration::from_secs(300);
    let mut stores = vec![
        (
            "json",
            RedisStore::builder(backend.clone())
                .absolute_timeout(HOUR)
                .build(),
        ),
        (
            "json idle",
            RedisStore::builder(backend.clone())
                .absolute_timeout(HOUR)
                .idle_timeout(idle)
                .build(),
        ),
    ];
    #[cfg(feature = "msgpack")]
    stores.push((
        "msgpack idle",
        RedisStore::builder(backend.clone())
            .serializer(redis_sessions::MsgPack)
            .absolute_timeout(HOUR)
            .idle_timeout(idle)
            .build(),
    ));
    #[cfg(all(feature = "encryption", feature = "compression"))]
    stores.push((
        "armored idle",
        RedisStore::builder(backend.clone())
            .hash_ids(redis_sessions::IdHashing::Sha256)
            .compress_above(0)
            .encrypt(redis_sessions::KeyRing::new([7; 32]))
            .absolute_timeout(HOUR)
            .idle_timeout(idle)
            .build(),
    ));
    stores
}

/// A stored value with a creation record `age` ago.
fn planted(age: Duration) -> String {
    json!({"counter": 1, "user": "ada", "__created": now_ms() - age.as_millis() as u64}).to_string()
}

/// The store for the capping cases: an idle timeout of a day, so only the bound caps.
fn sliding(backend: RedisBackend) -> RedisStore<RedisBackend> {
    RedisStore::builder(backend)
        .absolute_timeout(HOUR)
        .idle_timeout(Duration::from_secs(86_400))
        .build()
}

macro_rules! tower_absolute {
    ($name:ident, $core:ident) => {
        mod $name {
            use super::*;
            use $core::session::{Id, Record};
            use $core::SessionStore;

            /// Ten minutes from now: tower-sessions recomputes a record's expiry before each
            /// save (a loaded record's is only a stand-in).
            fn in_ten_minutes() -> time::OffsetDateTime {
                time::OffsetDateTime::now_utc() + time::Duration::minutes(10)
            }

            fn record(id: i128) -> Record {
                let mut data = HashMap::new();
                data.insert("counter".to_owned(), json!(1));
                data.insert("user".to_owned(), json!("ada"));
                Record {
                    id: Id(id),
                    data,
                    expiry_date: in_ten_minutes(),
                }
            }

            #[tokio::test]
            async fn the_record_travels_in_the_data_and_never_moves() {
                let (backend, _guard) = redis().await;
                for (i, (name, store)) in configurations(&backend).into_iter().enumerate() {
                    let before = now_ms();
                    let mut rec = record(5000 + i as i128);
                    SessionStore::create(&store, &mut rec).await.unwrap();
                    let loaded = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
                    let created = loaded.data["__created"].as_u64().unwrap();
                    assert!(created >= before && created <= now_ms(), "{name}");
                    let mut without = loaded.data.clone();
                    without.remove("__created");
                    assert_eq!(without, rec.data, "{name}: the application's fields");
                    // A save of the loaded record keeps it; so does one of a record whose
                    // data the application rebuilt without it.
                    let mut next = loaded.clone();
                    next.expiry_date = in_ten_minutes();
                    next.data.insert("counter".into(), json!(2));
                    SessionStore::save(&store, &next).await.unwrap();
                    SessionStore::save(&store, &rec).await.unwrap();
                    let again = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
                    assert_eq!(again.data["__created"], json!(created), "{name}");
                    // An id cycled at login (tower-sessions creates the data under a new id).
                    let mut cycled = again.clone();
                    cycled.id = Id(9000 + i as i128);
                    cycled.expiry_date = in_ten_minutes();
                    SessionStore::create(&store, &mut cycled).await.unwrap();
                    let moved = SessionStore::load(&store, &cycled.id)
                        .await
                        .unwrap()
                        .unwrap();
                    assert_eq!(moved.data["__created"], json!(created), "{name}");
                }
            }

            #[tokio::test]
            async fn loads_and_saves_are_capped_and_end_at_the_bound() {
                let (backend, guard) = redis().await;
                let server = guard.as_ref().unwrap();
                let store = sliding(backend);
                let id = Id(77);
                let key = format!("sess:{id}");
                let value = planted(HOUR - Duration::from_secs(60));
                server.cmd(&["SET", &key, &value, "PX", "86400000"]);
                // The load's GETEX would give a day; the bound leaves a minute.
                let mut loaded = SessionStore::load(&store, &id).await.unwrap().unwrap();
                let pttl = server.cmd(&["PTTL", &key]).int().unwrap();
                assert!(pttl > 0 && pttl <= 60_000, "{pttl}");
                // A save asks for ten minutes; the bound leaves a minute.
                loaded.expiry_date = in_ten_minutes();
                SessionStore::save(&store, &loaded).await.unwrap();
                let pttl = server.cmd(&["PTTL", &key]).int().unwrap();
                assert!(pttl > 0 && pttl <= 60_000, "{pttl}");
                // Past the bound: loads as none, and the key is deleted.
                let value = planted(HOUR + Duration::from_secs(1));
                server.cmd(&["SET", &key, &value, "PX", "86400000"]);
                assert!(SessionStore::load(&store, &id).await.unwrap().is_none());
                assert_eq!(server.cmd(&["EXISTS", &key]).int(), Some(0));
            }
        }
    };
}

tower_absolute!(tower_014, tower_sessions_core_014);
tower_absolute!(tower_015, tower_sessions_core_015);

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
    async fn the_record_travels_in_the_state_and_never_moves() {
        let (backend, _guard) = redis().await;
        for (name, store) in configurations(&backend) {
            let before = now_ms();
            let key = SessionStore::save(&store, state(1), &ttl()).await.unwrap();
            let loaded = SessionStore::load(&store, &key).await.unwrap().unwrap();
            let created: u64 = loaded["__created"].parse().unwrap();
            assert!(created >= before && created <= now_ms(), "{name}");
            let mut without = loaded.clone();
            without.remove("__created");
            assert_eq!(without, state(1), "{name}: the application's fields");
            let mut next = loaded.clone();
            next.insert("counter".into(), "2".into());
            let key = SessionStore::update(&store, key, next, &ttl())
                .await
                .unwrap();
            // An application that cleared its state (actix `Session::clear`) and wrote anew.
            let key = SessionStore::update(&store, key, state(3), &ttl())
                .await
                .unwrap();
            let again = SessionStore::load(&store, &key).await.unwrap().unwrap();
            assert_eq!(again["__created"], created.to_string(), "{name}");
            assert_eq!(again["counter"], "3", "{name}");
        }
    }

    #[tokio::test]
    async fn loads_saves_and_update_ttl_are_capped() {
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        let store = sliding(backend);
        let key = SessionStore::save(&store, state(1), &ttl()).await.unwrap();
        let redis_key = format!("sess:{}", key.as_ref());
        let value = planted(HOUR - Duration::from_secs(60));
        server.cmd(&["SET", &redis_key, &value, "PX", "86400000"]);
        let loaded = SessionStore::load(&store, &key).await.unwrap().unwrap();
        let pttl = server.cmd(&["PTTL", &redis_key]).int().unwrap();
        assert!(pttl > 0 && pttl <= 60_000, "load: {pttl}");
        let key = SessionStore::update(&store, key, loaded, &ttl())
            .await
            .unwrap();
        let pttl = server.cmd(&["PTTL", &redis_key]).int().unwrap();
        assert!(pttl > 0 && pttl <= 60_000, "update: {pttl}");
        // `update_ttl` (actix's `OnEveryRequest`) reads the record to cap its PEXPIRE.
        SessionStore::update_ttl(&store, &key, &time::Duration::days(1))
            .await
            .unwrap();
        let pttl = server.cmd(&["PTTL", &redis_key]).int().unwrap();
        assert!(pttl > 0 && pttl <= 60_000, "update_ttl: {pttl}");
        let value = planted(HOUR + Duration::from_secs(1));
        server.cmd(&["SET", &redis_key, &value, "PX", "86400000"]);
        assert_eq!(SessionStore::load(&store, &key).await.unwrap(), None);
        assert_eq!(server.cmd(&["EXISTS", &redis_key]).int(), Some(0));
        let gone = SessionKey::try_from(key.as_ref().to_owned()).unwrap();
        SessionStore::update(&store, gone, state(2), &ttl())
            .await
            .unwrap();
        assert_eq!(server.cmd(&["EXISTS", &redis_key]).int(), Some(0));
    }
}
