//! Operations endpoints, for both apps: `/healthz` (one `PING` through the store, with the
//! fail-fast state), `/metrics` (Prometheus text of the store's metrics, through
//! `metrics-exporter-prometheus` installed as the process's recorder, without an HTTP listener
//! of its own, with OpenTelemetry's Prometheus names: [`prometheus`]), and ([`save`]) the 503
//! JSON answer of a request whose session save failed.

mod prometheus;
pub(crate) mod save;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use redis_sessions::{Backend, FailFastState, RedisStore};
use serde_json::{json, Value};

/// The process's Prometheus recorder, installed by the first app started; `None` when another
/// recorder was installed first (then `/metrics` says so).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match prometheus::install() {
            Ok(handle) => {
                // Histograms are drained into their buckets by upkeep; without it their
                // samples pile up until the next scrape.
                let upkeep = handle.clone();
                std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    })
                    .ok()?;
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Prometheus recorder: /metrics is empty");
                None
            }
        })
        .as_ref()
}

/// Installs the recorder (at start, so the first requests are counted).
pub(crate) fn init_metrics() {
    let _ = handle();
}

/// The `/metrics` body.
pub(crate) fn metrics_text() -> String {
    handle().map_or_else(
        || "# no Prometheus recorder installed\n".to_owned(),
        PrometheusHandle::render,
    )
}

fn state_name(state: Option<FailFastState>) -> &'static str {
    match state {
        None => "disabled",
        Some(FailFastState::Closed) => "closed",
        Some(FailFastState::Open) => "open",
        Some(FailFastState::Probing) => "probing",
        Some(_) => "unknown",
    }
}

/// `/healthz`: `Ok` with `{"redis":"ok","fail_fast":"closed"}`, or `Err` (answer 503) with
/// the reason, e.g. `{"redis":"unavailable","reason":"redis timed out: ...","fail_fast":"open"}`.
pub(crate) async fn health<B: Backend>(store: &RedisStore<B>) -> Result<Value, Value> {
    let result = store.health().await;
    let fail_fast = state_name(store.fail_fast_state());
    match result {
        Ok(()) => Ok(json!({"redis": "ok", "fail_fast": fail_fast})),
        Err(e) => {
            let redis = if e.is_unavailable() {
                "unavailable"
            } else {
                "error"
            };
            Err(json!({"redis": redis, "reason": e.to_string(), "fail_fast": fail_fast}))
        }
    }
}

/// The body of a 503 for a request that failed because the session store is unavailable.
pub(crate) fn unavailable_body() -> Value {
    json!({"error": "session store unavailable, try again"})
}

/// `/healthz` and `/metrics` for the axum app (merged outside the session layer: they never
/// create a session).
pub(crate) fn axum_routes<B: Backend>(store: RedisStore<B>) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/healthz",
            get(
                |axum::extract::State(store): axum::extract::State<RedisStore<B>>| async move {
                    match health(&store).await {
                        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
                        Err(body) => {
                            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
                        }
                    }
                },
            ),
        )
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics_text(),
                )
            }),
        )
        .with_state(store)
}

/// `/healthz` and `/metrics` for the actix app.
pub(crate) fn actix_routes<B: Backend + Clone>(
    store: RedisStore<B>,
) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    use actix_web::{web, HttpResponse};
    move |config| {
        config
            .app_data(web::Data::new(store))
            .route(
                "/healthz",
                web::get().to(|store: web::Data<RedisStore<B>>| async move {
                    match health(store.get_ref()).await {
                        Ok(body) => HttpResponse::Ok().json(body),
                        Err(body) => HttpResponse::ServiceUnavailable().json(body),
                    }
                }),
            )
            .route(
                "/metrics",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4")
                        .body(metrics_text())
                }),
            );
    }
}
