//! The operations side, on both apps: `/metrics` with the README's Prometheus names,
//! `/healthz` through an outage, and a 503 JSON answer when the session layer's own load or
//! save fails because Redis is down.

use serde_json::json;

use crate::client::{Client, Response};
use crate::servers::{start, Kind, Topology};

const IDLE_TIMEOUT_S: u64 = 600;

/// The README, whose metrics table lists the Prometheus names.
const README: &str = include_str!("../../../README.md");

async fn log_in(client: &mut Client, user: &str) {
    let r = client.post("/api/login", Some(json!({"user": user}))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn assert_unavailable(r: &Response) {
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"error": "session store unavailable, try again"}),
        "{r:?}"
    );
}

/// The sample lines of `name` (exactly that name) whose labels include `labels`.
fn samples<'a>(text: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            let sample = l.split([' ', '{']).next() == Some(name);
            sample && labels.iter().all(|label| l.contains(label))
        })
        .collect()
}

pub async fn metrics_has_the_documented_prometheus_names(kind: Kind, topology: Topology) {
    let app = start(kind, topology, IDLE_TIMEOUT_S).await;
    let (mut phone, mut laptop) = (Client::new(app.addr), Client::new(app.addr));
    log_in(&mut phone, "ada").await;
    log_in(&mut laptop, "ada").await;
    assert_eq!(phone.post("/api/increment", None).await.status, 200);
    assert_eq!(phone.get("/api/me").await.status, 200);
    let r = phone.post("/api/sessions/revoke-others", None).await;
    assert_eq!(r.json(), json!({"revoked": 1}), "{r:?}");

    let r = phone.get("/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.body.as_str();
    // The duration is a histogram in seconds, with buckets from 100 µs to 2.5 s.
    let duration = "db_client_operation_duration_seconds";
    assert!(
        text.contains(&format!("# TYPE {duration} histogram\n")),
        "{text}"
    );
    let bucket = format!("{duration}_bucket");
    for le in ["0.0001", "0.001", "2.5", "+Inf"] {
        let load = ["db_operation_name=\"load\"", "outcome=\"hit\""];
        let le = format!("le=\"{le}\"");
        let lines = samples(text, &bucket, &[load[0], load[1], &le]);
        assert_eq!(lines.len(), 1, "{bucket} {le}: {text}");
    }
    for part in ["sum", "count"] {
        let name = format!("{duration}_{part}");
        assert!(!samples(text, &name, &[]).is_empty(), "{name}: {text}");
    }
    assert!(!text.contains("quantile="), "no summaries: {text}");
    // Counters end in `_total`, with the labels the table names.
    for (counter, label) in [
        ("redis_sessions_loads_total", "result=\"hit\""),
        ("redis_sessions_saves_total", "outcome=\"written\""),
        ("redis_sessions_revocations_total", "reason=\"revoke_all\""),
        ("redis_sessions_bytes_read_total", ""),
        ("redis_sessions_bytes_written_total", ""),
    ] {
        assert!(
            text.contains(&format!("# TYPE {counter} counter\n")),
            "{counter}: {text}"
        );
        let counted = samples(text, counter, &[label]).into_iter().any(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v >= 1.0)
        });
        assert!(counted, "{counter}{{{label}}}: {text}");
    }
    // Every metric /metrics prints is in the README's table under that name.
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = line.split(' ').next().unwrap_or_default();
        assert!(
            README.contains(&format!("`{name}`")),
            "{name} is not in the README's metrics table"
        );
    }
}

pub async fn healthz_says_why_redis_is_down_and_when_it_is_back(kind: Kind, topology: Topology) {
    let mut app = start(kind, topology, IDLE_TIMEOUT_S).await;
    let mut client = Client::new(app.addr);
    let healthy = json!({"redis": "ok", "fail_fast": "closed"});
    let r = client.get("/healthz").await;
    assert_eq!((r.status, r.json()), (200, healthy.clone()), "{r:?}");

    app.redis.server().stop();
    let r = client.get("/healthz").await;
    assert_eq!(r.status, 503, "{r:?}");
    let body = r.json();
    assert_eq!(body["redis"], "unavailable", "{r:?}");
    assert!(
        body["reason"].as_str().is_some_and(|s| !s.is_empty()),
        "{r:?}"
    );

    app.redis.server().restart();
    // `restart` waited for Redis to answer. At most one more check fails (it finds that the
    // store's reconnection begun while Redis was down failed, and begins a new one, which the
    // next check waits for).
    let mut r = client.get("/healthz").await;
    if r.status != 200 {
        assert_eq!(r.status, 503, "{r:?}");
        r = client.get("/healthz").await;
    }
    assert_eq!((r.status, r.json()), (200, healthy), "{r:?}");
}

pub async fn a_session_load_or_save_without_redis_is_a_503_json(kind: Kind, topology: Topology) {
    let mut app = start(kind, topology, IDLE_TIMEOUT_S).await;
    let mut ada = Client::new(app.addr);
    log_in(&mut ada, "ada").await;
    app.redis.server().stop();
    // A login without a cookie reads nothing: the handler answers 200, then the session
    // layer's save of the new session fails.
    let mut bob = Client::new(app.addr);
    let r = bob.post("/api/login", Some(json!({"user": "bob"}))).await;
    assert_unavailable(&r);
    assert!(r.set_cookie.is_none(), "{r:?}");
    // With a cookie, the session's load fails (actix-session: before the handler).
    assert_unavailable(&ada.post("/api/increment", None).await);
    assert_unavailable(&ada.get("/api/me").await);
}

app_suite!(axum, Axum, Standalone:
    metrics_has_the_documented_prometheus_names,
    healthz_says_why_redis_is_down_and_when_it_is_back,
    a_session_load_or_save_without_redis_is_a_503_json,
);

app_suite!(actix, Actix, Standalone:
    metrics_has_the_documented_prometheus_names,
    healthz_says_why_redis_is_down_and_when_it_is_back,
    a_session_load_or_save_without_redis_is_a_503_json,
);
