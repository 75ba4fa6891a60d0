//! The HTTP suite, written once and run against the axum demo and the actix example, each on a
//! real redis-server and bound to port 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

/// One module of test functions for one app on one topology: each `$case(kind, topology)` of
/// the module that invokes it becomes a test.
macro_rules! app_suite {
    ($module:ident, $kind:ident, $topology:ident: $($case:ident),* $(,)?) => {
        mod $module {
            use crate::servers::{Kind, Topology};
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(Kind::$kind, Topology::$topology).await; })*
        }
    };
}

mod browser;
mod cache;
mod client;
mod fields;
mod ops;
mod servers;
mod suite;
mod users;
mod webdriver;
