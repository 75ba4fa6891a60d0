//! Connecting: the tracked connection to each primary, and a new slot map put in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{ConnectionAddr, IntoConnectionInfo, ProtocolVersion};

use super::check::{check_loop, view_of};
use super::{Primary, Routes, Tracked};
use crate::backend::cluster::topology::Shard;
use crate::backend::cluster::{ClusterBackend, ClusterConfig};
use crate::backend::redis::{map_error, RedisBackend};
use crate::backend::{BackendResult, TrackedConnection};
use crate::cache::Tracker;
use crate::error::{BackendError, BackendErrorKind};
use crate::tls::{TlsConfig, TlsUrl};

/// How to connect to a primary: the first seed's user, password and TLS with the primary's
/// address, RESP3.
pub(super) struct Dialer {
    info: redis::ConnectionInfo,
    secure: bool,
    tls: TlsConfig,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl Dialer {
    pub(super) fn new<S: AsRef<str>>(seeds: &[S], config: &ClusterConfig) -> BackendResult<Dialer> {
        let seed = seeds.first().ok_or_else(|| {
            BackendError::new(BackendErrorKind::Other, "a cluster needs at least one seed")
        })?;
        let parsed = TlsUrl::parse(seed.as_ref(), &config.tls)?;
        let info = parsed
            .url
            .as_str()
            .into_connection_info()
            .map_err(map_error)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Ok(Dialer {
            info: info.set_redis_settings(settings),
            secure: parsed.secure,
            tls: parsed.config,
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
        })
    }

    fn tls(&self) -> TlsUrl {
        TlsUrl {
            url: String::new(),
            secure: self.secure,
            config: self.tls.clone(),
        }
    }

    /// A tracked connection to the primary at `host:port`, tracking on, feeding `tracker`.
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        tracker: &'a Arc<Tracker>,
    ) -> BoxFuture<'a, BackendResult<RedisBackend<TrackedConnection>>> {
        Box::pin(async move {
            let addr = match self.info.addr() {
                #[cfg(feature = "tls")]
                ConnectionAddr::TcpTls { insecure, .. } => ConnectionAddr::TcpTls {
                    host: host.to_owned(),
                    port,
                    insecure: *insecure,
                    tls_params: None,
                },
                _ => ConnectionAddr::Tcp(host.to_owned(), port),
            };
            let tls = self.tls();
            let client = tls.client(self.info.clone().set_addr(addr))?;
            let conn = TrackedConnection::connect_feeding(
                client,
                self.connect_timeout,
                self.response_timeout,
                0,
                Arc::clone(tracker),
            )
            .await
            .map_err(|e| {
                let tracking = redis::cmd("CLIENT").arg("TRACKING").to_owned();
                crate::backend::denied::note(tls.connect_error(e), &tracking)
            })?;
            Ok(RedisBackend::new(conn).with_response_timeout(self.response_timeout))
        })
    }
}

