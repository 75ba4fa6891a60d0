//! Integration tests: one conformance suite run against every backend, plus Redis-only cases
//! (wrong types, outages, command counts) on real `redis-server` processes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[cfg(feature = "cluster")]
mod cluster_only;
mod conformance;
mod redis_only;
#[cfg(feature = "sentinel")]
mod sentinel_only;
mod support;
