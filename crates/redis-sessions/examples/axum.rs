//! axum + tower-sessions 0.15 on redis-sessions, with what a production app needs: a new
//! session id at login, 503 when the store is down, explicit cookie settings, and a `tracing`
//! subscriber so the store's warnings are seen.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p redis-sessions --example axum --features tower-sessions-015
//! cargo run -p redis-sessions --example axum --features tower-sessions-015   # in-memory backend
//!
//! curl -c jar -b jar http://127.0.0.1:3000/                   # not logged in
//! curl -c jar -b jar -d user=ada http://127.0.0.1:3000/login   # logged in as ada
//! curl -c jar -b jar http://127.0.0.1:3000/                   # ada, visit 1, 2, ...
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
//! ```
//!
//! `LISTEN` changes the address (default `127.0.0.1:3000`).

use std::time::Duration;

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use redis_sessions::{Backend, MemoryBackend, RedisStore, StoreBuilder};
use serde::Deserialize;
use tower_sessions::cookie::SameSite;
use tower_sessions::{session, session_store, Expiry, Session, SessionManagerLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    // The first line says where sessions live: in Redis, or in the in-memory backend.
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            println!(
                "sessions in Redis at {} (REDIS_URL)",
                redis_sessions::redact_url(&url)
            );
            let backend = redis_sessions::connect(&url).await?;
            init_tracing();
            serve(&addr, options(RedisStore::builder(backend))).await
        }
        Err(_) => {
            println!("sessions IN MEMORY (no REDIS_URL given): they vanish when the app exits");
            init_tracing();
            serve(&addr, options(RedisStore::builder(MemoryBackend::new()))).await
        }
    }
}

/// The store logs what it does not return as an error: a save that lost to a concurrent
/// logout (nothing is resurrected), a corrupt value that loads as no session. Without a
/// subscriber those warnings go nowhere.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_sessions=warn".into()),
        )
        .init();
}

/// The same options on either backend.
fn options<B: Backend>(builder: StoreBuilder<B>) -> RedisStore<B> {
    builder
        .prefix("example:sess:")
        // A session unused for 30 minutes ends; every read slides this in its one GETEX.
        .idle_timeout(Duration::from_secs(30 * 60))
        .build()
}

async fn serve<B: Backend>(
    addr: &str,
    store: RedisStore<B>,
) -> Result<(), Box<dyn std::error::Error>> {
    let sessions = SessionManagerLayer::new(store)
        // A browser-session cookie; the store's idle timeout ends idle sessions server-side.
        .with_expiry(Expiry::OnSessionEnd)
        // tower-sessions' defaults, spelled out: the cookie only travels over HTTPS (browsers
        // treat http://localhost as secure, so this works in development), scripts cannot read
        // it, and it is not sent on cross-site requests (`Lax` to keep it on links from other
        // sites).
        .with_secure(true)
        .with_http_only(true)
        .with_same_site(SameSite::Strict);
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(sessions);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("open http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// A failed session call: the store is down (Redis unreachable or too slow) is a 503 the
/// client may retry; a field that does not deserialize is a bug, a 500. tower-sessions loads
/// the session on the first `get`/`insert`, so a failed load surfaces here; a failed save
/// after the handler is tower-sessions' own empty 500.
fn session_error(e: session::Error) -> Response {
    tracing::error!(error = %e, "session call failed");
    match e {
        session::Error::Store(session_store::Error::Backend(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "session store unavailable, try again\n",
        )
            .into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn home(session: Session) -> Result<String, Response> {
    let Some(user) = session.get::<String>("user").await.map_err(session_error)? else {
        return Ok("not logged in: POST /login with user=NAME\n".into());
    };
    let visits: u64 = session
        .get("visits")
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    session
        .insert("visits", visits + 1)
        .await
        .map_err(session_error)?;
    Ok(format!("{user}, visit {}\n", visits + 1))
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session, Form(form): Form<Login>) -> Result<String, Response> {
    // Check the password here. Then a new session id: an id planted before login (session
    // fixation) must not become a logged-in session. The old session is deleted.
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert("user", &form.user)
        .await
        .map_err(session_error)?;
    Ok(format!("logged in as {}\n", form.user))
}

async fn logout(session: Session) -> Result<&'static str, Response> {
    // Deletes the session in the store and clears the cookie.
    session.flush().await.map_err(session_error)?;
    Ok("logged out\n")
}
