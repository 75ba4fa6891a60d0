//! `RedisStore::health`: one round trip, with the reason on failure.

use redis_harness::RedisServer;
use redis_sessions::{MemoryBackend, RedisBackend, RedisStore};

#[tokio::test]
async fn health_is_ok_while_redis_answers_and_names_the_outage_when_it_is_down() {
    let mut server = RedisServer::start();
    let store = RedisStore::new(RedisBackend::connect(&server.url()).await.unwrap());
    store.health().await.unwrap();

    server.stop();
    let err = store.health().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let reason = err.to_string();
    assert!(
        reason.contains("unavailable") || reason.contains("timed out"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_memory_backend_is_always_healthy() {
    RedisStore::new(MemoryBackend::new())
        .health()
        .await
        .unwrap();
}
