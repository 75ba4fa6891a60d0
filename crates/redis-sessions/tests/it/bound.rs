//! The idle timeout's bound on real Redis, through both framework adapters: what a session
//! costs in Redis (`MEMORY USAGE`, deterministic for a given Redis build: Redis 7.0 with
//! jemalloc counts the key, its dict entry, the value object and the value, each rounded to an
//! allocator size class), and values the previous release wrote (the bound in
//! `cookie.expires`) still loading with their bound honoured.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use redis_harness::RedisServer;
use redis_sessions::{RedisBackend, RedisStore, SessionId};
use serde_json::json;

use crate::support::redis;

/// The benchmark's idle timeout (bench/server).
const IDLE: Duration = Duration::from_secs(30 * 60);

fn memory_usage(server: &RedisServer, key: &str) -> i64 {
    server
        .cmd(&["MEMORY", "USAGE", key, "SAMPLES", "0"])
        .int()
        .unwrap()
}

fn raw(server: &RedisServer, key: &str) -> serde_json::Value {
    serde_json::from_str(&server.cmd(&["GET", key]).text().unwrap()).unwrap()
}

fn stores(backend: &RedisBackend) -> [(bool, RedisStore<RedisBackend>); 2] {
    [
        (false, RedisStore::new(backend.clone())),
        (
            true,
            RedisStore::builder(backend.clone())
                .idle_timeout(IDLE)
                .build(),
        ),
    ]
}

