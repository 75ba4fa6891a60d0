//! [`Backend`] on redis-rs async connections.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, ProtocolVersion, RedisError};

use super::{Backend, BackendResult, KeyTtl, ScanCursor, ScanPage, SetMode};
use crate::error::{BackendError, BackendErrorKind};
use crate::tls::{TlsConfig, TlsUrl};

/// A [`Backend`] over any cloneable redis-rs async connection: [`ConnectionManager`] (the
/// default, reconnects by itself), `MultiplexedConnection`, or another `ConnectionLike`.
///
/// Each call clones the connection handle (cheap: both are multiplexed handles) and sends one
/// command. Timeouts are the connection's own; [`RedisBackend::connect`] sets short ones.
#[derive(Clone)]
pub struct RedisBackend<C = ConnectionManager> {
    conn: C,
    /// The server's `host:port` and whether the connection uses TLS, for [`Backend::info`];
    /// `None` for a connection wrapped with [`RedisBackend::new`].
    server: Option<(String, bool)>,
    /// The server from the URL, for tracing ([`Backend::endpoint`]).
    endpoint: Option<crate::store::Endpoint>,
    /// With [`RedisBackend::connect_tracked`]: where the connection delivers invalidations.
    tracker: Option<std::sync::Arc<crate::cache::Tracker>>,
    /// The connection's response timeout when this crate set it, so that a `WAIT` is cut to
    /// fit within it ([`Backend::wait_for_replicas`]); `None` for [`RedisBackend::new`].
    response_timeout: Option<Duration>,
}

impl<C> std::fmt::Debug for RedisBackend<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend").finish_non_exhaustive()
    }
}

/// Connection settings for [`RedisBackend::connect_with`].
///
/// The defaults fail fast while Redis is down (a call errors within about the response timeout)
/// and reconnect as soon as it is back.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Time allowed to establish a connection (default 1 s).
    pub connect_timeout: Duration,
    /// Time allowed for one command's reply (default 500 ms).
    pub response_timeout: Duration,
    /// Reconnection attempts per failed command before giving up (default 2).
    pub retries: usize,
    /// Smallest delay between reconnection attempts (default 50 ms).
    pub min_retry_delay: Duration,
    /// Largest delay between reconnection attempts (default 200 ms).
    pub max_retry_delay: Duration,
    /// CA, client certificate and insecure mode for `rediss://` URLs (feature `tls`); each one
    /// not set here may come from the URL's `tls_*` options.
    pub tls: TlsConfig,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            retries: 2,
            min_retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_millis(200),
            tls: TlsConfig::default(),
        }
    }
}

impl RedisBackend<ConnectionManager> {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS with
    /// the feature `tls`, whose `?tls_ca_file=`, `tls_cert_file=`, `tls_key_file=` and
    /// `tls_insecure=true` options are taken out of the URL) with [`RedisConfig::default`].
    ///
    /// RESP3 is used unless the URL says `?protocol=resp2`: with RESP3 the connection manager
    /// notices a dropped connection and reconnects before the next command.
    ///
    /// # Errors
    /// The URL is invalid or Redis cannot be reached within the connect timeout; TLS
    /// failures (and a plain/TLS mismatch with the port) are [`BackendErrorKind::Tls`].
    pub async fn connect(url: &str) -> BackendResult<Self> {
        Self::connect_with(url, RedisConfig::default()).await
    }

    /// Connects with explicit timeouts and retry settings.
    ///
    /// # Errors
    /// The URL is invalid or Redis cannot be reached within the connect timeout.
    pub async fn connect_with(url: &str, config: RedisConfig) -> BackendResult<Self> {
        let tls = TlsUrl::parse(url, &config.tls)?;
        let url = tls.url.as_str();
        let mut info = url.into_connection_info().map_err(map_error)?;
        if !url.contains("protocol=") {
            let settings = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            info = info.set_redis_settings(settings);
        }
        let server = Some((info.addr().to_string(), tls.secure));
        let endpoint = endpoint_of(&info);
        let resp3 = info.redis_settings().protocol() == ProtocolVersion::RESP3;
        let client = tls.client(info)?;
        let mut manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.retries)
            .set_min_delay(config.min_retry_delay)
            .set_max_delay(config.max_retry_delay);
        if resp3 {
            // The manager reconnects when it sees this push; counting it is all we can observe.
            manager_config = manager_config.set_push_sender(|push: redis::PushInfo| {
                if push.kind == redis::PushKind::Disconnection {
                    crate::store::reconnected("standalone");
                }
                Ok::<(), std::convert::Infallible>(())
            });
        }
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(|e| tls.connect_error(e))?;
        Ok(RedisBackend {
            conn,
            server,
            endpoint,
            tracker: None,
            response_timeout: Some(config.response_timeout),
        })
    }
}

