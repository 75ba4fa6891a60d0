//! axum 0.8 stacks: tower-sessions 0.15 + our store, tower-sessions 0.14 +
//! tower-sessions-redis-store 0.16 (fred), tower-sessions 0.15 + its own `MemoryStore` (the
//! session layer without Redis), and no sessions at all (the ceiling).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::{Args, IDLE};

type Error = Box<dyn std::error::Error>;

/// The three handlers for one tower-sessions version (the `Session` API is the same in both).
macro_rules! handlers {
    ($module:ident, $ts:ident) => {
        mod $module {
            use axum::http::StatusCode;
            use $ts::Session;

            fn fail(e: impl std::fmt::Display) -> (StatusCode, String) {
                (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }

            pub async fn login(session: Session) -> Result<&'static str, (StatusCode, String)> {
                session
                    .insert("user_id", crate::USER_ID)
                    .await
                    .map_err(fail)?;
                session.insert("name", crate::NAME).await.map_err(fail)?;
                session.insert("roles", crate::ROLES).await.map_err(fail)?;
                session.insert("counter", 0u64).await.map_err(fail)?;
                Ok("ok")
            }

            pub async fn inc(session: Session) -> Result<String, (StatusCode, String)> {
                let Some(n) = session.get::<u64>("counter").await.map_err(fail)? else {
                    return Err((StatusCode::UNAUTHORIZED, "no session".into()));
                };
                session.insert("counter", n + 1).await.map_err(fail)?;
                Ok((n + 1).to_string())
            }

            pub async fn read(session: Session) -> Result<String, (StatusCode, String)> {
                match session.get::<u64>("counter").await.map_err(fail)? {
                    Some(n) => Ok(n.to_string()),
                    None => Err((StatusCode::UNAUTHORIZED, "no session".into())),
                }
            }

            /// `POST /set/{name}/{value}`: sets field `name` (`f0`..`f63`) to `value`.
            pub async fn set(
                session: Session,
                axum::extract::Path((name, value)): axum::extract::Path<(String, u64)>,
            ) -> Result<String, (StatusCode, String)> {
                if !crate::field_name_ok(&name) {
                    return Err((StatusCode::BAD_REQUEST, "field names are f0..f63".into()));
                }
                if session.get_value("counter").await.map_err(fail)?.is_none() {
                    return Err((StatusCode::UNAUTHORIZED, "no session".into()));
                }
                session.insert(&name, value).await.map_err(fail)?;
                Ok(value.to_string())
            }

            /// `GET /fields`: the session's fields `f0`..`f63` as a JSON object.
            pub async fn fields(
                session: Session,
            ) -> Result<axum::Json<serde_json::Map<String, serde_json::Value>>, (StatusCode, String)>
            {
                let mut out = serde_json::Map::new();
                for i in 0..crate::FIELDS {
                    let name = format!("f{i}");
                    if let Some(v) = session.get_value(&name).await.map_err(fail)? {
                        out.insert(name, v);
                    }
                }
                Ok(axum::Json(out))
            }
        }
    };
}

handlers!(ts015, tower_sessions);
handlers!(ts014, tower_sessions_014);

/// Runs the app on tokio's default multi-thread runtime (what `#[tokio::main]` builds).
pub fn main(args: Args) -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// The cached stacks' capacity: every session of the run fits.
/// The cached stacks' prefixes: five characters as `sess:`, and no other stack's.
pub const CACHED_PREFIX_AXUM: &str = "sesX:";
/// See [`CACHED_PREFIX_AXUM`].
pub const CACHED_PREFIX_ACTIX: &str = "sesY:";
pub const CACHE_ENTRIES: usize = 10_000;

fn ts015_routes() -> Router {
    Router::new()
        .route("/login", get(ts015::login))
        .route("/inc", get(ts015::inc))
        .route("/read", get(ts015::read))
        .route("/set/{name}/{value}", post(ts015::set))
        .route("/fields", get(ts015::fields))
}

async fn run(args: Args) -> Result<(), Error> {
    let app = match args.stack.as_str() {
        "axum-ours" | "axum-ours-sliding" | "axum-ours-indexed" | "axum-ours-merged" => {
            let backend = redis_sessions::RedisBackend::connect(&args.redis).await?;
            let mut builder = redis_sessions::RedisStore::builder(backend);
            if args.stack == "axum-ours-indexed" {
                // The per-user index on (`user_id`), otherwise `axum-ours`.
                builder = builder.index_by("user_id");
            }
            // Concurrent saves merged (`merge_concurrent_saves`), otherwise `axum-ours`.
            builder = builder.merge_concurrent_saves(args.stack == "axum-ours-merged");
            let mut layer_expiry = None;
            if args.stack == "axum-ours-sliding" {
                // As our README recommends: a browser-session cookie plus the store's idle
                // timeout, slid by GETEX on every load.
                builder = builder.idle_timeout(IDLE);
                layer_expiry = Some(tower_sessions::Expiry::OnSessionEnd);
            }
            let mut layer =
                tower_sessions::SessionManagerLayer::new(builder.build()).with_secure(false);
            if let Some(expiry) = layer_expiry {
                layer = layer.with_expiry(expiry);
            }
            ts015_routes().layer(layer)
        }
        "axum-ours-cached" => {
            // The sliding setup plus the client-side cache on a tracked connection. A prefix
            // of its own (as long as `sess:`, so sessions weigh the same): broadcast tracking
            // goes by key name in every database, and the other stacks share `sess:`.
            let backend = redis_sessions::RedisBackend::connect_tracked(&args.redis).await?;
            let store = redis_sessions::RedisStore::builder(backend)
                .prefix(CACHED_PREFIX_AXUM)
                .idle_timeout(IDLE)
                .cache(CACHE_ENTRIES)?
                .build();
            let layer = tower_sessions::SessionManagerLayer::new(store)
                .with_secure(false)
                .with_expiry(tower_sessions::Expiry::OnSessionEnd);
            ts015_routes().layer(layer)
        }
        "axum-memory" => {
            // The session layer alone: the same handlers and cookie settings as `axum-ours`,
            // on tower-sessions' in-process `MemoryStore` (no Redis, no I/O).
            let layer =
                tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                    .with_secure(false);
            ts015_routes().layer(layer)
        }
        "axum-tsrs" => {
            // As tower-sessions-redis-store's README: a fred pool of 6 connections.
            use tower_sessions_redis_store::fred::prelude::*;
            let config = Config::from_url(&args.redis)?;
            let pool = Pool::new(config, None, None, None, 6)?;
            let _conn = pool.connect();
            pool.wait_for_connect().await?;
            let store = tower_sessions_redis_store::RedisStore::new(pool);
            let layer = tower_sessions_014::SessionManagerLayer::new(store).with_secure(false);
            Router::new()
                .route("/login", get(ts014::login))
                .route("/inc", get(ts014::inc))
                .route("/read", get(ts014::read))
                .route("/set/{name}/{value}", post(ts014::set))
                .route("/fields", get(ts014::fields))
                .layer(layer)
        }
        "axum-none" => {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            Router::new()
                .route("/login", get(|| async { "ok" }))
                .route(
                    "/inc",
                    get(|| async { (COUNTER.fetch_add(1, Ordering::Relaxed) + 1).to_string() }),
                )
                .route(
                    "/read",
                    get(|| async { COUNTER.load(Ordering::Relaxed).to_string() }),
                )
        }
        other => return Err(format!("unknown stack {other}").into()),
    };
    let app = app.fallback(|| async { StatusCode::NOT_FOUND });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("{} listening on {}", args.stack, listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
