//! One URL names any deployment: [`connect`] parses it into a [`Deployment`] and returns an
//! [`AnyBackend`], so an application (or the CLI and demo) needs no code per topology.

use std::fmt;
use std::time::Duration;

#[cfg(feature = "cluster")]
use crate::backend::ClusterBackend;
use crate::backend::TrackedConnection;
use crate::backend::{
    Backend, BackendResult, KeyTtl, RedisBackend, RedisConfig, ScanCursor, ScanPage, SetMode,
};
#[cfg(feature = "sentinel")]
use crate::backend::{SentinelBackend, SentinelConfig};
use crate::error::{BackendError, BackendErrorKind};
use crate::tls::TlsConfig;

/// A Redis deployment, parsed from a URL by [`Deployment::parse`].
///
/// | form | meaning |
/// |---|---|
/// | `redis://[user:password@]host:port[/db]` | one server |
/// | `rediss://...[?tls_ca_file=ca.crt&tls_cert_file=client.crt&tls_key_file=client.key]` | one server over TLS (feature `tls`) |
/// | `redis+cluster://[user:password@]host1:port1,host2:port2,...` | Redis Cluster; each address is a seed node (feature `cluster`) |
/// | `rediss+cluster://host1:port1,...[?tls_ca_file=...]` | Redis Cluster over TLS (features `cluster`, `tls`) |
/// | `redis+sentinel://[user:password@]s1:port1,s2:port2/master-name[/db]` | the primary named `master-name` behind these sentinels (feature `sentinel`) |
/// | `rediss+sentinel://s1:port1,.../master-name[/db][?tls_ca_file=...]` | the same over TLS, to the sentinels and to the primary (features `sentinel`, `tls`) |
///
/// For Sentinel the user and password are the primary's; sentinels that require their own
/// credentials take `?sentinel_username=...&sentinel_password=...`. `rediss+sentinel://`
/// takes the `tls_*` options of `rediss://` (one CA and client certificate for the sentinels
/// and the primary). `Debug` never prints a password.
#[derive(Clone)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per connect; boxing would change the public variant"
)]
pub enum Deployment {
    /// One server: the URL is handed to redis-rs unchanged.
    Standalone(String),
    /// Redis Cluster: one `redis://` URL per seed node.
    Cluster(Vec<String>),
    /// A primary found through sentinels.
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelConfig),
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deployment::Standalone(url) => f
                .debug_tuple("Standalone")
                .field(&redact(url).as_str())
                .finish(),
            Deployment::Cluster(seeds) => f
                .debug_tuple("Cluster")
                .field(&seeds.iter().map(|s| redact(s)).collect::<Vec<_>>())
                .finish(),
            #[cfg(feature = "sentinel")]
            Deployment::Sentinel(config) => f.debug_tuple("Sentinel").field(config).finish(),
        }
    }
}

/// `scheme://user:password@rest` → `scheme://user:***@rest`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let userinfo = &url[start + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..start + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn invalid(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message.into())
}

/// Splits `[userinfo@]hosts[/path][?query]`.
struct Parts<'a> {
    userinfo: Option<&'a str>,
    hosts: Vec<&'a str>,
    path: &'a str,
    query: &'a str,
}

fn split(rest: &str) -> Parts<'_> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    Parts {
        userinfo,
        hosts: hosts.split(',').filter(|h| !h.is_empty()).collect(),
        path,
        query,
    }
}

#[cfg(feature = "sentinel")]
use crate::tls::percent_decode;

