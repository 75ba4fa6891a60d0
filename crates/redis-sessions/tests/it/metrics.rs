//! The `metrics` feature: names and labels, recorded by metrics-util's debugging recorder on
//! a real server.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use redis_harness::RedisServer;
use redis_sessions::{metric, RedisBackend, RedisStore};

use crate::support::{id, session};

/// A metric's name, labels and value.
type Sample = (String, Vec<(String, String)>, DebugValue);

/// The counter's value with exactly these labels (0 when never incremented).
fn counter(snapshot: &[Sample], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&((*k).to_owned(), (*v).to_owned())))
        })
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

#[tokio::test]
async fn operations_are_counted_and_timed_by_operation_and_outcome() {
    let server = RedisServer::start();
    let store = RedisStore::new(RedisBackend::connect(&server.url()).await.unwrap());
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let (live, gone, corrupt) = (id(), id(), id());
    server.cmd(&["SET", &store.keyspace().key(&corrupt), "not a session"]);
    assert!(store.create(&live, &session(1)).await.unwrap().is_written());
    assert!(store.load(&live).await.unwrap().is_some());
    assert!(store.load(&gone).await.unwrap().is_none());
    assert!(store.load(&corrupt).await.unwrap().is_none());
    assert!(!store.update(&gone, &session(2)).await.unwrap().is_written());
    let stored_len = server.cmd(&["STRLEN", &store.keyspace().key(&live)]);

    let snapshot: Vec<Sample> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            assert!(matches!(kind, MetricKind::Counter | MetricKind::Histogram));
            (key.name().to_owned(), labels, value)
        })
        .collect();
    assert_eq!(counter(&snapshot, metric::LOADS, &[("result", "hit")]), 1);
    assert_eq!(counter(&snapshot, metric::LOADS, &[("result", "miss")]), 1);
    assert_eq!(
        counter(&snapshot, metric::LOADS, &[("result", "corrupt")]),
        1
    );
    assert_eq!(
        counter(&snapshot, metric::SAVES, &[("outcome", "written")]),
        1
    );
    assert_eq!(counter(&snapshot, metric::SAVES, &[("outcome", "gone")]), 1);
    assert_eq!(
        counter(&snapshot, metric::ERRORS, &[("error.type", "corrupt")]),
        1
    );
    let redis_harness::Reply::Int(len) = stored_len else {
        panic!("STRLEN: {stored_len:?}")
    };
    let len = u64::try_from(len).unwrap();
    // Both writes sent a value of this size (the update's was not applied: gone).
    let written = counter(&snapshot, metric::BYTES_WRITTEN, &[]);
    assert_eq!(written, 2 * len);
    // The hit read the value written, and the corrupt value's 13 bytes.
    assert_eq!(counter(&snapshot, metric::BYTES_READ, &[]), len + 13);
    let timed: Vec<_> = snapshot
        .iter()
        .filter(|(n, _, _)| n == metric::OPERATION_DURATION)
        .map(|(_, labels, v)| {
            let DebugValue::Histogram(samples) = v else {
                panic!("not a histogram: {v:?}")
            };
            assert!(samples
                .iter()
                .all(|s| s.into_inner() >= 0.0 && s.into_inner() < 5.0));
            (labels.clone(), samples.len())
        })
        .collect();
    let load_hit = vec![
        ("db.operation.name".to_owned(), "load".to_owned()),
        ("outcome".to_owned(), "hit".to_owned()),
    ];
    assert!(timed.contains(&(load_hit, 1)), "{timed:?}");
    assert_eq!(timed.iter().map(|(_, n)| n).sum::<usize>(), 5, "{timed:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_counted_as_a_reconnect() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let mut server = RedisServer::start();
    let store = RedisStore::new(RedisBackend::connect(&server.url()).await.unwrap());
    store.health().await.unwrap();
    server.restart();
    crate::support::eventually(
        std::time::Duration::from_secs(10),
        "the store reconnects",
        || async { store.health().await.is_ok() },
    )
    .await;
    let reconnects: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, _, _, _)| key.key().name() == metric::RECONNECTS)
        .map(|(key, _, _, value)| {
            assert!(key
                .key()
                .labels()
                .any(|l| l.key() == "backend" && l.value() == "standalone"));
            match value {
                DebugValue::Counter(n) => n,
                other => panic!("not a counter: {other:?}"),
            }
        })
        .sum();
    assert!(reconnects >= 1, "{reconnects}");
}
