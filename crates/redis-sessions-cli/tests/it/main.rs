//! Integration tests: the built `redis-sessions` binary against real `redis-server` processes,
//! one server per test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod acl;
mod commands;
mod doctor;
mod errors;
mod prefixes;
mod security;
mod support;
mod tls;
mod topologies;
mod transfer;
mod users;
