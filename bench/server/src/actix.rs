//! actix-web 4 stacks: actix-session 0.11 + our store, actix-session's own
//! `RedisSessionStore`, actix-session's `CookieSessionStore` (the session middleware without
//! Redis: the state travels in the private cookie), and no sessions at all (the ceiling).

use std::sync::atomic::{AtomicU64, Ordering};

use actix_session::storage::SessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::{Args, IDLE, NAME, ROLES, USER_ID};

type Error = Box<dyn std::error::Error>;

fn fail(e: impl std::fmt::Display) -> actix_web::Error {
    actix_web::error::ErrorInternalServerError(e.to_string())
}

async fn login(session: Session) -> actix_web::Result<HttpResponse> {
    session.insert("user_id", USER_ID).map_err(fail)?;
    session.insert("name", NAME).map_err(fail)?;
    session.insert("roles", ROLES).map_err(fail)?;
    session.insert("counter", 0u64).map_err(fail)?;
    Ok(HttpResponse::Ok().body("ok"))
}

async fn inc(session: Session) -> actix_web::Result<HttpResponse> {
    let Some(n) = session.get::<u64>("counter").map_err(fail)? else {
        return Ok(HttpResponse::Unauthorized().body("no session"));
    };
    session.insert("counter", n + 1).map_err(fail)?;
    Ok(HttpResponse::Ok().body((n + 1).to_string()))
}

async fn read(session: Session) -> actix_web::Result<HttpResponse> {
    Ok(match session.get::<u64>("counter").map_err(fail)? {
        Some(n) => HttpResponse::Ok().body(n.to_string()),
        None => HttpResponse::Unauthorized().body("no session"),
    })
}

/// `POST /set/{name}/{value}`: sets field `name` (`f0`..`f63`) to `value`.
async fn set(session: Session, path: web::Path<(String, u64)>) -> actix_web::Result<HttpResponse> {
    let (name, value) = path.into_inner();
    if !crate::field_name_ok(&name) {
        return Ok(HttpResponse::BadRequest().body("field names are f0..f63"));
    }
    if session
        .get::<serde_json::Value>("counter")
        .map_err(fail)?
        .is_none()
    {
        return Ok(HttpResponse::Unauthorized().body("no session"));
    }
    session.insert(name, value).map_err(fail)?;
    Ok(HttpResponse::Ok().body(value.to_string()))
}

/// `GET /fields`: the session's fields `f0`..`f63` as a JSON object.
async fn fields(session: Session) -> actix_web::Result<HttpResponse> {
    let mut out = serde_json::Map::new();
    for i in 0..crate::FIELDS {
        let name = format!("f{i}");
        if let Some(v) = session.get::<serde_json::Value>(&name).map_err(fail)? {
            out.insert(name, v);
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

/// `store` builds each worker's store (`CookieSessionStore` is not `Clone`).
async fn serve<S, F>(args: &Args, store: F) -> Result<(), Error>
where
    S: SessionStore + 'static,
    F: Fn() -> S + Clone + Send + 'static,
{
    // As actix-session's README: `SessionMiddleware::new(store, key)` with its defaults.
    let key = Key::generate();
    eprintln!("{} listening on {}", args.stack, args.listen);
    HttpServer::new(move || {
        App::new()
            .wrap(SessionMiddleware::new(store(), key.clone()))
            .route("/login", web::get().to(login))
            .route("/inc", web::get().to(inc))
            .route("/read", web::get().to(read))
            .route("/set/{name}/{value}", web::post().to(set))
            .route("/fields", web::get().to(fields))
    })
    .bind(args.listen)?
    .run()
    .await?;
    Ok(())
}

/// Runs the app in an actix system (what `#[actix_web::main]` builds).
pub fn main(args: Args) -> Result<(), Error> {
    actix_web::rt::System::new().block_on(run(args))
}

async fn run(args: Args) -> Result<(), Error> {
    match args.stack.as_str() {
        "actix-ours" | "actix-ours-sliding" | "actix-ours-merged" => {
            let backend = redis_sessions::RedisBackend::connect(&args.redis).await?;
            // Concurrent saves merged (`merge_concurrent_saves`), otherwise `actix-ours`.
            let merged = args.stack == "actix-ours-merged";
            let mut builder =
                redis_sessions::RedisStore::builder(backend).merge_concurrent_saves(merged);
            if args.stack == "actix-ours-sliding" {
                builder = builder.idle_timeout(IDLE);
            }
            let store = builder.build();
            serve(&args, move || store.clone()).await
        }
        "actix-ours-cached" => {
            // The sliding setup plus the client-side cache on a tracked connection, under a
            // prefix of its own (see `CACHED_PREFIX_AXUM`).
            let backend = redis_sessions::RedisBackend::connect_tracked(&args.redis).await?;
            let store = redis_sessions::RedisStore::builder(backend)
                .prefix(crate::axum_app::CACHED_PREFIX_ACTIX)
                .idle_timeout(IDLE)
                .cache(crate::axum_app::CACHE_ENTRIES)?
                .build();
            serve(&args, move || store.clone()).await
        }
        "actix-redis" => {
            let store = actix_session::storage::RedisSessionStore::new(args.redis.clone())
                .await
                .map_err(|e| e.to_string())?;
            serve(&args, move || store.clone()).await
        }
        "actix-cookie" => {
            // The session middleware alone: the same handlers, key and cookie defaults as
            // `actix-ours`; the state is the (private, AES-GCM) cookie itself, no Redis.
            serve(&args, actix_session::storage::CookieSessionStore::default).await
        }
        "actix-none" => {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            eprintln!("{} listening on {}", args.stack, args.listen);
            HttpServer::new(|| {
                App::new()
                    .route("/login", web::get().to(|| async { "ok" }))
                    .route(
                        "/inc",
                        web::get().to(|| async {
                            (COUNTER.fetch_add(1, Ordering::Relaxed) + 1).to_string()
                        }),
                    )
                    .route(
                        "/read",
                        web::get().to(|| async { COUNTER.load(Ordering::Relaxed).to_string() }),
                    )
            })
            .bind(args.listen)?
            .run()
            .await?;
            Ok(())
        }
        other => Err(format!("unknown stack {other}").into()),
    }
}
