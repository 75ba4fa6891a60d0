//! The axum + tower-sessions 0.15 app.

use std::future::Future;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use redis_sessions::{Backend, SessionId};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::devices::{self, Device};
use crate::fields;
use crate::site::{login_fields, Site};
use crate::{open_store, valid_user, Config, IncrementHook, Opened, COUNTER, USER};

/// Runs the axum demo on `listener` until `shutdown` completes.
///
/// # Errors
/// Redis cannot be reached at start, or the server fails.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match open_store(&config).await? {
        Opened::Redis(store, label) => {
            serve(listener, Site::new(store, label, &config), shutdown).await
        }
        Opened::Memory(store, label) => {
            serve(listener, Site::new(store, label, &config), shutdown).await
        }
    }
}

type App<B> = Site<B>;

async fn serve<B: Backend>(
    listener: tokio::net::TcpListener,
    app: App<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = app.store.clone();
    // Browser-session cookie; the server-side idle timeout (the store's) ends idle sessions, and
    // every read slides it in the same command (GETEX), so reads never rewrite the session.
    crate::ops::init_metrics();
    let sessions = SessionManagerLayer::new(crate::ops::save::Watched(store.clone()))
        .with_secure(false)
        .with_expiry(Expiry::OnSessionEnd);
    let app = Router::new()
        .route("/", get(home::<B>))
        .route("/login", post(login_form))
        .route("/increment", post(increment_form))
        .route("/logout", post(logout_form))
        .route("/sessions/revoke-others", post(revoke_others_form::<B>))
        .route("/sessions/{id}/revoke", post(revoke_form::<B>))
        .route("/api/login", post(api_login))
        .route("/api/increment", post(api_increment::<B>))
        .route("/api/me", get(api_me))
        .route("/api/logout", post(api_logout))
        .route("/api/sessions", get(api_sessions::<B>))
        .route("/api/sessions/revoke-others", post(api_revoke_others::<B>))
        .route("/api/sessions/{id}/revoke", post(api_revoke::<B>))
        .route("/api/fields", get(api_fields::<B>))
        .route("/api/fields/{name}", put(api_put_field::<B>))
        .layer(sessions)
        .layer(axum::middleware::from_fn(
            crate::ops::save::answer_save_failures,
        ))
        .with_state(app)
        .merge(crate::ops::axum_routes(store));
    tracing::info!("demo: open http://{}/", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

/// A session store failure: logged, answered with 503 (the session layer's own failed saves
/// get the same answer from `ops::save`).
fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "session store unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "session store unavailable, try again"})),
    )
        .into_response()
}

async fn current(session: &Session) -> Result<Option<(String, i64)>, Response> {
    let user: Option<String> = session.get(USER).await.map_err(unavailable)?;
    let counter: Option<i64> = session.get(COUNTER).await.map_err(unavailable)?;
    Ok(user.map(|u| (u, counter.unwrap_or(0))))
}

/// The request's user, or the 401 answer.
async fn user_of(session: &Session) -> Result<String, Response> {
    match current(session).await? {
        Some((user, _)) => Ok(user),
        None => Err(not_logged_in()),
    }
}

/// The id of the request's session, as the store knows it.
fn id_of(session: &Session) -> Option<SessionId> {
    SessionId::parse(&session.id()?.to_string()).ok()
}

fn not_logged_in() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "not logged in"})),
    )
        .into_response()
}

fn not_yours() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "no such session of yours"})),
    )
        .into_response()
}

fn device(headers: &HeaderMap, peer: SocketAddr) -> Device {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    Device::new(agent, Some(peer.ip()))
}

async fn log_in(session: &Session, user: &str, device: Device) -> Result<(), Response> {
    // A new id at login (OWASP: rotate on privilege change); the old session, if any, is deleted.
    session.cycle_id().await.map_err(unavailable)?;
    for (field, value) in login_fields(user, device) {
        session.insert(field, value).await.map_err(unavailable)?;
    }
    Ok(())
}

async fn increment(session: &Session) -> Result<Option<i64>, Response> {
    let Some((_, counter)) = current(session).await? else {
        return Ok(None);
    };
    let next = counter.saturating_add(1);
    session.insert(COUNTER, next).await.map_err(unavailable)?;
    Ok(Some(next))
}

