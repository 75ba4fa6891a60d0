//! [`Backend`] on a Redis Sentinel group: finds the primary by name and follows it across
//! failovers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue};

pub use self::resolve::SentinelConfig;
use self::resolve::{connect_primary, resolve, unavailable};
use super::redis::map_error;
use super::{Backend, BackendResult, KeyTtl, ScanCursor, ScanPage, SetMode};
use crate::error::{BackendError, BackendErrorKind};

mod resolve;

/// The primary in use: its address, a connection, and a generation that grows on each switch.
struct Primary {
    host: String,
    port: u16,
    generation: u64,
    conn: MultiplexedConnection,
}

struct Shared {
    config: SentinelConfig,
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
    fn install(&self, host: String, port: u16, conn: MultiplexedConnection) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(master = %self.config.master_name, %host, port, generation, "using primary");
        crate::store::reconnected("sentinel");
        self.current.store(Arc::new(Primary {
            host,
            port,
            generation,
            conn,
        }));
    }

    /// Asks the sentinels for the primary again, unless another caller already switched since
    /// `seen` (the generation that failed).
    async fn reresolve(&self, seen: u64) -> BackendResult<()> {
        let _guard = self.switching.lock().await;
        if self.current.load().generation != seen {
            return Ok(());
        }
        let (host, port, conn) = resolve(&self.config).await?;
        self.install(host, port, conn);
        Ok(())
    }

    /// Switches to the primary a sentinel announced with `+switch-master`.
    async fn switch_to(&self, host: &str, port: u16) {
        let _guard = self.switching.lock().await;
        let current = self.current.load();
        if current.host == host && current.port == port {
            return;
        }
        match connect_primary(&self.config, host, port).await {
            Ok(conn) => self.install(host.to_owned(), port, conn),
            Err(e) => tracing::warn!(error = %e, "could not connect to the announced primary"),
        }
    }
}

/// Listens for `+switch-master` on one sentinel for as long as the backend lives, reconnecting
/// after a second when the sentinel goes away.
async fn watch(shared: Weak<Shared>, config: SentinelConfig, sentinel: String) {
    loop {
        let listened = async {
            let client = config.sentinel_client(&sentinel)?;
            let mut pubsub =
                tokio::time::timeout(config.connect_timeout, client.get_async_pubsub())
                    .await
                    .map_err(|_| unavailable(format!("sentinel {sentinel}: connect timed out")))?
                    .map_err(map_error)?;
            tokio::time::timeout(config.response_timeout, pubsub.subscribe("+switch-master"))
                .await
                .map_err(|_| unavailable(format!("sentinel {sentinel}: subscribe timed out")))?
                .map_err(map_error)?;
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                // "<name> <old-ip> <old-port> <new-ip> <new-port>"
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                let parts: Vec<&str> = payload.split(' ').collect();
                let [name, _, _, host, port] = parts[..] else {
                    continue;
                };
                let (Ok(port), true) = (port.parse::<u16>(), name == config.master_name) else {
                    continue;
                };
                let Some(shared) = shared.upgrade() else {
                    return Ok(());
                };
                shared.switch_to(host, port).await;
            }
            Ok::<_, BackendError>(())
        }
        .await;
        match listened {
            // The sentinel's ACL user may not subscribe: asking again every second would only
            // be refused again. Failovers are still followed when a command fails.
            Err(e) if e.kind() == crate::BackendErrorKind::PermissionDenied => {
                tracing::warn!(
                    error = %e,
                    %sentinel,
                    "sentinel watcher stopped: the sentinel refused the +switch-master \
                     subscription (grant +subscribe &+switch-master to its ACL user)"
                );
                return;
            }
            Err(e) => tracing::debug!(error = %e, "sentinel watcher disconnected"),
            Ok(()) => {}
        }
        if shared.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
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
        let (host, port, conn) = resolve(&config).await?;
        let shared = Arc::new(Shared {
            config,
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
    pub fn connection(&self) -> (u64, MultiplexedConnection) {
        let current = self.shared.current.load();
        (current.generation, current.conn.clone())
    }

    /// Sends one command of your own (for example `MEMORY USAGE key` or `WAIT`), bounded by the
    /// connection's timeouts.
    ///
    /// # Errors
    /// Redis fails or the reply does not convert into `T`.
    pub async fn command<T: FromRedisValue>(&self, cmd: &Cmd) -> BackendResult<T> {
        let primary = self.shared.current.load_full();
        let mut conn = primary.conn.clone();
        let map = |e| crate::backend::denied::note(map_error(e), cmd);
        match cmd.query_async(&mut conn).await.map_err(map) {
            Err(e) if switch_worthy(&e) => {
                tracing::debug!(error = %e, "primary failed; asking the sentinels");
                if let Err(resolve) = self.shared.reresolve(primary.generation).await {
                    tracing::debug!(error = %resolve, "re-resolution failed");
                    return Err(e);
                }
                let mut conn = self.shared.current.load().conn.clone();
                crate::store::retried("sentinel");
                cmd.query_async(&mut conn).await.map_err(map)
            }
            other => other,
        }
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

    /// `WAIT` on the connection to the primary in use, which every command of this backend
    /// goes through; that connection's handle gets a response timeout of `timeout` plus the
    /// configured one, so the wait is not cut. Not retried on another primary: a `WAIT` on a
    /// new primary's connection would count none of the writes sent to the old one. A switch
    /// between the writes and the `WAIT` is not detected (see the README's per-user section).
    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        let primary = self.shared.current.load_full();
        let mut conn = primary.conn.clone();
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