impl RedisBackend<super::TrackedConnection> {
    /// Connects to `url` (as [`connect`](RedisBackend::connect)) on a connection with RESP3
    /// client-side tracking on (`CLIENT TRACKING ON NOLOOP`), which a store's
    /// [`cache`](crate::StoreBuilder::cache) needs. The connection reconnects on demand, and
    /// every reconnection empties the caches on it.
    ///
    /// # Errors
    /// As [`connect`](RedisBackend::connect); a `?protocol=resp2` URL is refused (tracking
    /// needs RESP3's push messages); a Redis user without `+client|tracking` gets a
    /// permission error.
    pub async fn connect_tracked(url: &str) -> BackendResult<Self> {
        Self::connect_tracked_with(url, RedisConfig::default()).await
    }

    /// [`connect_tracked`](RedisBackend::connect_tracked) with explicit timeouts (the retry
    /// settings do not apply: the connection is made again by the next command after a loss).
    ///
    /// # Errors
    /// As [`connect_tracked`](RedisBackend::connect_tracked).
    pub async fn connect_tracked_with(url: &str, config: RedisConfig) -> BackendResult<Self> {
        let tls = TlsUrl::parse(url, &config.tls)?;
        let url = tls.url.as_str();
        let mut info = url.into_connection_info().map_err(map_error)?;
        if url.contains("protocol=") && !info.redis_settings().protocol().supports_resp3() {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "client-side tracking needs RESP3: remove protocol=resp2 from the URL",
                )),
            ));
        }
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        info = info.set_redis_settings(settings);
        let server = Some((info.addr().to_string(), tls.secure));
        let endpoint = endpoint_of(&info);
        let db = info.redis_settings().db();
        let client = tls.client(info)?;
        let conn = super::TrackedConnection::connect(
            client,
            config.connect_timeout,
            config.response_timeout,
            db,
        )
        .await
        .map_err(|e| {
            super::denied::note(tls.connect_error(e), redis::cmd("CLIENT").arg("TRACKING"))
        })?;
        let tracker = Some(std::sync::Arc::clone(conn.tracker()));
        Ok(RedisBackend {
            conn,
            server,
            endpoint,
            tracker,
            response_timeout: Some(config.response_timeout),
        })
    }
}

impl<C> RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Wraps an existing connection. Configure its timeouts: every call must be bounded.
    pub fn new(conn: C) -> Self {
        RedisBackend {
            conn,
            server: None,
            endpoint: None,
            tracker: None,
            response_timeout: None,
        }
    }

    /// Tells the backend the connection's response timeout, so that
    /// [`wait_for_replicas`](Backend::wait_for_replicas) cuts a `WAIT` to fit within it (the
    /// constructors of this crate set it; [`RedisBackend::new`] cannot know it).
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }

    /// The underlying connection, for commands of your own.
    pub fn connection(&self) -> &C {
        &self.conn
    }

    /// Sends one command of your own (for example `MEMORY USAGE key` or `WAIT`), bounded by the
    /// connection's timeouts.
    ///
    /// # Errors
    /// Redis fails or the reply does not convert into `T`.
    pub async fn command<T: FromRedisValue>(&self, cmd: &Cmd) -> BackendResult<T> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| super::denied::note(map_error(e), cmd))
    }

    /// Sends a pipeline of commands in one round trip (not a transaction).
    pub(crate) async fn pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> BackendResult<T> {
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await.map_err(map_error)
    }
}

/// The server a connection info names.
fn endpoint_of(info: &redis::ConnectionInfo) -> Option<crate::store::Endpoint> {
    let (address, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), Some(*port)),
        redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port)),
        redis::ConnectionAddr::Unix(path) => (path.display().to_string(), None),
        _ => return None,
    };
    Some(crate::store::Endpoint {
        address,
        port,
        namespace: Some(info.redis_settings().db()),
    })
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `WAIT replicas ms`, its timeout cut to 4/5 of the connection's response timeout (when
/// known) so the reply arrives before the client gives up, and never 0 (`WAIT … 0` blocks
/// until enough replicas answer, however long).
pub(crate) fn wait_command(
    replicas: u32,
    timeout: Duration,
    response_timeout: Option<Duration>,
) -> Cmd {
    let mut ms = millis(timeout);
    if let Some(limit) = response_timeout {
        ms = ms.min(millis(limit) / 5 * 4).max(1);
    }
    let mut cmd = redis::cmd("WAIT");
    cmd.arg(replicas).arg(ms);
    cmd
}

/// `WAIT`'s reply (a count of replicas) as a `u32`.
pub(crate) fn acknowledged(reply: i64) -> u32 {
    u32::try_from(reply.max(0)).unwrap_or(u32::MAX)
}