async fn home<B: Backend>(State(app): State<App<B>>, session: Session) -> Response {
    let who = match current(&session).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    let who = who.as_ref().map(|(u, c)| (u.as_str(), *c));
    match app.home(who, id_of(&session).as_ref()).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

fn bad_user() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "user must be 1 to 64 characters"})),
    )
        .into_response()
}

async fn login_form(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<Login>,
) -> Response {
    let Some(user) = valid_user(&form.user) else {
        return bad_user();
    };
    match log_in(&session, &user, device(&headers, peer)).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(response) => response,
    }
}

async fn increment_form(session: Session) -> Response {
    match increment(&session).await {
        Err(response) => response,
        Ok(_) => Redirect::to("/").into_response(),
    }
}

async fn logout_form(session: Session) -> Response {
    match session.delete().await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => unavailable(e),
    }
}

async fn revoke_form<B: Backend>(
    State(app): State<App<B>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match api_revoke(State(app), session, Path(id)).await {
        r if r.status() == StatusCode::OK => Redirect::to("/").into_response(),
        r => r,
    }
}

async fn revoke_others_form<B: Backend>(State(app): State<App<B>>, session: Session) -> Response {
    match api_revoke_others(State(app), session).await {
        r if r.status() == StatusCode::OK => Redirect::to("/").into_response(),
        r => r,
    }
}

async fn api_login(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Json(body): Json<Login>,
) -> Response {
    let Some(user) = valid_user(&body.user) else {
        return bad_user();
    };
    match log_in(&session, &user, device(&headers, peer)).await {
        Ok(()) => Json(json!({"user": user, "counter": 0})).into_response(),
        Err(response) => response,
    }
}

async fn api_increment<B: Backend>(State(app): State<App<B>>, session: Session) -> Response {
    match increment(&session).await {
        Ok(Some(counter)) => {
            IncrementHook::run(app.hook.as_ref()).await;
            Json(json!({"counter": counter})).into_response()
        }
        Ok(None) => not_logged_in(),
        Err(response) => response,
    }
}

async fn api_me(session: Session) -> Response {
    match current(&session).await {
        Ok(Some((user, counter))) => {
            Json(json!({"user": user, "counter": counter})).into_response()
        }
        Ok(None) => not_logged_in(),
        Err(response) => response,
    }
}

async fn api_logout(session: Session) -> Response {
    match session.delete().await {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn api_sessions<B: Backend>(State(app): State<App<B>>, session: Session) -> Response {
    let user = match user_of(&session).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match app.sessions_json(&user, id_of(&session).as_ref()).await {
        Ok(body) => Json(body).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn api_revoke_others<B: Backend>(State(app): State<App<B>>, session: Session) -> Response {
    let user = match user_of(&session).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match devices::revoke_others(&app.store, &user, id_of(&session).as_ref()).await {
        Ok(n) => Json(json!({"revoked": n})).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn api_revoke<B: Backend>(
    State(app): State<App<B>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let user = match user_of(&session).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match devices::revoke(&app.store, &user, &id).await {
        Ok(true) => Json(json!({"ok": true})).into_response(),
        Ok(false) => not_yours(),
        Err(e) => unavailable(e),
    }
}

async fn api_put_field<B: Backend>(
    State(app): State<App<B>>,
    session: Session,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = user_of(&session).await {
        return response;
    }
    let value = match fields::parse(&name, &body) {
        Ok(value) => value,
        Err(refusal) => {
            let (status, message) = refusal.answer();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return (status, Json(json!({"error": message}))).into_response();
        }
    };
    match session.insert_value(&name, value.clone()).await {
        Ok(_) => {
            IncrementHook::run(app.field_hook.as_ref()).await;
            Json(json!({"field": name, "value": value})).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// The stored session's fields, read by the store's adapter read path (one round trip, sliding
/// the idle timeout as a load through the layer would): tower-sessions' `Session` cannot list
/// its fields.
async fn api_fields<B: Backend>(State(app): State<App<B>>, session: Session) -> Response {
    let Some(id) = id_of(&session) else {
        return not_logged_in();
    };
    match app.store.load(&id).await {
        Ok(Some(stored)) if stored.get_value(USER).is_some() => {
            Json(Value::Object(stored.into_data())).into_response()
        }
        Ok(_) => not_logged_in(),
        Err(e) => unavailable(e),
    }
}
