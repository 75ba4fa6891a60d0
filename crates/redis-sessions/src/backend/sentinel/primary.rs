//! The connection to the primary in use: a plain multiplexed one, or one with client-side
//! tracking on for a store with a cache ([`SentinelBackend::connect_tracked_with`]).
//!
//! [`SentinelBackend::connect_tracked_with`]: super::SentinelBackend::connect_tracked_with

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::backend::TrackedConnection;

/// The connection a [`SentinelBackend`](super::SentinelBackend) sends every command on
/// ([`SentinelBackend::connection`](super::SentinelBackend::connection)): redis-rs's
/// multiplexed connection to the primary in use, with `CLIENT TRACKING` on when the backend
/// was made for a client-side cache. Clones share the connection.
#[derive(Clone)]
pub struct PrimaryConnection(Kind);

#[derive(Clone)]
enum Kind {
    Plain(MultiplexedConnection),
    Tracked(TrackedConnection),
}

impl std::fmt::Debug for PrimaryConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tracked = matches!(self.0, Kind::Tracked(_));
        f.debug_struct("PrimaryConnection")
            .field("tracked", &tracked)
            .finish_non_exhaustive()
    }
}

impl PrimaryConnection {
    pub(super) fn plain(conn: MultiplexedConnection) -> PrimaryConnection {
        PrimaryConnection(Kind::Plain(conn))
    }

    pub(super) fn tracked(conn: TrackedConnection) -> PrimaryConnection {
        PrimaryConnection(Kind::Tracked(conn))
    }

    /// redis-rs's handle on the connection (made again first if a tracked one was lost), for
    /// a command that needs its own response timeout (`WAIT`).
    pub(super) async fn multiplexed(&self) -> redis::RedisResult<MultiplexedConnection> {
        match &self.0 {
            Kind::Plain(conn) => Ok(conn.clone()),
            Kind::Tracked(conn) => conn.multiplexed().await,
        }
    }
}

impl ConnectionLike for PrimaryConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Kind::Plain(conn) => conn.req_packed_command(cmd),
            Kind::Tracked(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Kind::Plain(conn) => conn.req_packed_commands(pipeline, offset, count),
            Kind::Tracked(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Kind::Plain(conn) => conn.get_db(),
            Kind::Tracked(conn) => conn.get_db(),
        }
    }
}
