//! The process's Prometheus recorder, with the names OpenTelemetry's Prometheus exporters give
//! the store's metrics: dots become underscores, a metric described with a unit gets the
//! unit's suffix unless its name already has that word (`db.client.operation.duration` in
//! seconds is `db_client_operation_duration_seconds`; `redis_sessions.bytes_read` in bytes
//! stays `redis_sessions_bytes_read`), and a counter ends in `_total`.
//!
//! metrics-exporter-prometheus 0.17 alone does not: it never adds `_total`, and its unit
//! suffix goes on the samples but not on their `# TYPE` and `# HELP` lines. So [`Renamed`]
//! gives each metric its Prometheus name before the exporter sees it, and the exporter
//! renders the names as they are. The duration is a histogram with [`DURATION_BUCKETS`]
//! (the exporter's default would be a summary, which cannot be aggregated across processes).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds (seconds) of `db_client_operation_duration_seconds`' buckets: Redis answers a
/// session read or write in 100 µs to a few ms on a LAN; the top buckets catch a reply timeout
/// (500 ms by default) and reconnects.
pub(crate) const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A recorder that renames each metric to its Prometheus name and passes it on.
struct Renamed<R> {
    inner: R,
    /// The unit each metric was described with, by its name as emitted.
    units: RwLock<HashMap<String, Unit>>,
}

impl<R> Renamed<R> {
    fn remember(&self, name: &KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            let mut units = self.units.write().unwrap_or_else(PoisonError::into_inner);
            units.entry(name.as_str().to_owned()).or_insert(unit);
        }
    }

    fn name(&self, kind: Kind, name: &str) -> String {
        let unit = self
            .units
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        prometheus_name(kind, name, unit)
    }

    fn key(&self, kind: Kind, key: &Key) -> Key {
        Key::from_parts(
            self.name(kind, key.name()),
            key.labels().cloned().collect::<Vec<_>>(),
        )
    }
}

/// The Prometheus name of a metric (before the exporter's sanitizing, which turns any other
/// character not allowed into `_` too).
fn prometheus_name(kind: Kind, name: &str, unit: Option<Unit>) -> String {
    let mut out = name.replace('.', "_");
    let suffix = match unit {
        None | Some(Unit::Count) => None,
        Some(unit) => Some(unit.as_str()),
    };
    if let Some(suffix) = suffix {
        if !out.split('_').any(|word| word == suffix) {
            out.push('_');
            out.push_str(suffix);
        }
    }
    if matches!(kind, Kind::Counter) && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

impl<R: Recorder> Recorder for Renamed<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.remember(&key, unit);
        let name = self.name(Kind::Counter, key.as_str());
        self.inner.describe_counter(name.into(), unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.remember(&key, unit);
        let name = self.name(Kind::Gauge, key.as_str());
        self.inner.describe_gauge(name.into(), unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.remember(&key, unit);
        let name = self.name(Kind::Histogram, key.as_str());
        self.inner
            .describe_histogram(name.into(), unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner
            .register_counter(&self.key(Kind::Counter, key), metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner
            .register_gauge(&self.key(Kind::Gauge, key), metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner
            .register_histogram(&self.key(Kind::Histogram, key), metadata)
    }
}

/// Installs the renaming Prometheus recorder as the process's recorder and describes the
/// store's metrics to it (so their units are known before the first is recorded).
pub(crate) fn install() -> anyhow::Result<PrometheusHandle> {
    let duration = prometheus_name(
        Kind::Histogram,
        redis_sessions::metric::OPERATION_DURATION,
        Some(Unit::Seconds),
    );
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(duration), DURATION_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    let renamed = Renamed {
        inner: recorder,
        units: RwLock::new(HashMap::new()),
    };
    metrics::set_global_recorder(renamed).map_err(|e| anyhow::anyhow!("{e}"))?;
    redis_sessions::metric::describe();
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::{prometheus_name, Kind};
    use metrics::Unit;

    #[test]
    fn names_follow_the_opentelemetry_prometheus_conventions() {
        let name = |kind, name, unit| prometheus_name(kind, name, unit);
        assert_eq!(
            name(
                Kind::Histogram,
                "db.client.operation.duration",
                Some(Unit::Seconds)
            ),
            "db_client_operation_duration_seconds"
        );
        assert_eq!(
            name(Kind::Counter, "redis_sessions.loads", None),
            "redis_sessions_loads_total"
        );
        assert_eq!(
            name(
                Kind::Counter,
                "redis_sessions.bytes_read",
                Some(Unit::Bytes)
            ),
            "redis_sessions_bytes_read_total"
        );
        assert_eq!(
            name(Kind::Counter, "x.sent", Some(Unit::Bytes)),
            "x_sent_bytes_total"
        );
        assert_eq!(
            name(Kind::Counter, "x.calls", Some(Unit::Count)),
            "x_calls_total"
        );
        assert_eq!(
            name(Kind::Gauge, "redis_sessions.fail_fast.state", None),
            "redis_sessions_fail_fast_state"
        );
    }
}
