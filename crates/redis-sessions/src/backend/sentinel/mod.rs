//! [`Backend`] on a Redis Sentinel group: finds the primary by name and follows it across
//! failovers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::{Cmd, FromRedisValue};

pub use self::primary::PrimaryConnection;
pub use self::resolve::SentinelConfig;
use self::resolve::{connect_primary, resolve};
use super::redis::map_error;
use super::{Backend, BackendResult, KeyTtl, ScanCursor, ScanPage, SetMode};
use crate::cache::Tracker;
use crate::error::{BackendError, BackendErrorKind};

mod primary;
mod resolve;
mod watch;

use self::watch::watch;

/// The primary in use: its address, a connection, and a generation that grows on each switch.
struct Primary {
    host: String,
    port: u16,
    generation: u64,
    conn: PrimaryConnection,
}

struct Shared {
    config: SentinelConfig,
    /// With client-side tracking: the tracker every primary's connection feeds.
    tracker: Option<Arc<Tracker>>,
    current: ArcSwap<Primary>,
    generations: AtomicU64,
    /// One re-resolution at a time: callers that fail together wait for the first one's result.
    switching: tokio::sync::Mutex<()>,
    /// The `+switch-master` watchers, stopped when the last handle is dropped.
    watchers: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let watchers = match self.watchers.get_mut() {
            Ok(w) => std::mem::take(w),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for watcher in watchers {
            watcher.abort();
        }
    }
}

impl Shared {
    fn install(&self, host: String, port: u16, conn: PrimaryConnection) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(master = %self.config.master_name, %host, port, generation, "using primary");
        crate::store::reconnected("sentinel");
        self.current.store(Arc::new(Primary {
            host,
            port,
            generation,
            conn,
        }));
        // The caches may hold values read from the old primary, and no change made on the
        // new one before its connection's tracking was on was reported. Emptied after the
        // switch is visible: a read that starts after this uses the new primary, and one that
        // started before installs nothing (its ticket is from before the flush).
        if let Some(tracker) = &self.tracker {
            tracker.flush();
        }
    }

    /// Asks the sentinels for the primary again, unless another caller already switched since
    /// `seen` (the generation that failed). Boxed: it is rare, and resolving (connecting, and
    /// turning tracking on) is a large future that every command would otherwise carry inline.
    fn reresolve(&self, seen: u64) -> futures_util::future::BoxFuture<'_, BackendResult<()>> {
        Box::pin(async move {
            let _guard = self.switching.lock().await;
            if self.current.load().generation != seen {
                return Ok(());
            }
            let (host, port, conn) = resolve(&self.config, self.tracker.as_ref()).await?;
            self.install(host, port, conn);
            Ok(())
        })
    }

    /// Switches to the primary a sentinel announced with `+switch-master`.
    async fn switch_to(&self, host: &str, port: u16) {
        let _guard = self.switching.lock().await;
        let current = self.current.load();
        if current.host == host && current.port == port {
            return;
        }
        match connect_primary(&self.config, host, port, self.tracker.as_ref()).await {
            Ok(conn) => self.install(host.to_owned(), port, conn),
            Err(e) => tracing::warn!(error = %e, "could not connect to the announced primary"),
        }
    }
}

/// A [`Backend`] on the primary of a Sentinel group (feature `sentinel`).
///
/// It asks the sentinels for the primary by name, connects with bounded timeouts, and follows
/// failovers two ways:
///
/// - **proactively**: a background task per sentinel subscribes to `+switch-master` and switches
///   to the announced primary as soon as it is announced. Without it, a connection keeps writing
///   to a demoted primary that still accepts writes for several seconds, and those writes are
///   lost when it becomes a replica;
/// - **on error**: a `READONLY` reply, a connection error or a timeout makes it ask the
///   sentinels again and retry the command **once** on the (possibly new) primary.
///
/// The retry is safe for every command the store sends: `GET`, `GETEX`, `PEXPIRE`, `PTTL`,
/// `MGET` and plain `SET` are idempotent. For `SET NX` and `SET XX` whose first attempt was
/// applied but whose reply was lost, the retry reports "exists" (create) or rewrites the same
/// value (update), never a wrong value. `UNLINK` may then count fewer deleted keys than were
/// deleted. A scan whose primary changed between pages restarts on the new primary from cursor
/// 0 (repeats are dropped by the store).
///
/// With [`SentinelConfig::tls`] (or a `rediss+sentinel://` URL; feature `tls`) every
/// connection is TLS: to the sentinels, for resolving and for the `+switch-master`
/// subscription, and to each primary they name, with the same CA and client certificate.
///
/// Background tasks need a Tokio runtime; outside one the backend still follows failovers on
/// errors. Writes that a failing primary accepted before the switch and did not replicate are
/// lost, as with any asynchronous replication: use `WAIT` on [`SentinelBackend::connection`]
/// where that matters.
#[derive(Clone)]
pub struct SentinelBackend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SentinelBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.shared.current.load();
        f.debug_struct("SentinelBackend")
            .field("master_name", &self.shared.config.master_name)
            .field(
                "primary",
                &format_args!("{}:{}", current.host, current.port),
            )
            .finish_non_exhaustive()
    }
}