/// The `Backend` methods that are one command each, written once for every backend with a
/// `command(&Cmd)` method (this one and the Sentinel backend, which adds failover handling).
macro_rules! single_key_ops {
    () => {
        async fn get(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
            self.command(redis::cmd("GET").arg(key)).await
        }

        async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
            self.command(
                redis::cmd("GETEX")
                    .arg(key)
                    .arg("PX")
                    .arg($crate::backend::redis::millis(ttl)),
            )
            .await
        }

        async fn set(
            &self,
            key: &str,
            value: &[u8],
            ttl: Option<Duration>,
            mode: SetMode,
        ) -> BackendResult<bool> {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg($crate::backend::redis::millis(ttl));
            }
            match mode {
                SetMode::Always => {}
                SetMode::IfAbsent => {
                    cmd.arg("NX");
                }
                SetMode::IfPresent => {
                    cmd.arg("XX");
                }
            }
            // `OK`, or nil when the NX/XX condition failed; no need to allocate the text.
            let reply: redis::Value = self.command(&cmd).await?;
            Ok(!matches!(reply, redis::Value::Nil))
        }

        async fn pexpire(&self, key: &str, ttl: Duration) -> BackendResult<bool> {
            self.command(
                redis::cmd("PEXPIRE")
                    .arg(key)
                    .arg($crate::backend::redis::millis(ttl)),
            )
            .await
        }

        async fn pttl(&self, key: &str) -> BackendResult<KeyTtl> {
            let ms: i64 = self.command(redis::cmd("PTTL").arg(key)).await?;
            Ok(match ms {
                -2 => KeyTtl::Missing,
                -1 => KeyTtl::Persistent,
                ms => KeyTtl::Expires(Duration::from_millis(ms.max(0) as u64)),
            })
        }

        async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
            if keys.is_empty() {
                return Ok(0);
            }
            self.command(redis::cmd("UNLINK").arg(keys)).await
        }

        async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            self.command(redis::cmd("MGET").arg(keys)).await
        }
    };
}
#[cfg(feature = "sentinel")]
pub(crate) use single_key_ops;

/// Classifies a redis-rs error, keeping it as the source.
pub(crate) fn map_error(e: RedisError) -> BackendError {
    let e = match super::denied::classify(e) {
        Ok(denied) => {
            if denied.denied_command().is_some() {
                super::denied::warn_once(&denied);
            }
            return denied;
        }
        Err(e) => e,
    };
    let kind = if e.is_timeout() {
        BackendErrorKind::Timeout
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        BackendErrorKind::Unavailable
    } else {
        match e.code() {
            Some("WRONGTYPE") => BackendErrorKind::WrongType,
            Some("READONLY") => BackendErrorKind::ReadOnly,
            Some("NOAUTH" | "WRONGPASS") => BackendErrorKind::Auth,
            _ if e.kind() == redis::ErrorKind::AuthenticationFailed => BackendErrorKind::Auth,
            _ => BackendErrorKind::Other,
        }
    };
    BackendError::new(kind, e)
}

impl<C> Backend for RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    single_key_ops!();
    super::index::one_server_index_ops!();

    fn endpoint(&self) -> Option<crate::store::Endpoint> {
        self.endpoint.clone()
    }

    fn tracker(&self) -> Option<&crate::cache::Tracker> {
        self.tracker.as_deref()
    }

    async fn tracked_read(
        &self,
        key: &str,
        refresh: Option<Duration>,
    ) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
        super::tracking::read(self, key, refresh).await
    }

    async fn ping(&self) -> BackendResult<()> {
        let _pong: redis::Value = self.command(&redis::cmd("PING")).await?;
        Ok(())
    }

    /// `WAIT` on the one connection every command of this backend goes through (a clone of
    /// a multiplexed handle shares it), so it counts the acknowledgements of every earlier
    /// write. On a [`ClusterBackend`](crate::ClusterBackend)'s connection redis-rs sends it to
    /// every primary (on the connection to each) and returns the smallest count.
    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        let cmd = wait_command(replicas, timeout, self.response_timeout);
        Ok(acknowledged(self.command(&cmd).await?))
    }

    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        let (next, keys): (u64, Vec<Vec<u8>>) = self
            .command(
                redis::cmd("SCAN")
                    .arg(cursor.position)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        let next = (next != 0).then_some(ScanCursor {
            node: 0,
            position: next,
        });
        Ok(ScanPage {
            keys,
            next,
            ..ScanPage::default()
        })
    }

    /// `INFO` on the one server; its address and TLS use as given to
    /// [`connect`](RedisBackend::connect) (unknown for [`RedisBackend::new`]).
    async fn info(&self, sections: &[&str]) -> BackendResult<super::ServerReport> {
        let mut report = super::ServerReport::new(super::Topology::Standalone);
        let address = match &self.server {
            Some((address, tls)) => {
                report.tls = Some(*tls);
                address.clone()
            }
            None => "redis".to_owned(),
        };
        let reply = self.command(redis::cmd("INFO").arg(sections)).await;
        report.servers.push(super::ServerInfo::new(address, reply));
        Ok(report)
    }
}
