//! The client-side cache on Cluster ([`ClusterBackend::connect_tracked_with`]): a
//! [`TrackedConnection`] to every primary, all feeding one [`Tracker`], the slot map that
//! routes the cache's reads and writes to them, and the check that empties the caches when
//! the topology changes.
//!
//! Why it is as safe as on one server: a cached value was read (or written) on the tracked
//! connection of the primary that served its slot at that moment, and that connection reports
//! every later change of the key on that primary before any later reply on it. A value can go
//! stale only when its slot leaves that primary (a failover, a resharding) or the connection
//! is lost; each of those empties the caches:
//!
//! - a lost connection: [`TrackedConnection`] empties them itself;
//! - a read or write routed to a primary that no longer serves the slot (`MOVED`, `ASK`,
//!   `TRYAGAIN`, `CLUSTERDOWN`, or any failure of the connection): the caches are emptied
//!   *before* the command is answered through redis-rs's cluster connection (so the read in
//!   flight installs nothing: its ticket is from before the flush), and the slot map is read
//!   again at once;
//! - a check every [`CHECK_EVERY`] on each primary's tracked connection (`CLUSTER INFO`'s
//!   `cluster_*` fields but the statistics, and `ROLE`): any change of a primary's view
//!   (epochs, state, slot counts, known nodes, its role), or a primary that does not answer,
//!   empties the caches and reads the slot map again; a primary reporting a state other than
//!   `ok` empties them at every check while it lasts;
//! - a slot map that differs from the last one: the connections to new primaries are made
//!   (tracking on) *before* the new map is used, and the caches are emptied after.
//!
//! Slot migration (resharding) needs nothing more: `MIGRATE` deletes each key on the source,
//! which reports it on our connection there; reads of a migrating or migrated key get `ASK` or
//! `MOVED` from the source, install nothing, and the map is read again.
//!
//! - `mod.rs`: the slot map, and the cache's commands routed by it;
//! - `connect.rs`: connecting (the connection to each primary) and using a new slot map;
//! - `check.rs`: the check of every primary's view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redis::cluster_async::ClusterConnection;

use super::topology::{slot_of, Shard};
use crate::backend::redis::RedisBackend;
use crate::backend::{Backend, BackendResult, KeyTtl, SetMode, TrackedConnection};
use crate::cache::Tracker;
use crate::error::{BackendError, BackendErrorKind};

mod check;
mod connect;

use self::check::View;
use self::connect::Dialer;

/// How often each primary's view is checked (see the module docs): the longest a failover
/// that leaves the old primary's connection open goes unnoticed once that primary knows of
/// it, plus one response timeout.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A primary and the tracked connection to it.
struct Primary {
    host: String,
    port: u16,
    conn: RedisBackend<TrackedConnection>,
}

/// The slot map the cache's commands are routed by.
struct Routes {
    shards: Vec<Shard>,
    /// One per shard, in the same order.
    primaries: Vec<Primary>,
}

impl Routes {
    fn primary_for(&self, key: &str) -> Option<&RedisBackend<TrackedConnection>> {
        let slot = slot_of(key);
        let i = self.shards.iter().position(|s| s.serves(slot))?;
        self.primaries.get(i).map(|p| &p.conn)
    }
}

/// The tracked part of a [`ClusterBackend`] made by
/// [`connect_tracked_with`](ClusterBackend::connect_tracked_with).
pub(super) struct Tracked {
    pub(super) tracker: Arc<Tracker>,
    dialer: Dialer,
    /// `None` while the slot map is unknown (a refresh failed): the cache's commands then go
    /// through the cluster connection and empty the caches.
    routes: RwLock<Option<Arc<Routes>>>,
    /// The last view of each primary, by address.
    seen: Mutex<HashMap<(String, u16), View>>,
    /// Wakes the checker for a refresh now.
    wake: Arc<tokio::sync::Notify>,
    /// The checker task, stopped when the backend is dropped.
    checker: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let checker = match self.checker.get_mut() {
            Ok(c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(checker) = checker {
            checker.abort();
        }
    }
}

impl Tracked {
    fn routes(&self) -> Option<Arc<Routes>> {
        match self.routes.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_routes(&self, routes: Option<Arc<Routes>>) {
        match self.routes.write() {
            Ok(mut r) => *r = routes,
            Err(poisoned) => *poisoned.into_inner() = routes,
        }
    }

    /// Records a primary's view; `true` when it differs from the one seen before.
    fn remember(&self, host: &str, port: u16, view: View) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert((host.to_owned(), port), view.clone())
            .is_some_and(|before| before != view)
    }

