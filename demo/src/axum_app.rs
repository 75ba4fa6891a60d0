//! The axum + tower-sessions 0.15 app.

use std::future::Future;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis_sessions::{Backend, KeyTtl, RedisStore, SessionId};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::page::{self, Home};
use crate::{open_store, valid_user, BackendLabel, Config, IncrementHook, Opened, COUNTER, USER};

/// Runs the axum demo on `listener` until `shutdown` completes.
///
/// # Errors
/// Redis cannot be reached at start, or the server fails.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hook = config.increment_hook.clone();
    match open_store(&config).await? {
        Opened::Redis(store, label) => serve(listener, App { store, label, hook }, shutdown).await,
        Opened::Memory(store, label) => serve(listener, App { store, label, hook }, shutdown).await,
    }
}

struct App<B> {
    store: RedisStore<B>,
    label: BackendLabel,
    hook: Option<IncrementHook>,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        App {
            store: self.store.clone(),
            label: self.label.clone(),
            hook: self.hook.clone(),
        }
    }
}

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
        .route("/api/login", post(api_login))
        .route("/api/increment", post(api_increment::<B>))
        .route("/api/me", get(api_me))
        .route("/api/logout", post(api_logout))
        .layer(sessions)
        .layer(axum::middleware::from_fn(
            crate::ops::save::answer_save_failures,
        ))
        .with_state(app)
        .merge(crate::ops::axum_routes(store));
    tracing::info!("demo: open http://{}/", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// A session store failure: logged, answered with 503 (the session layer's own save failures
/// are its empty 500).
fn unavailable(e: tower_sessions::session::Error) -> Response {
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

fn not_logged_in() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "not logged in"})),
    )
        .into_response()
}

async fn log_in(session: &Session, user: String) -> Result<(), Response> {
    // A new id at login (OWASP: rotate on privilege change); the old session, if any, is deleted.
    session.cycle_id().await.map_err(unavailable)?;
    session.insert(USER, &user).await.map_err(unavailable)?;
    session.insert(COUNTER, 0).await.map_err(unavailable)?;
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
    let ttl = match session.id().map(|id| SessionId::parse(&id.to_string())) {
        Some(Ok(id)) => match app.store.ttl(&id).await {
            Ok(KeyTtl::Expires(ttl)) => Some(ttl),
            _ => None,
        },
        _ => None,
    };
    Html(page::render(&Home {
        user: who.as_ref().map(|(u, _)| u.as_str()),
        counter: who.as_ref().map_or(0, |(_, c)| *c),
        ttl,
        backend: &app.label.0,
    }))
    .into_response()
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

async fn login_form(session: Session, Form(form): Form<Login>) -> Response {
    let Some(user) = valid_user(&form.user) else {
        return bad_user();
    };
    match log_in(&session, user).await {
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

async fn api_login(session: Session, Json(body): Json<Login>) -> Response {
    let Some(user) = valid_user(&body.user) else {
        return bad_user();
    };
    match log_in(&session, user.clone()).await {
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
