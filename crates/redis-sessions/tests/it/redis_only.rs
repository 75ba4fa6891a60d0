//! Cases that need a real Redis: other key types, outages, timeouts, and what is sent.

use std::time::Duration;

use redis_harness::{RedisServer, Reply};
use redis_sessions::{Error, RedisBackend, RedisConfig, RedisStore};

use crate::support::{id, session};

async fn store_on(server: &RedisServer) -> RedisStore<RedisBackend> {
    RedisStore::new(RedisBackend::connect(&server.url()).await.unwrap())
}

#[tokio::test]
async fn wrong_redis_type_at_a_session_key_is_a_decode_error() {
    let server = RedisServer::start();
    let store = store_on(&server).await;
    let id = id();
    let key = store.keyspace().key(&id);
    server.cmd(&["HSET", &key, "field", "value"]);
    let err = store.get(&id).await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert!(!err.to_string().contains(id.as_str()));
    // The foreign value is untouched.
    assert_eq!(server.cmd(&["TYPE", &key]), Reply::Status("hash".into()));
}

#[tokio::test]
async fn each_method_costs_one_command() {
    let server = RedisServer::start();
    let store = store_on(&server).await;
    let id = id();
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.create(&id, &session(1)).await.unwrap().is_written());
    assert!(store.update(&id, &session(2)).await.unwrap().is_written());
    store.get(&id).await.unwrap();
    assert!(store.touch(&id, &session(2)).await.unwrap().is_written());
    store
        .get_and_refresh(&id, Duration::from_secs(60))
        .await
        .unwrap();
    store.destroy(&id).await.unwrap();
    let calls = server.command_calls();
    let of = |c: &str| calls.iter().find(|(n, _)| n == c).map_or(0, |(_, n)| *n);
    assert_eq!(of("set"), 2, "{calls:?}");
    assert_eq!(of("get"), 1, "{calls:?}");
    assert_eq!(of("pexpire"), 1, "{calls:?}");
    assert_eq!(of("getex"), 1, "{calls:?}");
    assert_eq!(of("unlink"), 1, "{calls:?}");
}

#[tokio::test]
async fn admin_operations_batch_and_never_use_keys_or_flush() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend).scan_count(10).build();
    for n in 0..100 {
        assert!(store.set(&id(), &session(n)).await.unwrap().is_written());
    }
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert_eq!(store.length().await.unwrap(), 100);
    assert_eq!(store.ids().await.unwrap().len(), 100);
    assert_eq!(store.all().await.unwrap().len(), 100);
    assert_eq!(store.clear().await.unwrap(), 100);
    // MGET and UNLINK in batches of exactly scan_count keys across SCAN pages (a page may hold
    // a few more than COUNT): 100 sessions / 10 = 10 of each, never more.
    assert_eq!(server.calls_of("mget"), 10, "{:?}", server.command_calls());
    assert_eq!(
        server.calls_of("unlink"),
        10,
        "{:?}",
        server.command_calls()
    );
    for forbidden in ["keys", "flushdb", "flushall"] {
        assert_eq!(server.calls_of(forbidden), 0, "{forbidden} was sent");
    }
    // The only CONFIG call is the test's own RESETSTAT, which INFO no longer counts.
    assert_eq!(server.calls_of("config|get"), 0);
    assert_eq!(server.calls_of("config|set"), 0);
}

#[tokio::test]
async fn a_paused_redis_gives_a_timeout_error() {
    let server = RedisServer::start();
    let config = RedisConfig {
        response_timeout: Duration::from_millis(200),
        retries: 0,
        ..RedisConfig::default()
    };
    let store = RedisStore::new(
        RedisBackend::connect_with(&server.url(), config)
            .await
            .unwrap(),
    );
    let id = id();
    assert!(store.set(&id, &session(1)).await.unwrap().is_written());
    server.cmd(&["CLIENT", "PAUSE", "1500", "ALL"]);
    let err = store.get(&id).await.unwrap_err();
    assert!(err.is_timeout() && err.is_unavailable(), "{err}");
    server.cmd(&["CLIENT", "UNPAUSE"]);
    // The value is still there once Redis answers again: the very next call is served (the
    // timed-out reply is discarded, the connection is not given up).
    assert_eq!(store.get(&id).await.unwrap(), Some(session(1)));
}

#[tokio::test]
async fn the_store_recovers_after_redis_restarts() {
    let mut server = RedisServer::start();
    let store = store_on(&server).await;
    let id = id();
    assert!(store.set(&id, &session(1)).await.unwrap().is_written());
    server.stop();
    let err = store.get(&id).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(matches!(err, Error::Backend(_)));
    let err = store.set(&id, &session(2)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    server.restart();
    // The same store, not rebuilt, works again, with no waiting: `restart` returns once the
    // server answers. At most one call fails, with a typed unavailable error: it finds that
    // the reconnection begun while Redis was down has failed, and begins a new one, which the
    // next call waits for.
    let outcome = match store.set(&id, &session(3)).await {
        Ok(outcome) => outcome,
        Err(e) => {
            assert!(e.is_unavailable(), "{e}");
            store.set(&id, &session(3)).await.unwrap()
        }
    };
    assert!(outcome.is_written());
    assert_eq!(store.get(&id).await.unwrap(), Some(session(3)));
}

#[tokio::test]
async fn connecting_to_a_dead_port_fails_fast_with_a_typed_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = RedisBackend::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis_sessions::BackendErrorKind::Unavailable,
        "{err}"
    );
}
