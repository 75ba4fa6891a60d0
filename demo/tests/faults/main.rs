//! The fault suite: the axum demo under HTTP load from the test itself while Redis fails, on
//! real servers. Each case is bounded (well under 20 s on a laptop): kill -9 with AOF and a
//! restart, a hung server (SIGSTOP/SIGCONT), a Sentinel failover, a Cluster primary killed.
//!
//! Timings (error window, recovery, latency of failing requests) are measured by
//! `scripts/faults.sh`, not asserted here: these cases assert only behaviour.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod cases;
mod load;