impl Deployment {
    /// Parses a deployment URL (see the table on [`Deployment`]).
    ///
    /// # Errors
    /// An unknown scheme, no host, a Sentinel URL without a master name, or a form whose
    /// feature is not enabled.
    pub fn parse(url: &str) -> BackendResult<Deployment> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("a deployment URL starts with a scheme such as redis://"))?;
        #[cfg(not(feature = "tls"))]
        if scheme.starts_with("rediss") {
            return Err(crate::tls::feature_missing());
        }
        match scheme {
            "redis" | "rediss" | "unix" | "redis+unix" => Ok(Deployment::Standalone(url.to_owned())),
            "redis+cluster" | "rediss+cluster" => {
                let parts = split(rest);
                if parts.hosts.is_empty() {
                    return Err(invalid("redis+cluster:// needs at least one host:port"));
                }
                let tls_only = parts
                    .query
                    .split('&')
                    .all(|p| p.is_empty() || p.starts_with("tls_"));
                if !matches!(parts.path, "" | "0") || !tls_only {
                    return Err(invalid(
                        "redis+cluster:// takes no database and no options but tls_*: a cluster has database 0 only",
                    ));
                }
                let base = scheme.trim_end_matches("+cluster");
                let auth = parts.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
                // The TLS options go with every seed; ClusterBackend takes them out again.
                let query = match parts.query {
                    "" => String::new(),
                    q => format!("?{q}"),
                };
                Ok(Deployment::Cluster(
                    parts
                        .hosts
                        .iter()
                        .map(|h| format!("{base}://{auth}{h}{query}"))
                        .collect(),
                ))
            }
            "redis+sentinel" => Self::sentinel(rest, false),
            "rediss+sentinel" => Self::sentinel(rest, true),
            other => Err(invalid(format!(
                "unknown scheme {other:?}: use redis://, rediss://, redis+cluster:// or redis+sentinel:// (rediss+ for TLS)"
            ))),
        }
    }

    /// A `redis+sentinel://` (or, `secure`, `rediss+sentinel://`) URL after the scheme; the
    /// `tls_*` options' files are read here.
    #[cfg(feature = "sentinel")]
    fn sentinel(rest: &str, secure: bool) -> BackendResult<Deployment> {
        let (rest, tls) = crate::tls::take_url_options(rest)?;
        if !secure && !tls.is_empty() {
            return Err(crate::tls::tls_error(
                "TLS settings were given for a plain redis+sentinel:// URL: use rediss+sentinel://",
            ));
        }
        let parts = split(&rest);
        let (name, db) = parts.path.split_once('/').unwrap_or((parts.path, ""));
        if parts.hosts.is_empty() || name.is_empty() {
            return Err(invalid(
                "redis+sentinel:// needs sentinels and a master name: redis+sentinel://host:port,host:port/name",
            ));
        }
        let mut config = SentinelConfig::new(parts.hosts.iter().copied(), percent_decode(name));
        if let Some(userinfo) = parts.userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or(("", userinfo));
            config.username = (!user.is_empty()).then(|| percent_decode(user));
            config.password = (!password.is_empty()).then(|| percent_decode(password));
        }
        if !db.is_empty() {
            config.db = db
                .trim_end_matches('/')
                .parse()
                .map_err(|_| invalid("the database after the master name must be a number"))?;
        }
        for pair in parts.query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sentinel_username" => config.sentinel_username = Some(percent_decode(v)),
                "sentinel_password" => config.sentinel_password = Some(percent_decode(v)),
                other => return Err(invalid(format!("unknown sentinel URL option {other:?}"))),
            }
        }
        config.tls = secure.then_some(tls);
        Ok(Deployment::Sentinel(config))
    }

    #[cfg(not(feature = "sentinel"))]
    fn sentinel(_rest: &str, _secure: bool) -> BackendResult<Deployment> {
        Err(invalid(
            "redis+sentinel:// needs the `sentinel` feature of redis-sessions",
        ))
    }

    /// Connects with the default timeouts of each backend.
    ///
    /// # Errors
    /// Redis cannot be reached within the connect timeout, or the form needs a feature that is
    /// not enabled.
    pub async fn connect(&self) -> BackendResult<AnyBackend> {
        self.connect_with_tls(TlsConfig::default()).await
    }

    /// [`connect_with_tls`](Deployment::connect_with_tls) with client-side tracking on, for a
    /// store with a [client-side cache](crate::StoreBuilder::cache): one server through
    /// [`RedisBackend::connect_tracked_with`], a Sentinel group through
    /// [`SentinelBackend::connect_tracked_with`] (the caches are emptied on every switch of
    /// primary), a Cluster through [`ClusterBackend::connect_tracked_with`] (a tracked
    /// connection to every primary; the caches are emptied on every topology change).
    ///
    /// # Errors
    /// As [`Deployment::connect_with_tls`]; a URL asking for RESP2 is refused.
    pub async fn connect_tracked_with_tls(&self, tls: TlsConfig) -> BackendResult<AnyBackend> {
        match self {
            Deployment::Standalone(url) => Ok(AnyBackend::Tracked(
                RedisBackend::connect_tracked_with(url, standalone(tls)).await?,
            )),
            #[cfg(feature = "cluster")]
            Deployment::Cluster(seeds) => {
                let config = crate::backend::ClusterConfig {
                    tls,
                    ..Default::default()
                };
                Ok(AnyBackend::Cluster(
                    ClusterBackend::connect_tracked_with(seeds, config).await?,
                ))
            }
            #[cfg(not(feature = "cluster"))]
            Deployment::Cluster(_) => Err(invalid(
                "redis+cluster:// needs the `cluster` feature of redis-sessions",
            )),
            #[cfg(feature = "sentinel")]
            Deployment::Sentinel(config) => Ok(AnyBackend::Sentinel(
                SentinelBackend::connect_tracked_with(sentinel_with(config, tls)?).await?,
            )),
        }
    }

    /// Connects with TLS settings given in code (a CA, a client certificate; feature `tls`);
    /// each one not set in `tls` may come from the URL's `tls_*` options.
    ///
    /// # Errors
    /// As [`Deployment::connect`]; TLS settings for a plain URL are a
    /// [`BackendErrorKind::Tls`] error.
    pub async fn connect_with_tls(&self, tls: TlsConfig) -> BackendResult<AnyBackend> {
        match self {
            Deployment::Standalone(url) => Ok(AnyBackend::Redis(
                RedisBackend::connect_with(url, standalone(tls)).await?,
            )),
            #[cfg(feature = "cluster")]
            Deployment::Cluster(seeds) => {
                let config = crate::backend::ClusterConfig {
                    tls,
                    ..Default::default()
                };
                Ok(AnyBackend::Cluster(
                    ClusterBackend::connect_with(seeds, config).await?,
                ))
            }
            #[cfg(not(feature = "cluster"))]
            Deployment::Cluster(_) => Err(invalid(
                "redis+cluster:// needs the `cluster` feature of redis-sessions",
            )),
            #[cfg(feature = "sentinel")]
            Deployment::Sentinel(config) => Ok(AnyBackend::Sentinel(
                SentinelBackend::connect_with(sentinel_with(config, tls)?).await?,
            )),
        }
    }
}