impl SentinelBackend {
    /// Connects to `master_name` through `sentinels` (`host:port` each) with default settings.
    ///
    /// # Errors
    /// No sentinel names a reachable primary within the timeouts.
    pub async fn connect<S: Into<String>>(
        sentinels: impl IntoIterator<Item = S>,
        master_name: &str,
    ) -> BackendResult<Self> {
        Self::connect_with(SentinelConfig::new(sentinels, master_name)).await
    }

    /// Connects with explicit settings.
    ///
    /// # Errors
    /// No sentinel names a reachable primary within the timeouts.
    pub async fn connect_with(config: SentinelConfig) -> BackendResult<Self> {
        Self::connect_maybe_tracked(config, None).await
    }

    /// [`connect_with`](SentinelBackend::connect_with) for a store with a
    /// [client-side cache](crate::StoreBuilder::cache): the connection to each primary is
    /// RESP3 with `CLIENT TRACKING ON BCAST PREFIX ... NOLOOP` for the caches' key prefixes,
    /// as [`RedisBackend::connect_tracked`](crate::RedisBackend::connect_tracked) on one
    /// server. Every switch to another primary (a failover announced by `+switch-master`, or
    /// found on an error) empties the caches once the new primary is in use: they may hold
    /// values read from the old one, and changes made on the new one before its tracking was
    /// on were never reported. So does a lost connection.
    ///
    /// # Errors
    /// As [`connect_with`](SentinelBackend::connect_with); the primary refusing
    /// `CLIENT TRACKING` (Redis before 6, or an ACL user without `+client|tracking`) is an
    /// error naming the command.
    pub async fn connect_tracked_with(config: SentinelConfig) -> BackendResult<Self> {
        Self::connect_maybe_tracked(config, Some(Arc::new(Tracker::new()))).await
    }

