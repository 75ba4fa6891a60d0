//! actix-web + actix-session 0.11 on redis-sessions, with what a production app needs: a new
//! session id at login, 503 when the store is down, explicit cookie settings, and a `tracing`
//! subscriber so the store's warnings are seen.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p redis-sessions --example actix --features actix
//! cargo run -p redis-sessions --example actix --features actix   # in-memory backend
//!
//! curl -c jar -b jar http://127.0.0.1:8080/                   # not logged in
//! curl -c jar -b jar -d user=ada http://127.0.0.1:8080/login   # logged in as ada
//! curl -c jar -b jar http://127.0.0.1:8080/                   # ada, visit 1, 2, ...
//! curl -c jar -b jar -X POST http://127.0.0.1:8080/logout
//! ```
//!
//! `LISTEN` changes the address (default `127.0.0.1:8080`).

use std::time::Duration;

use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Service as _;
use actix_web::error::InternalError;
use actix_web::{web, App, HttpResponse, HttpServer};
use redis_sessions::{Backend, MemoryBackend, RedisStore, StoreBuilder};
use serde::Deserialize;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
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
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// The same options on either backend.
fn options<B: Backend>(builder: StoreBuilder<B>) -> RedisStore<B> {
    builder
        .prefix("example:sess:")
        // A session unused for 30 minutes ends; every request slides this in its one GETEX.
        .idle_timeout(Duration::from_secs(30 * 60))
        .build()
}

async fn serve<B: Backend + Clone>(
    addr: &str,
    store: RedisStore<B>,
) -> Result<(), Box<dyn std::error::Error>> {
    // Signs and encrypts the session cookie. A new key per start logs everyone out on restart:
    // load a persistent 64-byte key in production (`Key::from(&bytes)`).
    let key = Key::generate();
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(store.clone(), key.clone())
            // A browser-session cookie; the store's idle timeout ends idle sessions and every
            // request already slides it, so the TTL is extended on state changes only (the
            // default): `OnEveryRequest` would add a PEXPIRE per request and extend nothing.
            .session_lifecycle(
                BrowserSession::default()
                    .state_ttl(time::Duration::hours(12))
                    .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
            )
            // actix-session's defaults, spelled out: the cookie only travels over HTTPS
            // (browsers treat http://localhost as secure, so this works in development),
            // scripts cannot read it, and cross-site requests other than top-level links do
            // not carry it.
            .cookie_secure(true)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .build();
        App::new()
            .wrap(sessions)
            // Outermost: sees the session middleware's errors.
            .wrap_fn(|req, srv| {
                let response = srv.call(req);
                async move { response.await.map_err(store_down_is_503) }
            })
            .route("/", web::get().to(home))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
    })
    .bind(addr)?;
    for addr in server.addrs() {
        tracing::info!("open http://{addr}/");
    }
    server.run().await?;
    Ok(())
}

/// actix-session answers a failed load of the session (the store is down: Redis unreachable
/// or too slow) with an empty 500 before the handler runs; that error is an
/// `InternalError<anyhow::Error>` (the store has logged its cause). Answer 503 instead, which
/// tells clients and load balancers to retry. A failed save stays a 500: it may be a session
/// over the size cap, which no retry fixes.
fn store_down_is_503(e: actix_web::Error) -> actix_web::Error {
    if e.as_error::<InternalError<anyhow::Error>>().is_none() {
        return e;
    }
    InternalError::from_response(
        "session store unavailable",
        HttpResponse::ServiceUnavailable().body("session store unavailable, try again\n"),
    )
    .into()
}

async fn home(session: Session) -> actix_web::Result<String> {
    let Some(user) = session.get::<String>("user")? else {
        return Ok("not logged in: POST /login with user=NAME\n".into());
    };
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(format!("{user}, visit {visits}\n"))
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session, form: web::Form<Login>) -> actix_web::Result<String> {
    // Check the password here. Then a new session id: an id planted before login (session
    // fixation) must not become a logged-in session. The old session is deleted.
    session.renew();
    session.insert("user", &form.user)?;
    Ok(format!("logged in as {}\n", form.user))
}

async fn logout(session: Session) -> &'static str {
    // Deletes the session in the store and clears the cookie.
    session.purge();
    "logged out\n"
}
