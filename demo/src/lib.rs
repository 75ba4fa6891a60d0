//! The redis-sessions demo: an axum + tower-sessions 0.15 web app on our store
//! ([`run`]), and the same page and JSON API on actix-web + actix-session ([`run_actix`]).
//!
//! Both bind whatever listener they are given, so tests use port 0, and stop when `shutdown`
//! completes. Without a Redis URL they run on the in-memory backend and say so.
//!
//! Sessions are indexed by their user (`index_by("user")`): the home page lists the user's
//! sessions ("Your sessions", `devices.rs`) and shows the current one as Redis holds it
//! (`holds.rs`); `site.rs` is what both framework files share, `page.rs` the HTML.

mod actix_app;
mod axum_app;
mod config;
mod devices;
mod fields;
mod holds;
mod ops;
mod page;
mod site;

use std::time::Duration;

use redis_sessions::{
    codec::DEFAULT_COMPRESS_ABOVE, AnyBackend, Backend, IdHashing, KeyRing, LimitPolicy,
    MemoryBackend, RedisStore,
};

pub use actix_app::run_actix;
pub use axum_app::run;
pub use config::{Config, IncrementHook};

/// Session fields the demo uses (the store indexes sessions by `USER`; the device facts
/// recorded at login are in `devices.rs`).
pub(crate) const USER: &str = "user";
pub(crate) const COUNTER: &str = "counter";

/// Longest user name accepted at login.
pub(crate) const MAX_USER_LEN: usize = 64;

/// A user name from a login form or JSON body: trimmed, 1 to 64 characters, no control
/// characters.
pub(crate) fn valid_user(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USER_LEN
        && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

/// Which backend the app runs on, for the page and the first log line.
#[derive(Clone, Debug)]
pub(crate) struct BackendLabel(pub(crate) String);

/// The store the app runs on, opened from the configuration.
pub(crate) enum Opened {
    /// `--redis-url` given.
    Redis(RedisStore<AnyBackend>, BackendLabel),
    /// No Redis URL: the embedded in-memory backend.
    Memory(RedisStore<MemoryBackend>, BackendLabel),
}

/// Opens the store for `config` and logs which backend it is as the first line.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Opened> {
    let idle = Duration::from_secs(config.idle_timeout);
    let keys = config.key_ring()?;
    if config.require_encryption && keys.is_none() {
        anyhow::bail!(
            "--require-encryption needs the session key ring (--keys-file or SESSION_KEYS)"
        );
    }
    let hashing = config.id_hashing()?;
    let security = format!(
        "id_hashing={hashing:?} encryption={keys:?} require_encryption={} max_session_size={} fail_fast={} merge_concurrent_saves={} cache={}",
        config.require_encryption, config.max_session_size, config.fail_fast, config.merge_concurrent_saves, config.cache
    );
    let opened = match &config.redis_url {
        Some(url) => {
            if config.tls_insecure {
                tracing::warn!("--tls-insecure: Redis's TLS certificate is not checked");
            }
            let tls = config.tls()?;
            let deployment = redis_sessions::Deployment::parse(url)?;
            let backend = match config.cache {
                0 => deployment.connect_with_tls(tls).await,
                _ => deployment.connect_tracked_with_tls(tls).await,
            }
            .map_err(|e| {
                anyhow::anyhow!("cannot connect to Redis at {}: {e}", config.redacted_url())
            })?;
            let cached = match config.cache {
                0 => String::new(),
                n => format!(", client-side cache of {n} sessions"),
            };
            let label = BackendLabel(format!(
                "{} at {}{cached}",
                topology(&backend),
                config.redacted_url()
            ));
            tracing::info!(backend = %label.0, prefix = %config.prefix, idle_timeout_s = config.idle_timeout, "session store: Redis");
            let store = store(backend, config, idle, hashing, keys)?;
            log_problems(&store).await;
            Opened::Redis(store, label)
        }
        None if config.cache > 0 => {
            anyhow::bail!("--cache (SESSION_CACHE) needs Redis: give --redis-url or REDIS_URL")
        }
        None => {
            tracing::warn!(
                "session store: IN-MEMORY backend (no --redis-url / REDIS_URL given): sessions vanish on restart"
            );
            let label = BackendLabel(
                "in-memory (no --redis-url / REDIS_URL given: sessions vanish on restart)".into(),
            );
            Opened::Memory(
                store(MemoryBackend::new(), config, idle, hashing, keys)?,
                label,
            )
        }
    };
    // After the backend line, which must come first.
    tracing::info!(%security, "session security at rest");
    Ok(opened)
}

/// Runs the library's deployment check (`redis-sessions doctor`) and logs each warning and
/// failure as one line; the app starts either way.
async fn log_problems<B: Backend>(store: &RedisStore<B>) {
    let diagnosis = store.check().await;
    for check in diagnosis.problems() {
        let server = check.server.as_deref().unwrap_or("-");
        let fix = check.fix.as_deref().unwrap_or("-");
        tracing::warn!(check = check.name, level = %check.level, server, fix, "redis check: {}", check.reason);
    }
}

/// What kind of deployment the URL named, for the page.
fn topology(backend: &AnyBackend) -> &'static str {
    match backend {
        AnyBackend::Cluster(_) => "Redis Cluster",
        AnyBackend::Sentinel(_) => "Redis Sentinel",
        _ => "Redis",
    }
}

fn store<B: Backend>(
    backend: B,
    config: &Config,
    idle: Duration,
    hashing: IdHashing,
    keys: Option<KeyRing>,
) -> anyhow::Result<RedisStore<B>> {
    let mut builder = RedisStore::builder(backend)
        .prefix(config.prefix.clone())
        .idle_timeout(idle)
        .compress_above(DEFAULT_COMPRESS_ABOVE)
        .max_value_size(config.max_session_size)
        .hash_ids(hashing)
        .index_by(USER)
        .merge_concurrent_saves(config.merge_concurrent_saves);
    if config.max_sessions_per_user > 0 {
        builder = builder.max_sessions_per_user(
            config.max_sessions_per_user,
            LimitPolicy::EndLeastRecentlyUsed,
        );
    }
    if let Some(absolute) = config.absolute_timeout {
        builder = builder.absolute_timeout(Duration::from_secs(absolute));
    }
    if !config.fail_fast {
        builder = builder.disable_fail_fast();
    }
    if let Some(keys) = keys {
        builder = builder
            .encrypt(keys)
            .require_encryption(config.require_encryption);
    }
    if config.cache > 0 {
        builder = builder.cache(config.cache)?;
    }
    Ok(builder.build())
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