    /// The caches may hold what a primary that no longer serves a slot reported: emptied,
    /// and the slot map read again soon.
    fn lost(&self) {
        self.tracker.flush();
        self.wake.notify_one();
    }

    /// The cache's read of `key` on the tracked connection of its primary; answered through
    /// the cluster connection `keys` (installing nothing) when that primary refuses it or
    /// fails, or the slot map is unknown.
    pub(super) async fn read(
        &self,
        keys: &RedisBackend<ClusterConnection>,
        key: &str,
        refresh: Option<Duration>,
    ) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
        if let Some(routes) = self.routes() {
            if let Some(conn) = routes.primary_for(key) {
                match crate::backend::tracking::read(conn, key, refresh).await {
                    Err(e) if rerouted(&e) => {
                        tracing::debug!(error = %e, "tracked read refused; through the cluster connection");
                    }
                    done => return done,
                }
            }
        }
        self.lost();
        crate::store::retried("cluster");
        unrouted_read(keys, key, refresh).await
    }

    /// The cache's save of `key` on the tracked connection of its primary; sent through the
    /// cluster connection when that primary refused it without running it (`MOVED`, `ASK`,
    /// `TRYAGAIN`, `CLUSTERDOWN`) or the slot map is unknown. A failure that may have run it
    /// (a timeout, a lost connection) is returned, the caches emptied: a `SET NX` sent again
    /// would report the session as existing.
    pub(super) async fn set(
        &self,
        keys: &RedisBackend<ClusterConnection>,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        if let Some(routes) = self.routes() {
            if let Some(conn) = routes.primary_for(key) {
                match conn.set(key, value, ttl, mode).await {
                    Err(e) if refused(&e) => {
                        tracing::debug!(error = %e, "tracked save refused; through the cluster connection");
                    }
                    Err(e) => {
                        if rerouted(&e) {
                            self.lost();
                        }
                        return Err(e);
                    }
                    done => return done,
                }
            }
        }
        self.lost();
        crate::store::retried("cluster");
        keys.set(key, value, ttl, mode).await
    }

    /// The fence: `PING` on every tracked connection. On an error the caches are emptied.
    pub(super) async fn fence(&self, keys: &RedisBackend<ClusterConnection>) -> BackendResult<()> {
        let Some(routes) = self.routes() else {
            // Nothing is installed while the map is unknown.
            keys.pttl("redis-sessions:health").await?;
            return Ok(());
        };
        for p in &routes.primaries {
            if let Err(e) = p.conn.ping().await {
                self.lost();
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The cache's read through the cluster connection, as single commands (redis-rs follows
/// `MOVED` and `ASK` for those, not within a pipeline): `GETEX` or `GET`, then `PTTL`.
pub(super) async fn unrouted_read(
    keys: &RedisBackend<ClusterConnection>,
    key: &str,
    refresh: Option<Duration>,
) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
    let value = match refresh {
        Some(ttl) => keys.get_ex(key, ttl).await?,
        None => keys.get(key).await?,
    };
    match value {
        Some(value) => Ok(Some((value, keys.pttl(key).await?))),
        None => Ok(None),
    }
}

/// An error after which the cache's command goes through the cluster connection: anything
/// but a wrong type or a refusal by the ACL (which the cluster connection would give too).
fn rerouted(e: &BackendError) -> bool {
    !matches!(
        e.kind(),
        BackendErrorKind::WrongType | BackendErrorKind::PermissionDenied
    )
}

/// Whether the primary refused the command without running it: `MOVED`, `ASK`, `TRYAGAIN`,
/// `CLUSTERDOWN` (also `READONLY`: the node is a replica).
fn refused(e: &BackendError) -> bool {
    if e.kind() == BackendErrorKind::ReadOnly {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(redis) = s.downcast_ref::<redis::RedisError>() {
            return matches!(
                redis.code(),
                Some("MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN")
            );
        }
        source = s.source();
    }
    false
}