/// Connects to the deployment `url` names with TLS settings given in code (see
/// [`Deployment::connect_with_tls`]).
///
/// # Errors
/// As [`Deployment::parse`] and [`Deployment::connect_with_tls`].
pub async fn connect_with_tls(url: &str, tls: TlsConfig) -> BackendResult<AnyBackend> {
    Deployment::parse(url)?.connect_with_tls(tls).await
}

/// A Sentinel URL's settings with TLS settings given in code (each one not set in `tls` may
/// come from the URL's `tls_*` options); refused for a plain `redis+sentinel://` URL.
#[cfg(feature = "sentinel")]
fn sentinel_with(config: &SentinelConfig, tls: TlsConfig) -> BackendResult<SentinelConfig> {
    let mut config = config.clone();
    match &mut config.tls {
        _ if tls.is_empty() => {}
        Some(from_url) => *from_url = tls.or(std::mem::take(from_url)),
        None => {
            return Err(crate::tls::tls_error(
                "TLS settings were given for a plain redis+sentinel:// URL: use rediss+sentinel://",
            ))
        }
    }
    Ok(config)
}

/// The one-server settings: the defaults, with `tls`.
fn standalone(tls: TlsConfig) -> RedisConfig {
    RedisConfig {
        tls,
        ..RedisConfig::default()
    }
}

/// Connects to the deployment `url` names (one server, a Sentinel group or a Cluster) with
/// client-side tracking on, for a store with a [client-side cache](crate::StoreBuilder::cache)
/// ([`RedisBackend::connect_tracked`], [`SentinelBackend::connect_tracked_with`],
/// [`ClusterBackend::connect_tracked_with`]).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = redis_sessions::connect_tracked("redis://127.0.0.1:6379").await?;
/// let store = redis_sessions::RedisStore::builder(backend).cache(10_000)?.build();
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`Deployment::parse`] and [`Deployment::connect_tracked_with_tls`].
pub async fn connect_tracked(url: &str) -> BackendResult<AnyBackend> {
    Deployment::parse(url)?
        .connect_tracked_with_tls(TlsConfig::default())
        .await
}

/// Connects to the deployment `url` names (see [`Deployment`] for the forms).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = redis_sessions::connect("redis+cluster://10.0.0.1:7000,10.0.0.2:7000").await?;
/// let store = redis_sessions::RedisStore::new(backend);
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`Deployment::parse`] and [`Deployment::connect`].
pub async fn connect(url: &str) -> BackendResult<AnyBackend> {
    Deployment::parse(url)?.connect().await
}

/// Any of this crate's Redis backends, chosen at run time by [`connect`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyBackend {
    /// One server.
    Redis(RedisBackend),
    /// One server, on a connection with client-side tracking on, for
    /// [`StoreBuilder::cache`](crate::StoreBuilder::cache) ([`connect_tracked`]).
    Tracked(RedisBackend<TrackedConnection>),
    /// Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(ClusterBackend),
    /// A Sentinel-managed primary.
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelBackend),
}

