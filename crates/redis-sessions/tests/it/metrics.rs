//! The `metrics` feature: names and labels, recorded by metrics-util's debugging recorder on
//! a real server.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use redis_harness::RedisServer;
use redis_sessions::{metric, LimitPolicy, RedisBackend, RedisStore, Session, SessionId};

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

/// The snapshot as (name, labels, value) samples, and each name's described unit.
fn samples(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> (Vec<Sample>, Vec<(String, Option<metrics::Unit>)>) {
    let mut units = Vec::new();
    let samples = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, _, value)| {
            let (_, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            units.push((key.name().to_owned(), unit));
            (key.name().to_owned(), labels, value)
        })
        .collect();
    (samples, units)
}

fn of(user: &str) -> Session {
    let mut s = Session::new();
    s.insert("user", user).unwrap();
    s
}

#[tokio::test]
async fn refused_saves_and_revocations_are_counted_and_units_described() {
    let server = RedisServer::start();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    // Built under the recorder: building describes the metrics to it.
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend.clone())
        .index_by("user")
        .max_sessions_per_user(2, LimitPolicy::EndLeastRecentlyUsed)
        .build();
    let tiny = RedisStore::builder(backend).max_value_size(8).build();
    let stored = |id: &SessionId| store.keyspace().stored_id(id);

    let (a, b, c, d) = (id(), id(), id(), id());
    assert!(store.create(&a, &of("ada")).await.unwrap().is_written());
    // A create of an id that exists writes nothing.
    assert!(!store.create(&a, &of("ada")).await.unwrap().is_written());
    crate::support::next_millisecond().await;
    assert!(store.create(&b, &of("ada")).await.unwrap().is_written());
    // A value over the size limit is refused before Redis.
    let refused = tiny.create(&id(), &session(1)).await.unwrap_err();
    assert!(refused.is_too_large(), "{refused}");
    crate::support::next_millisecond().await;
    // A third of ada's sessions ends the least recently used (a).
    assert!(store.create(&c, &of("ada")).await.unwrap().is_written());
    assert!(store.load(&a).await.unwrap().is_none());
    // One by its listed id, then every other one but d.
    assert!(store.revoke_user_session("ada", &stored(&b)).await.unwrap());
    assert!(store.create(&d, &of("ada")).await.unwrap().is_written());
    let keep = stored(&d);
    let ended = store.revoke_user_sessions("ada", Some(&keep)).await;
    assert_eq!(ended.unwrap(), 1);
    // Revoking what is gone ends nothing and counts nothing.
    assert!(!store.revoke_user_session("ada", &stored(&b)).await.unwrap());

    let (snapshot, units) = samples(&snapshotter);
    let saves = |outcome| counter(&snapshot, metric::SAVES, &[("outcome", outcome)]);
    assert_eq!(saves("written"), 4);
    assert_eq!(saves("exists"), 1);
    assert_eq!(saves("too_large"), 1);
    assert_eq!(
        counter(&snapshot, metric::ERRORS, &[("error.type", "too_large")]),
        1
    );
    let revoked = |reason| counter(&snapshot, metric::REVOCATIONS, &[("reason", reason)]);
    assert_eq!(revoked("session_limit"), 1);
    assert_eq!(revoked("revoke_one"), 1);
    assert_eq!(revoked("revoke_all"), 1);

    let unit = |name: &str| {
        units
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not recorded: {units:?}"))
            .1
    };
    assert_eq!(
        unit(metric::OPERATION_DURATION),
        Some(metrics::Unit::Seconds)
    );
    assert_eq!(unit(metric::BYTES_WRITTEN), Some(metrics::Unit::Bytes));
    assert_eq!(unit(metric::SAVES), None);
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