impl ClusterBackend {
    /// [`connect_with`](ClusterBackend::connect_with) for a store with a
    /// [client-side cache](crate::StoreBuilder::cache): besides the cluster connection, one
    /// RESP3 connection to each primary (the seeds' user, password and TLS) with
    /// `CLIENT TRACKING ON BCAST PREFIX ... NOLOOP` for the caches' key prefixes, all feeding
    /// one [`Tracker`]. The cache's reads and saves go to the key's primary on its tracked
    /// connection (routed by hash slot); every other command goes through the cluster
    /// connection, and the tracked connections hear of its changes as of any other client's.
    ///
    /// The caches are emptied on every topology change this backend sees: a tracked
    /// connection lost; a command of the cache refused by its primary (`MOVED`, `ASK`,
    /// `TRYAGAIN`, `CLUSTERDOWN`) or failing, which is then answered through the cluster
    /// connection and installs nothing; a slot map that differs when read again; and a check
    /// every second of each primary's `CLUSTER INFO` and `ROLE` that finds any change (or a
    /// primary that does not answer, or a cluster state other than `ok`). So a value cached
    /// before a failover is served at most about one second (plus a response timeout) after
    /// the old primary learned of it, lost its connection, or (cut off from the others)
    /// declared the cluster failed, which Redis does after `cluster-node-timeout`.
    /// [`health`](crate::RedisStore::health) is the fence: `PING` on every tracked
    /// connection, so once it returns `Ok` every invalidation each primary sent before it has
    /// been applied (on an error, the caches were emptied).
    ///
    /// The check runs on a Tokio task for as long as the backend lives.
    ///
    /// # Errors
    /// As [`connect_with`](ClusterBackend::connect_with); a primary refusing
    /// `CLIENT TRACKING` (Redis before 6, or an ACL user without `+client|tracking`), or the
    /// check's `CLUSTER INFO` or `ROLE` (`+cluster|info`, `+role`), is an error naming the
    /// command; and outside a Tokio runtime (the check could not run).
    pub async fn connect_tracked_with<S: AsRef<str>>(
        seeds: &[S],
        config: ClusterConfig,
    ) -> BackendResult<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            BackendError::new(
                BackendErrorKind::Other,
                "the client-side cache on Cluster needs a Tokio runtime (its topology check is a task)",
            )
        })?;
        let dialer = Dialer::new(seeds, &config)?;
        let mut backend = Self::connect_with(seeds, config).await?;
        let tracked = Arc::new(Tracked {
            tracker: Arc::new(Tracker::new()),
            dialer,
            routes: RwLock::new(None),
            seen: Mutex::new(HashMap::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
            checker: Mutex::new(None),
        });
        tracked.apply(backend.snapshot()).await?;
        // The first view of each primary, and the proof the user may ask for it.
        if let Some(routes) = tracked.routes() {
            for p in &routes.primaries {
                let view = view_of(&p.conn).await.map_err(|e| {
                    crate::backend::denied::note(e, redis::cmd("CLUSTER").arg("INFO"))
                })?;
                tracked.remember(&p.host, p.port, view);
            }
        }
        let topology = backend.clone();
        let task = check_loop(
            Arc::downgrade(&tracked),
            Arc::clone(&tracked.wake),
            topology,
        );
        let handle = runtime.spawn(task).abort_handle();
        if let Ok(mut checker) = tracked.checker.lock() {
            *checker = Some(handle);
        }
        backend.tracked = Some(tracked);
        Ok(backend)
    }
}

impl Tracked {
    /// Routes by `shards` from now on: connections to new primaries made first (tracking on),
    /// then the new map used, then the caches emptied. Nothing happens when the map is the
    /// one in use.
    pub(super) fn apply(&self, shards: Vec<Shard>) -> BoxFuture<'_, BackendResult<()>> {
        Box::pin(async move {
            let current = self.routes();
            if current.as_ref().is_some_and(|r| r.shards == shards) {
                return Ok(());
            }
            let mut primaries = Vec::with_capacity(shards.len());
            for shard in &shards {
                let kept = current
                    .iter()
                    .flat_map(|r| r.primaries.iter())
                    .find(|p| p.host == shard.host && p.port == shard.port);
                let conn = match kept {
                    Some(p) => p.conn.clone(),
                    None => {
                        self.dialer
                            .connect(&shard.host, shard.port, &self.tracker)
                            .await?
                    }
                };
                primaries.push(Primary {
                    host: shard.host.clone(),
                    port: shard.port,
                    conn,
                });
            }
            {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.retain(|(host, port), _| {
                    shards.iter().any(|s| s.host == *host && s.port == *port)
                });
            }
            tracing::info!(primaries = shards.len(), "cluster cache: slot map in use");
            self.set_routes(Some(Arc::new(Routes { shards, primaries })));
            self.tracker.flush();
            Ok(())
        })
    }
}
