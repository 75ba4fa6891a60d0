//! Finding the primary: [`SentinelConfig`], asking the sentinels, and checking the answer.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, FromRedisValue, IntoConnectionInfo, ProtocolVersion,
    RedisConnectionInfo, Value,
};

use crate::backend::redis::map_error;
use crate::backend::{BackendResult, TrackedConnection};
use crate::cache::Tracker;
use crate::error::{BackendError, BackendErrorKind};
use crate::tls::{TlsConfig, TlsUrl};

use super::PrimaryConnection;

/// How a [`SentinelBackend`](super::SentinelBackend) finds and talks to the primary.
#[derive(Clone)]
pub struct SentinelConfig {
    /// Sentinel addresses, `host:port`; all asked at once, the first to name a reachable
    /// primary wins.
    pub sentinels: Vec<String>,
    /// The monitored primary's name (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// Username for the primary (ACL), if any.
    pub username: Option<String>,
    /// Password for the primary, if any.
    pub password: Option<String>,
    /// Database number on the primary (default 0).
    pub db: i64,
    /// Username for the sentinels, if they require one.
    pub sentinel_username: Option<String>,
    /// Password for the sentinels, if they require one.
    pub sentinel_password: Option<String>,
    /// Time allowed to connect to a sentinel or the primary (default 1 s).
    pub connect_timeout: Duration,
    /// Time allowed for one reply (default 500 ms).
    pub response_timeout: Duration,
    /// TLS (feature `tls`) to the sentinels (resolving the primary and the `+switch-master`
    /// subscription) and to the primary they name, with these settings (custom CA, client
    /// certificate for mutual TLS); `None` (the default) is plain TCP. `rediss+sentinel://`
    /// URLs set it.
    pub tls: Option<TlsConfig>,
}

impl std::fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("db", &self.db)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl SentinelConfig {
    /// Settings for `master_name` behind `sentinels` (`host:port` each), without auth, with
    /// 1 s connect and 500 ms reply timeouts, over plain TCP.
    pub fn new<S: Into<String>>(
        sentinels: impl IntoIterator<Item = S>,
        master_name: impl Into<String>,
    ) -> Self {
        SentinelConfig {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            master_name: master_name.into(),
            username: None,
            password: None,
            db: 0,
            sentinel_username: None,
            sentinel_password: None,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            tls: None,
        }
    }

    /// The same settings with TLS to the sentinels and the primary (see
    /// [`SentinelConfig::tls`], the field).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How connect errors are classified and TLS clients made.
    pub(super) fn tls_url(&self) -> TlsUrl {
        TlsUrl {
            url: String::new(),
            secure: self.tls.is_some(),
            config: self.tls.clone().unwrap_or_default(),
        }
    }

    /// The first connection to a sentinel or server, TLS failures (and a plain/TLS mismatch
    /// with its port) classified as [`BackendErrorKind::Tls`].
    pub(super) async fn connect(
        &self,
        client: &redis::Client,
    ) -> BackendResult<MultiplexedConnection> {
        client
            .get_multiplexed_async_connection_with_config(&self.async_config())
            .await
            .map_err(|e| self.tls_url().connect_error(e))
    }

    fn async_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
    }

    pub(super) fn sentinel_client(&self, addr: &str) -> BackendResult<redis::Client> {
        let (host, port) = split_addr(addr)?;
        let mut redis = RedisConnectionInfo::default();
        if let Some(user) = &self.sentinel_username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.sentinel_password {
            redis = redis.set_password(password);
        }
        self.client(host, port, redis)
    }

    /// A client for the primary at `host:port`; RESP3 when `tracked` (client-side tracking
    /// delivers invalidations as RESP3 pushes).
    fn primary_client(&self, host: &str, port: u16, tracked: bool) -> BackendResult<redis::Client> {
        let mut redis = RedisConnectionInfo::default().set_db(self.db);
        if tracked {
            redis = redis.set_protocol(ProtocolVersion::RESP3);
        }
        if let Some(user) = &self.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        self.client(host.to_owned(), port, redis)
    }

    fn client(
        &self,
        host: String,
        port: u16,
        redis: RedisConnectionInfo,
    ) -> BackendResult<redis::Client> {
        let addr = match self.tls {
            None => ConnectionAddr::Tcp(host, port),
            #[cfg(feature = "tls")]
            Some(_) => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            },
            #[cfg(not(feature = "tls"))]
            Some(_) => return Err(crate::tls::feature_missing()),
        };
        let info = addr
            .into_connection_info()
            .map_err(map_error)?
            .set_redis_settings(redis);
        self.tls_url().client(info)
    }
}

