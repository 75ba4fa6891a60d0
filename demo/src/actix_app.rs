//! The same JSON API on actix-web + actix-session 0.11, on our store.

use std::future::Future;

use actix_session::{Session, SessionGetError, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpResponse, HttpServer};
use redis_sessions::{Backend, RedisStore};
use serde::Deserialize;
use serde_json::json;

use crate::{open_store, valid_user, Config, IncrementHook, Opened, COUNTER, USER};

/// Runs the actix-web demo on `listener` until `shutdown` completes. Call it inside an actix
/// system (`actix_web::rt::System::new().block_on(..)` or `#[actix_web::main]`).
///
/// # Errors
/// Redis cannot be reached at start, or the server fails.
pub async fn run_actix(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    let hook = web::Data::new(config.increment_hook.clone());
    match open_store(&config).await? {
        Opened::Redis(store, _) => serve(listener, store, hook, shutdown).await,
        Opened::Memory(store, _) => serve(listener, store, hook, shutdown).await,
    }
}

async fn serve<B: Backend + Clone>(
    listener: std::net::TcpListener,
    store: RedisStore<B>,
    hook: web::Data<Option<IncrementHook>>,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    // Signs and encrypts the cookie holding the session id; a new key per start is fine for a
    // demo (it logs everyone out on restart).
    let key = Key::generate();
    tracing::info!(
        "demo-actix: JSON API on http://{}/api/",
        listener.local_addr()?
    );
    crate::ops::init_metrics();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(hook.clone())
            .configure(crate::ops::actix_routes(store.clone()))
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .route("/api/login", web::post().to(login))
            .route("/api/increment", web::post().to(increment))
            .route("/api/me", web::get().to(me))
            .route("/api/logout", web::post().to(logout))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "session store unavailable");
    HttpResponse::ServiceUnavailable()
        .json(json!({"error": "session store unavailable, try again"}))
}

fn not_logged_in() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({"error": "not logged in"}))
}

fn current(session: &Session) -> Result<Option<(String, i64)>, SessionGetError> {
    let user: Option<String> = session.get(USER)?;
    let counter: Option<i64> = session.get(COUNTER)?;
    Ok(user.map(|u| (u, counter.unwrap_or(0))))
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session, body: web::Json<Login>) -> HttpResponse {
    let Some(user) = valid_user(&body.user) else {
        return HttpResponse::BadRequest()
            .json(json!({"error": "user must be 1 to 64 characters"}));
    };
    // A new id at login (OWASP: rotate on privilege change).
    session.renew();
    if let Err(e) = session
        .insert(USER, &user)
        .and_then(|()| session.insert(COUNTER, 0))
    {
        return unavailable(e);
    }
    HttpResponse::Ok().json(json!({"user": user, "counter": 0}))
}

async fn increment(session: Session, hook: web::Data<Option<IncrementHook>>) -> HttpResponse {
    match current(&session) {
        Ok(Some((_, counter))) => {
            let next = counter.saturating_add(1);
            match session.insert(COUNTER, next) {
                Ok(()) => {
                    IncrementHook::run(hook.as_ref().as_ref()).await;
                    HttpResponse::Ok().json(json!({"counter": next}))
                }
                Err(e) => unavailable(e),
            }
        }
        Ok(None) => not_logged_in(),
        Err(e) => unavailable(e),
    }
}

async fn me(session: Session) -> HttpResponse {
    match current(&session) {
        Ok(Some((user, counter))) => {
            HttpResponse::Ok().json(json!({"user": user, "counter": counter}))
        }
        Ok(None) => not_logged_in(),
        Err(e) => unavailable(e),
    }
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().json(json!({"ok": true}))
}
