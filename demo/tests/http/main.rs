//! The HTTP suite, written once and run against the axum demo and the actix example, each on a
//! real redis-server and bound to port 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod browser;
mod client;
mod servers;
mod suite;
mod users;
mod webdriver;