fn split_addr(addr: &str) -> BackendResult<(String, u16)> {
    let addr = addr
        .strip_prefix("redis://")
        .or_else(|| addr.strip_prefix("rediss://"))
        .unwrap_or(addr);
    addr.rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse().ok()?)))
        .ok_or_else(|| {
            BackendError::new(
                BackendErrorKind::Other,
                format!("sentinel address {addr:?} is not host:port"),
            )
        })
}

pub(super) fn unavailable(message: String) -> BackendError {
    BackendError::new(BackendErrorKind::Unavailable, message)
}

/// Connects to `host:port` and checks that it is a primary (`ROLE`); with `tracker`, on a
/// connection with client-side tracking on that feeds it.
pub(super) async fn connect_primary(
    config: &SentinelConfig,
    host: &str,
    port: u16,
    tracker: Option<&Arc<Tracker>>,
) -> BackendResult<PrimaryConnection> {
    let client = config.primary_client(host, port, tracker.is_some())?;
    let mut conn = match tracker {
        None => PrimaryConnection::plain(config.connect(&client).await?),
        Some(tracker) => PrimaryConnection::tracked(
            TrackedConnection::connect_feeding(
                client,
                config.connect_timeout,
                config.response_timeout,
                config.db,
                Arc::clone(tracker),
            )
            .await
            .map_err(|e| {
                let tracking = redis::cmd("CLIENT").arg("TRACKING").to_owned();
                crate::backend::denied::note(config.tls_url().connect_error(e), &tracking)
            })?,
        ),
    };
    let role: Vec<Value> = redis::cmd("ROLE")
        .query_async(&mut conn)
        .await
        .map_err(map_error)?;
    match role.first().map(String::from_redis_value_ref) {
        Some(Ok(role)) if role == "master" => Ok(conn),
        _ => Err(BackendError::new(
            BackendErrorKind::ReadOnly,
            format!("{host}:{port} is not a primary"),
        )),
    }
}

/// Asks one sentinel for the primary's address.
async fn ask(config: &SentinelConfig, sentinel: &str) -> BackendResult<(String, u16)> {
    let client = config.sentinel_client(sentinel)?;
    let mut conn = config.connect(&client).await?;
    let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(&config.master_name)
        .query_async(&mut conn)
        .await
        .map_err(map_error)?;
    addr.ok_or_else(|| {
        unavailable(format!(
            "sentinel {sentinel} does not know master {:?}",
            config.master_name
        ))
    })
}

/// Asks every sentinel at once for the primary and connects to the first address named that
/// is a primary, so a sentinel that is down or slow costs no more than one connect timeout
/// (in all, not per sentinel).
///
/// When none succeeds the error is a TLS one if any sentinel or primary gave one (a
/// certificate or plain/TLS mismatch is the likelier cause than one sentinel being down),
/// else the last to come.
pub(super) async fn resolve(
    config: &SentinelConfig,
    tracker: Option<&Arc<Tracker>>,
) -> BackendResult<(String, u16, PrimaryConnection)> {
    let mut asked: FuturesUnordered<_> = config.sentinels.iter().map(|s| ask(config, s)).collect();
    let mut last: Option<BackendError> = None;
    let keep = |e: BackendError, last: &mut Option<BackendError>| {
        if !matches!(last, Some(l) if l.kind() == BackendErrorKind::Tls)
            || e.kind() == BackendErrorKind::Tls
        {
            *last = Some(e);
        }
    };
    while let Some(answer) = asked.next().await {
        match answer {
            Ok((host, port)) => match connect_primary(config, &host, port, tracker).await {
                Ok(conn) => return Ok((host, port, conn)),
                Err(e) => keep(e, &mut last),
            },
            Err(e) => keep(e, &mut last),
        }
    }
    Err(last.unwrap_or_else(|| unavailable("no sentinel address configured".into())))
}
