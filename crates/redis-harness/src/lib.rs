//! Test support: real `redis-server` processes on free loopback ports, each in its own temporary
//! directory with persistence off, killed and cleaned up on drop.
//!
//! A missing `redis-server` is an error whose message says how to install it; tests call
//! [`RedisServer::start`], which panics with that message, so a test never passes quietly without
//! Redis.

#![forbid(unsafe_code)]
#![allow(
    clippy::panic,
    reason = "test support: a fixture that cannot start must fail the test loudly"
)]

mod acl;
mod cluster;
mod pause;
mod resp;
mod sentinel;
mod server;
mod tls;

pub use acl::{rejected_calls, setuser_args, AclLines};
pub use cluster::{ClusterNode, RedisCluster};
pub use resp::{Connection, Reply};
pub use sentinel::RedisSentinelGroup;
pub use server::{parse_command_calls, HarnessError, RedisServer, TlsMode};
pub use tls::TlsCerts;