/// A time as express-session writes `cookie.expires`.
fn iso(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

mod tower {
    use super::*;
    use tower_sessions_core_015::session::{Id, Record};
    use tower_sessions_core_015::SessionStore;

    /// What the benchmark's `/login` writes.
    fn login(id: i128, expires_in: Duration) -> Record {
        let data = [
            ("user_id", json!(4242)),
            ("name", json!("Ada Lovelace")),
            ("roles", json!(["admin", "editor", "viewer"])),
            ("counter", json!(0)),
        ];
        Record {
            id: Id(id),
            data: data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            expiry_date: time::OffsetDateTime::now_utc() + expires_in,
        }
    }

    /// A session after `/login` and one `/inc` (a sliding load, then a save): at most the
    /// 184 B of the best peer (tower-sessions-redis-store) under an idle timeout, 168 B without.
    #[tokio::test]
    async fn a_session_under_an_idle_timeout_takes_at_most_184_bytes() {
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        for (i, (idle, store)) in stores(&backend).into_iter().enumerate() {
            let mut rec = login(0x5eed_0000 + i as i128, IDLE);
            SessionStore::create(&store, &mut rec).await.unwrap();
            let mut rec = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
            rec.data.insert("counter".into(), json!(1));
            // As tower-sessions' layer does before a save (`Expiry::OnInactivity`).
            rec.expiry_date = time::OffsetDateTime::now_utc() + IDLE;
            SessionStore::save(&store, &rec).await.unwrap();
            let key = format!("sess:{}", rec.id);
            assert_eq!(key.len(), 27);
            let value = raw(server, &key);
            let bytes = memory_usage(server, &key);
            eprintln!("tower idle {idle}: {bytes} B, value {value}");
            if idle {
                let bound = value["__exp"].as_u64().expect("the compact bound");
                let want = (rec.expiry_date.unix_timestamp_nanos() / 1_000_000) as u64;
                assert_eq!(bound, want, "the record's expiry, in ms");
                assert!(value.get("cookie").is_none(), "{value}");
                assert!(bytes <= 184, "{bytes} B with idle_timeout");
            } else {
                assert!(value.get("__exp").is_none(), "{value}");
                assert!(bytes <= 168, "{bytes} B without idle_timeout");
            }
            let loaded = SessionStore::load(&store, &rec.id).await.unwrap().unwrap();
            assert!(!loaded.data.contains_key("__exp"));
            assert_eq!(loaded.data, rec.data);
        }
    }

    /// A value the previous release wrote under an idle timeout (the bound in
    /// `cookie.expires`) loads with that bound and without a `cookie` field; a sliding read
    /// after the bound finds no session (and deletes it) however long the key's TTL; the next
    /// save writes the compact form.
    #[tokio::test]
    async fn the_old_form_loads_with_its_bound_honoured() {
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        let store = RedisStore::builder(backend).idle_timeout(IDLE).build();
        let bound = SystemTime::now() + Duration::from_secs(90);
        let old = json!({"counter": 3, "cookie": {"expires": iso(bound)}}).to_string();
        let id = Id(0x01d);
        let key = format!("sess:{id}");
        server.cmd(&["SET", &key, &old, "PX", "600000"]);
        let mut rec = SessionStore::load(&store, &id).await.unwrap().unwrap();
        assert_eq!(rec.data, HashMap::from([("counter".to_owned(), json!(3))]));
        let off = (rec.expiry_date - time::OffsetDateTime::from(bound)).abs();
        assert!(off < time::Duration::milliseconds(1), "{off}");
        rec.data.insert("counter".into(), json!(4));
        SessionStore::save(&store, &rec).await.unwrap();
        let value = raw(server, &key);
        assert_eq!(value["counter"], 4);
        assert!(
            value.get("cookie").is_none(),
            "rewritten compactly: {value}"
        );
        let ms = (rec.expiry_date.unix_timestamp_nanos() / 1_000_000) as u64;
        assert_eq!(value["__exp"], ms);

        // Past the bound: the key lives on (the TTL sliding reads re-armed), the session not.
        for passed in [
            json!({"counter": 3, "cookie": {"expires": iso(SystemTime::now() - Duration::from_secs(1))}}),
            json!({"counter": 3, "__exp": 1_000}),
        ] {
            server.cmd(&["SET", &key, &passed.to_string(), "PX", "600000"]);
            assert!(
                SessionStore::load(&store, &id).await.unwrap().is_none(),
                "{passed}"
            );
            assert_eq!(server.cmd(&["EXISTS", &key]).int(), Some(0), "{passed}");
        }
    }

    /// A record holding a field named like the bound is refused, with the reason.
    #[tokio::test]
    async fn a_field_named_like_the_bound_is_refused() {
        let (backend, guard) = redis().await;
        for (_, store) in stores(&backend) {
            let mut rec = login(0x0bad, IDLE);
            rec.data.insert("__exp".into(), json!(1));
            let err = SessionStore::create(&store, &mut rec).await.unwrap_err();
            assert!(err.to_string().contains("__exp"), "{err}");
        }
        assert!(guard.as_ref().unwrap().scan_keys("*").is_empty());
    }
}

mod actix {
    use super::*;
    use actix_session::storage::SessionStore;

    type State = HashMap<String, String>;

    fn login() -> State {
        [
            ("user_id", "4242"),
            ("name", "\"Ada Lovelace\""),
            ("roles", r#"["admin","editor","viewer"]"#),
            ("counter", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// After `/login` and one `/inc`: at most 184 B under an idle timeout, 168 B without, as on
    /// tower. The key (`sess:` + 22 characters, 128 bits) is in the 32-byte class; the
    /// 32-character ids of earlier releases put it in the 48-byte one (200 and 184 B).
    #[tokio::test]
    async fn a_session_under_an_idle_timeout_takes_at_most_184_bytes() {
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        let ttl = time::Duration::try_from(IDLE).unwrap();
        for (idle, store) in stores(&backend) {
            let key = SessionStore::save(&store, login(), &ttl).await.unwrap();
            let mut state = SessionStore::load(&store, &key).await.unwrap().unwrap();
            state.insert("counter".into(), "1".into());
            let key = SessionStore::update(&store, key, state.clone(), &ttl)
                .await
                .unwrap();
            let id = SessionId::parse(key.as_ref()).unwrap();
            let redis_key = format!("sess:{}", id.as_str());
            assert_eq!(redis_key.len(), 27);
            let value = raw(server, &redis_key);
            let bytes = memory_usage(server, &redis_key);
            eprintln!("actix idle {idle}: {bytes} B, value {value}");
            assert_eq!(value.get("__exp").is_some(), idle, "{value}");
            assert!(value.get("cookie").is_none(), "{value}");
            assert!(
                bytes <= if idle { 184 } else { 168 },
                "{bytes} B, idle {idle}"
            );
            let loaded = SessionStore::load(&store, &key).await.unwrap().unwrap();
            assert_eq!(loaded, state, "no __exp in the state");
        }
    }

    /// The old form through actix: loads with its bound and without a `cookie` entry; past
    /// the bound, no session.
    #[tokio::test]
    async fn the_old_form_loads_with_its_bound_honoured() {
        let (backend, guard) = redis().await;
        let server = guard.as_ref().unwrap();
        let store = RedisStore::builder(backend).idle_timeout(IDLE).build();
        let id = SessionId::generate().unwrap();
        let key = actix_session::storage::SessionKey::try_from(id.as_str().to_owned()).unwrap();
        let redis_key = format!("sess:{}", id.as_str());
        let future = SystemTime::now() + Duration::from_secs(90);
        let old = json!({"counter": 3, "cookie": {"expires": iso(future)}});
        server.cmd(&["SET", &redis_key, &old.to_string(), "PX", "600000"]);
        let state = SessionStore::load(&store, &key).await.unwrap().unwrap();
        assert_eq!(
            state,
            HashMap::from([("counter".to_owned(), "3".to_owned())])
        );
        let past = SystemTime::now() - Duration::from_secs(1);
        let old = json!({"counter": 3, "cookie": {"expires": iso(past)}});
        server.cmd(&["SET", &redis_key, &old.to_string(), "PX", "600000"]);
        assert_eq!(SessionStore::load(&store, &key).await.unwrap(), None);
        assert_eq!(server.cmd(&["EXISTS", &redis_key]).int(), Some(0));
    }
}