macro_rules! delegate {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            AnyBackend::Redis($b) => $call.await,
            AnyBackend::Tracked($b) => $call.await,
            #[cfg(feature = "cluster")]
            AnyBackend::Cluster($b) => $call.await,
            #[cfg(feature = "sentinel")]
            AnyBackend::Sentinel($b) => $call.await,
        }
    };
}

impl AnyBackend {
    /// Sends one command of your own to the deployment (on a cluster routed by its first key;
    /// on Sentinel to the current primary), bounded by the connection's timeouts.
    ///
    /// # Errors
    /// Redis fails or the reply does not convert into `T`.
    pub async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> BackendResult<T> {
        delegate!(self, b => b.command(cmd))
    }
}

impl Backend for AnyBackend {
    async fn get(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        delegate!(self, b => b.get(key))
    }

    async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
        delegate!(self, b => b.get_ex(key, ttl))
    }

    async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        delegate!(self, b => b.set(key, value, ttl, mode))
    }

    async fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> BackendResult<crate::backend::ValueSwap> {
        delegate!(self, b => b.set_if_value(key, value, ttl, expected_sha1))
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> BackendResult<bool> {
        delegate!(self, b => b.pexpire(key, ttl))
    }

    async fn pttl(&self, key: &str) -> BackendResult<KeyTtl> {
        delegate!(self, b => b.pttl(key))
    }

    async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
        delegate!(self, b => b.delete(keys))
    }

    async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
        delegate!(self, b => b.mget(keys))
    }

    fn index_in_steps(&self) -> bool {
        match self {
            AnyBackend::Redis(b) => b.index_in_steps(),
            AnyBackend::Tracked(b) => b.index_in_steps(),
            #[cfg(feature = "cluster")]
            AnyBackend::Cluster(b) => b.index_in_steps(),
            #[cfg(feature = "sentinel")]
            AnyBackend::Sentinel(b) => b.index_in_steps(),
        }
    }

    fn endpoint(&self) -> Option<crate::store::Endpoint> {
        match self {
            AnyBackend::Redis(b) => b.endpoint(),
            AnyBackend::Tracked(b) => b.endpoint(),
            #[cfg(feature = "cluster")]
            AnyBackend::Cluster(b) => b.endpoint(),
            #[cfg(feature = "sentinel")]
            AnyBackend::Sentinel(b) => b.endpoint(),
        }
    }

    async fn ping(&self) -> BackendResult<()> {
        delegate!(self, b => b.ping())
    }

    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        delegate!(self, b => b.scan(cursor, pattern, count))
    }

    async fn info(&self, sections: &[&str]) -> BackendResult<crate::backend::ServerReport> {
        delegate!(self, b => b.info(sections))
    }

    async fn write_indexed(
        &self,
        write: &crate::backend::IndexedWrite<'_>,
    ) -> BackendResult<crate::backend::IndexedReply> {
        delegate!(self, b => b.write_indexed(write))
    }

    async fn index_members(&self, index: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        delegate!(self, b => b.index_members(index))
    }

    async fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> BackendResult<crate::backend::IndexedDelete> {
        delegate!(self, b => b.delete_indexed(key, index, member, expected_sha1))
    }

    async fn index_remove(&self, index: &str, members: &[String]) -> BackendResult<u64> {
        delegate!(self, b => b.index_remove(index, members))
    }

    async fn index_extend(&self, index: &str, ttl: Duration) -> BackendResult<()> {
        delegate!(self, b => b.index_extend(index, ttl))
    }

    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        delegate!(self, b => b.wait_for_replicas(replicas, timeout))
    }

    fn tracker(&self) -> Option<&crate::cache::Tracker> {
        match self {
            AnyBackend::Tracked(b) => b.tracker(),
            #[cfg(feature = "sentinel")]
            AnyBackend::Sentinel(b) => b.tracker(),
            #[cfg(feature = "cluster")]
            AnyBackend::Cluster(b) => b.tracker(),
            _ => None,
        }
    }

    async fn tracked_read(
        &self,
        key: &str,
        refresh: Option<Duration>,
    ) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
        delegate!(self, b => b.tracked_read(key, refresh))
    }

    async fn tracked_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        delegate!(self, b => b.tracked_set(key, value, ttl, mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert!(matches!(
            Deployment::parse("redis://:pw@127.0.0.1:6379/2"),
            Ok(Deployment::Standalone(u)) if u == "redis://:pw@127.0.0.1:6379/2"
        ));
        match Deployment::parse("redis+cluster://u:p%40w@h1:7000,h2:7001") {
            Ok(Deployment::Cluster(seeds)) => {
                assert_eq!(
                    seeds,
                    ["redis://u:p%40w@h1:7000", "redis://u:p%40w@h2:7001"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(Deployment::parse("redis+cluster://").is_err());
        assert!(Deployment::parse("redis+cluster://h1:7000/3").is_err());
        assert!(Deployment::parse("redis+cluster://h1:7000?protocol=resp2").is_err());
        match Deployment::parse("rediss+cluster://h1:7000,h2:7001?tls_ca_file=/ca.crt") {
            Ok(Deployment::Cluster(seeds)) => assert_eq!(
                seeds,
                [
                    "rediss://h1:7000?tls_ca_file=/ca.crt",
                    "rediss://h2:7001?tls_ca_file=/ca.crt"
                ]
            ),
            #[cfg(not(feature = "tls"))]
            Err(e) => assert_eq!(e.kind(), BackendErrorKind::Tls),
            other => panic!("{other:?}"),
        }
        assert!(Deployment::parse("memcached://x:1").is_err());
        assert!(Deployment::parse("no-scheme").is_err());
    }

    #[cfg(feature = "sentinel")]
    #[test]
    fn parses_sentinel_urls() {
        let url = "redis+sentinel://app:s%3Acret@s1:26379,s2:26380/mymaster/3?sentinel_password=sp";
        match Deployment::parse(url) {
            Ok(d @ Deployment::Sentinel(_)) => {
                let debug = format!("{d:?}");
                assert!(
                    !debug.contains("cret") && !debug.contains("sp\""),
                    "{debug}"
                );
                let Deployment::Sentinel(c) = d else {
                    unreachable!()
                };
                assert_eq!(c.sentinels, ["s1:26379", "s2:26380"]);
                assert_eq!(c.master_name, "mymaster");
                assert_eq!(c.username.as_deref(), Some("app"));
                assert_eq!(c.password.as_deref(), Some("s:cret"));
                assert_eq!(c.db, 3);
                assert_eq!(c.sentinel_password.as_deref(), Some("sp"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Deployment::parse("redis+sentinel://s1:26379").is_err());
        match Deployment::parse("redis+sentinel://s1:1/m") {
            Ok(Deployment::Sentinel(c)) => assert!(c.tls.is_none()),
            other => panic!("{other:?}"),
        }
        let plain_with_tls = Deployment::parse("redis+sentinel://s1:1/m?tls_insecure=true");
        assert!(
            matches!(&plain_with_tls, Err(e) if e.kind() == BackendErrorKind::Tls),
            "{plain_with_tls:?}"
        );
    }

    #[cfg(all(feature = "sentinel", feature = "tls"))]
    #[test]
    fn parses_tls_sentinel_urls() {
        let url = "rediss+sentinel://s1:1,s2:2/mymaster/2?tls_insecure=true&sentinel_password=sp";
        match Deployment::parse(url) {
            Ok(Deployment::Sentinel(c)) => {
                assert_eq!(c.sentinels, ["s1:1", "s2:2"]);
                assert_eq!(c.master_name, "mymaster");
                assert_eq!(c.db, 2);
                assert_eq!(c.sentinel_password.as_deref(), Some("sp"));
                assert_eq!(c.tls, Some(TlsConfig::new().insecure(true)));
            }
            other => panic!("{other:?}"),
        }
        match Deployment::parse("rediss+sentinel://s1:1/m") {
            Ok(Deployment::Sentinel(c)) => assert_eq!(c.tls, Some(TlsConfig::new())),
            other => panic!("{other:?}"),
        }
        let unreadable = Deployment::parse("rediss+sentinel://s1:1/m?tls_ca_file=/no/such.crt");
        assert!(
            matches!(&unreadable, Err(e) if e.kind() == BackendErrorKind::Tls),
            "{unreadable:?}"
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_need_the_tls_feature() {
        for url in [
            "rediss://h:1",
            "rediss+cluster://h:1,h:2",
            "rediss+sentinel://h:1/m",
        ] {
            let err = Deployment::parse(url)
                .err()
                .map(|e| (e.kind(), e.to_string()));
            assert!(
                matches!(&err, Some((BackendErrorKind::Tls, text)) if text.contains("`tls` feature")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn debug_hides_passwords() {
        let d = Deployment::parse("redis+cluster://user:hunter2@h1:1,h2:2");
        let text = format!("{d:?}");
        assert!(
            !text.contains("hunter2") && text.contains("user:***@h1:1"),
            "{text}"
        );
    }
}
