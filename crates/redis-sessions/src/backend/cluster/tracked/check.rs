//! The check of every primary's view, every [`CHECK_EVERY`].

use std::sync::{Arc, Weak};

use redis::{FromRedisValue, Value};

use super::{Tracked, CHECK_EVERY};
use crate::backend::cluster::ClusterBackend;
use crate::backend::redis::{map_error, RedisBackend};
use crate::backend::{BackendResult, TrackedConnection};

/// What a primary says of its view of the cluster: `CLUSTER INFO`'s `cluster_*` fields but
/// the statistics, and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct View {
    fields: Vec<String>,
    role: String,
}

impl View {
    fn healthy(&self) -> bool {
        self.fields.iter().any(|f| f == "cluster_state:ok") && self.role == "master"
    }
}

pub(super) async fn view_of(conn: &RedisBackend<TrackedConnection>) -> BackendResult<View> {
    let mut pipe = redis::pipe();
    pipe.cmd("CLUSTER").arg("INFO").cmd("ROLE");
    let (info, role): (String, Vec<Value>) = conn.pipeline(&pipe).await?;
    let mut fields: Vec<String> = info
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cluster_") && !l.starts_with("cluster_stats_"))
        .map(str::to_owned)
        .collect();
    fields.sort_unstable();
    let role = match role.first() {
        Some(v) => String::from_redis_value_ref(v).map_err(|e| map_error(e.into()))?,
        None => String::new(),
    };
    Ok(View { fields, role })
}

/// Checks the primaries every [`CHECK_EVERY`] (or at once when woken) for as long as the
/// backend lives.
pub(super) async fn check_loop(
    tracked: Weak<Tracked>,
    wake: Arc<tokio::sync::Notify>,
    topology: ClusterBackend,
) {
    loop {
        let woken = tokio::time::timeout(CHECK_EVERY, wake.notified())
            .await
            .is_ok();
        let Some(tracked) = tracked.upgrade() else {
            return;
        };
        tracked.check(&topology, woken).await;
    }
}

impl Tracked {
    /// One check of every primary's view; on a change, a primary that does not answer, is
    /// no longer a primary or reports a cluster state other than `ok` (or when `forced`), the
    /// caches are emptied and the slot map read again.
    pub(super) async fn check(&self, topology: &ClusterBackend, forced: bool) {
        let routes = self.routes();
        let mut changed = forced || routes.is_none();
        let mut unhealthy = false;
        for p in routes.iter().flat_map(|r| r.primaries.iter()) {
            match view_of(&p.conn).await {
                Ok(view) => {
                    unhealthy |= !view.healthy();
                    changed |= self.remember(&p.host, p.port, view);
                }
                Err(e) => {
                    tracing::debug!(host = %p.host, port = p.port, error = %e, "cluster check failed");
                    changed = true;
                }
            }
        }
        if changed || unhealthy {
            self.tracker.flush();
            match topology.refresh().await {
                Ok(shards) => {
                    if let Err(e) = self.apply(shards).await {
                        tracing::warn!(error = %e, "cannot connect to a cluster primary; cache off until it can");
                        self.set_routes(None);
                        self.tracker.flush();
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cluster topology unknown; cache off until known");
                    self.set_routes(None);
                    self.tracker.flush();
                }
            }
        }
    }
}
