//! Integration tests: one conformance suite run against every backend, plus Redis-only cases
//! (wrong types, outages, command counts) on real `redis-server` processes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

/// The tests of a per-backend suite: for each case, a `#[tokio::test]` that starts a fresh
/// backend with `crate::support::$backend()`, keeps its servers alive for the test, and runs
/// the case (a function of the suite's module, the parent of the one the tests are in) on it.
macro_rules! backend_cases {
    ($backend:ident: $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (backend, _server) = crate::support::$backend().await;
                super::$case(backend).await;
            }
        )*
    };
}

mod absolute;
mod acl;
mod acl_denied;
#[cfg(all(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
mod adapters;
#[cfg(all(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
mod adapters_absolute;
#[cfg(all(feature = "encryption", feature = "compression", feature = "msgpack"))]
mod armored;
#[cfg(all(feature = "tower-sessions-015", feature = "actix"))]
mod bound;
#[cfg(feature = "redis")]
mod cache;
mod check;
#[cfg(feature = "cluster")]
mod cluster_cache;
#[cfg(feature = "cluster")]
mod cluster_only;
mod conformance;
mod durable;
mod fail_fast;
#[cfg(feature = "fuzzing")]
mod fuzz_corpus;
mod health;
mod hooked;
#[cfg(all(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix",
    feature = "encryption"
))]
mod merge;
#[cfg(feature = "metrics")]
mod metrics;
mod observe;
mod redis_only;
#[cfg(feature = "sentinel")]
mod sentinel_cache;
#[cfg(feature = "sentinel")]
mod sentinel_only;
mod support;
#[cfg(feature = "tls")]
mod tls_only;
mod users;
mod users_limit;
mod users_moved;
mod users_race;
mod users_redis;
mod versions;