    async fn connect_maybe_tracked(
        config: SentinelConfig,
        tracker: Option<Arc<Tracker>>,
    ) -> BackendResult<Self> {
        let (host, port, conn) = resolve(&config, tracker.as_ref()).await?;
        let shared = Arc::new(Shared {
            config,
            tracker,
            current: ArcSwap::from_pointee(Primary {
                host,
                port,
                generation: 1,
                conn,
            }),
            generations: AtomicU64::new(1),
            switching: tokio::sync::Mutex::new(()),
            watchers: Mutex::new(Vec::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let handles: Vec<_> = shared
                .config
                .sentinels
                .iter()
                .map(|s| {
                    let task = watch(Arc::downgrade(&shared), shared.config.clone(), s.clone());
                    runtime.spawn(task).abort_handle()
                })
                .collect();
            if let Ok(mut watchers) = shared.watchers.lock() {
                watchers.extend(handles);
            }
        } else {
            tracing::warn!("no Tokio runtime: +switch-master is not watched");
        }
        Ok(SentinelBackend { shared })
    }

    /// The primary in use, `(host, port)`.
    pub fn primary(&self) -> (String, u16) {
        let current = self.shared.current.load();
        (current.host.clone(), current.port)
    }

    /// The connection to the primary in use and its generation (which grows on each switch),
    /// for commands of your own such as `WAIT`.
    pub fn connection(&self) -> (u64, PrimaryConnection) {
        let current = self.shared.current.load();
        (current.generation, current.conn.clone())
    }

    /// Sends one command of your own (for example `MEMORY USAGE key` or `WAIT`), bounded by the
    /// connection's timeouts.
    ///
    /// # Errors
    /// Redis fails or the reply does not convert into `T`.
    pub async fn command<T: FromRedisValue>(&self, cmd: &Cmd) -> BackendResult<T> {
        let map = |e| crate::backend::denied::note(map_error(e), cmd);
        self.retrying(|mut conn| async move { cmd.query_async(&mut conn).await.map_err(map) })
            .await
    }

    /// Sends `send` on the primary in use; when that fails in a way a switch explains (a
    /// `READONLY` reply, a lost connection, a timeout), asks the sentinels again and sends it
    /// once more on the (possibly new) primary.
    async fn retrying<T, F, Fut>(&self, send: F) -> BackendResult<T>
    where
        F: Fn(PrimaryConnection) -> Fut,
        Fut: std::future::Future<Output = BackendResult<T>>,
    {
        let primary = self.shared.current.load_full();
        match send(primary.conn.clone()).await {
            Err(e) if switch_worthy(&e) => {
                tracing::debug!(error = %e, "primary failed; asking the sentinels");
                if let Err(resolve) = self.shared.reresolve(primary.generation).await {
                    tracing::debug!(error = %resolve, "re-resolution failed");
                    return Err(e);
                }
                let conn = self.shared.current.load().conn.clone();
                crate::store::retried("sentinel");
                send(conn).await
            }
            other => other,
        }
    }
}

impl super::tracking::Pipelined for SentinelBackend {
    /// A pipeline on the primary in use, retried once on a switch as a single command is
    /// (the store pipelines only reads).
    async fn send_pipeline<T: FromRedisValue + Send>(
        &self,
        pipe: &redis::Pipeline,
    ) -> BackendResult<T> {
        self.retrying(
            |mut conn| async move { pipe.query_async(&mut conn).await.map_err(map_error) },
        )
        .await
    }
}

fn switch_worthy(e: &BackendError) -> bool {
    matches!(
        e.kind(),
        BackendErrorKind::ReadOnly | BackendErrorKind::Unavailable | BackendErrorKind::Timeout
    )
}

impl Backend for SentinelBackend {
    crate::backend::redis::single_key_ops!();
    crate::backend::index::one_server_index_ops!();

    fn tracker(&self) -> Option<&Tracker> {
        self.shared.tracker.as_deref()
    }

    async fn tracked_read(
        &self,
        key: &str,
        refresh: Option<Duration>,
    ) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
        super::tracking::read(self, key, refresh).await
    }

    /// `WAIT` on the connection to the primary in use, which every command of this backend
    /// goes through; that connection's handle gets a response timeout of `timeout` plus the
    /// configured one, so the wait is not cut. Not retried on another primary: a `WAIT` on a
    /// new primary's connection would count none of the writes sent to the old one. A switch
    /// between the writes and the `WAIT` is not detected (see the README's per-user section).
    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        let primary = self.shared.current.load_full();
        let mut conn = primary.conn.multiplexed().await.map_err(map_error)?;
        conn.set_response_timeout(timeout + self.shared.config.response_timeout);
        let cmd = crate::backend::redis::wait_command(replicas, timeout, None);
        let reply: i64 = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| crate::backend::denied::note(map_error(e), &cmd))?;
        Ok(crate::backend::redis::acknowledged(reply))
    }

    /// `SCAN` on the primary; [`ScanCursor::node`] holds the primary's generation, so a scan
    /// that spans a switch starts again on the new primary (with [`ScanPage::restarted`] set).
    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        let mut primary = self.shared.current.load_full();
        let mut position = cursor.position;
        let mut restarted = false;
        if position != 0 && cursor.node as u64 != primary.generation {
            position = 0;
            restarted = true;
        }
        let scan = |position: u64| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(position)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count);
            cmd
        };
        let mut conn = primary.conn.clone();
        let reply: BackendResult<(u64, Vec<Vec<u8>>)> = scan(position)
            .query_async(&mut conn)
            .await
            .map_err(map_error);
        let (next, keys) = match reply {
            Err(e) if switch_worthy(&e) => {
                self.shared
                    .reresolve(primary.generation)
                    .await
                    .map_err(|_| e)?;
                primary = self.shared.current.load_full();
                restarted |= position != 0;
                let mut conn = primary.conn.clone();
                crate::store::retried("sentinel");
                scan(0).query_async(&mut conn).await.map_err(map_error)?
            }
            other => other?,
        };
        let next = (next != 0).then_some(ScanCursor {
            node: usize::try_from(primary.generation).unwrap_or(usize::MAX),
            position: next,
        });
        Ok(ScanPage {
            keys,
            next,
            restarted,
        })
    }
    /// `INFO` on the current primary (re-resolved first if it fails, as every command), and
    /// every configured sentinel's `SENTINEL GET-MASTER-ADDR-BY-NAME`, one after the other,
    /// each bounded by the connect and response timeouts.
    async fn info(&self, sections: &[&str]) -> BackendResult<super::ServerReport> {
        let mut report = super::ServerReport::new(super::Topology::Sentinel);
        // `rediss+sentinel://`: TLS to the sentinels and to the primary.
        report.tls = Some(self.shared.config.tls.is_some());
        let reply = self.command(redis::cmd("INFO").arg(sections)).await;
        let (host, port) = self.primary();
        report
            .servers
            .push(super::ServerInfo::new(format!("{host}:{port}"), reply));
        let config = &self.shared.config;
        for sentinel in &config.sentinels {
            let answer = ask_sentinel(config, sentinel).await;
            report
                .sentinels
                .push(super::SentinelView::new(sentinel.clone(), answer));
        }
        Ok(report)
    }
}

/// One sentinel's `SENTINEL GET-MASTER-ADDR-BY-NAME` for the configured master, as `host:port`.
async fn ask_sentinel(config: &SentinelConfig, sentinel: &str) -> BackendResult<Option<String>> {
    let client = config.sentinel_client(sentinel)?;
    let timeouts = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&timeouts)
        .await
        .map_err(map_error)?;
    let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(&config.master_name)
        .query_async(&mut conn)
        .await
        .map_err(map_error)?;
    Ok(addr.map(|(host, port)| format!("{host}:{port}")))
}
