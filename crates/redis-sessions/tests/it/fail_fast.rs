//! Fail-fast on a hung Redis (`SIGSTOP`): the breaker opens after consecutive timeouts, calls
//! then fail at once with the typed error, one probe at a time, and after `SIGCONT` the store
//! works again.

use std::time::Duration;

use futures_util::future::join_all;
use redis_harness::RedisServer;
use redis_sessions::{FailFast, FailFastState, RedisBackend, RedisStore};

use crate::support::{eventually, id, session, CapturedLog};

const COOLDOWN: Duration = Duration::from_millis(300);

async fn store_on(server: &RedisServer, fail_fast: Option<FailFast>) -> RedisStore<RedisBackend> {
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let builder = RedisStore::builder(backend);
    match fail_fast {
        Some(settings) => builder.fail_fast(settings).build(),
        None => builder.disable_fail_fast().build(),
    }
}

#[tokio::test]
async fn a_hung_redis_opens_the_breaker_then_one_probe_closes_it_after_sigcont() {
    let (log, _log_guard) = CapturedLog::start(tracing::Level::INFO);
    #[cfg(feature = "metrics")]
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    #[cfg(feature = "metrics")]
    let snapshotter = recorder.snapshotter();
    #[cfg(feature = "metrics")]
    let _metrics_guard = metrics::set_default_local_recorder(&recorder);

    let server = RedisServer::start();
    let settings = FailFast::new().after_failures(3).cooldown(COOLDOWN);
    let store = store_on(&server, Some(settings)).await;
    let kept = id();
    assert!(store.create(&kept, &session(7)).await.unwrap().is_written());
    assert_eq!(store.fail_fast_state(), Some(FailFastState::Closed));

    server.pause();
    // Three concurrent reads time out together: that opens the breaker.
    let ids: Vec<_> = (0..3).map(|_| id()).collect();
    let hung = join_all(ids.iter().map(|i| store.load(i))).await;
    for result in &hung {
        let e = result.as_ref().unwrap_err();
        assert!(e.is_unavailable() && !e.is_failing_fast(), "{e}");
    }
    assert_eq!(store.fail_fast_state(), Some(FailFastState::Open));

    // Now every call fails at once with the one typed error, health included.
    for e in [
        store.load(&kept).await.unwrap_err(),
        store.update(&kept, &session(8)).await.unwrap_err(),
        store.health().await.unwrap_err(),
    ] {
        assert!(e.is_failing_fast() && e.is_unavailable(), "{e}");
        assert!(e.to_string().contains("failing fast"), "{e}");
    }

    // After the cooldown, with Redis still hung: the first call is the probe (it times out),
    // a concurrent one fails at once, and the probe's failure starts another cooldown.
    // The cooldown is wall-clock time, so the test lets it pass (the breaker's own tests use
    // a clock of their own).
    tokio::time::sleep(COOLDOWN).await;
    // `join!` polls in order: the first call is admitted as the probe and hangs on Redis;
    // the second finds the probe in flight and fails at once.
    let (probe, during) = tokio::join!(store.load(&kept), store.load(&kept));
    assert!(!probe.unwrap_err().is_failing_fast());
    let during = during.unwrap_err();
    assert!(during.is_failing_fast(), "{during}");
    assert!(
        during.to_string().contains("a probe is in flight"),
        "{during}"
    );
    // The probe timed out: another cooldown.
    assert_eq!(store.fail_fast_state(), Some(FailFastState::Open));

    server.resume();
    eventually(Duration::from_secs(5), "the store works again", || async {
        store.load(&kept).await.is_ok_and(|s| s.is_some())
    })
    .await;
    assert_eq!(store.fail_fast_state(), Some(FailFastState::Closed));
    assert!(store.update(&kept, &session(9)).await.unwrap().is_written());
    store.health().await.unwrap();

    let text = log.text();
    assert_eq!(
        text.matches("failing fast (calls fail at once").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("fail-fast closed").count(), 1, "{text}");
    assert!(text.contains("WARN"), "{text}");

    #[cfg(feature = "metrics")]
    {
        use metrics_util::debugging::DebugValue;
        let snapshot = snapshotter.snapshot().into_vec();
        let value = |name: &str| {
            snapshot
                .iter()
                .find(|(key, _, _, _)| key.key().name() == name)
                .map(|(_, _, _, v)| v)
        };
        assert_eq!(
            value(redis_sessions::metric::FAIL_FAST_OPENED),
            Some(&DebugValue::Counter(1))
        );
        let Some(DebugValue::Counter(rejected)) = value(redis_sessions::metric::FAIL_FAST_REJECTED)
        else {
            panic!("no rejected counter")
        };
        assert!(*rejected >= 4, "{rejected}");
        assert!(matches!(
            value(redis_sessions::metric::FAIL_FAST_STATE),
            Some(DebugValue::Gauge(g)) if g.into_inner() == 0.0
        ));
    }
}

#[tokio::test]
async fn with_fail_fast_disabled_every_call_waits_for_the_timeout() {
    let server = RedisServer::start();
    let store = store_on(&server, None).await;
    assert_eq!(store.fail_fast_state(), None);
    server.pause();
    let ids: Vec<_> = (0..8).map(|_| id()).collect();
    for result in join_all(ids.iter().map(|i| store.load(i))).await {
        let e = result.unwrap_err();
        assert!(e.is_unavailable() && !e.is_failing_fast(), "{e}");
    }
    let e = store.load(&id()).await.unwrap_err();
    assert!(!e.is_failing_fast(), "{e}");
    server.resume();
    eventually(Duration::from_secs(5), "the store works again", || async {
        store.health().await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn refusals_are_answers_and_never_open_the_breaker() {
    let server = RedisServer::start();
    let store = store_on(&server, Some(FailFast::new().after_failures(1))).await;
    // A key of another type under the prefix: a WRONGTYPE answer, many times.
    let foreign = id();
    server.cmd(&["HSET", &store.keyspace().key(&foreign), "f", "v"]);
    for _ in 0..5 {
        assert!(store.get(&foreign).await.unwrap_err().is_decode());
    }
    assert_eq!(store.fail_fast_state(), Some(FailFastState::Closed));
}
