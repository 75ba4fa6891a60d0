//! [`Backend`] on Redis Cluster, with redis-rs's async cluster client.
//!
//! Single-key commands are routed by hash slot by redis-rs. `MGET` and `UNLINK` are split here
//! into one command per slot (never a `CROSSSLOT` error), each routed by redis-rs, and the
//! replies are put back in key order. `SCAN` is the one command redis-rs cannot route (its
//! `scan_match` silently walks one random node), so [`ClusterBackend`] walks every primary
//! itself, see [`ClusterBackend::scan`](Backend::scan).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

mod index;
mod topology;
mod tracked;

use self::topology::{answering_node, parse_view, shard_named, slot_of, Shard};
use super::redis::{map_error, RedisBackend};
use super::{Backend, BackendResult, KeyTtl, ScanCursor, ScanPage, SetMode};
use super::{IndexedDelete, IndexedReply, IndexedWrite, ValueSwap};
use crate::error::{BackendError, BackendErrorKind};

/// Connection settings for [`ClusterBackend::connect_with`].
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Time allowed to connect to one node (default 1 s).
    pub connect_timeout: Duration,
    /// Time allowed for one command, retries and redirections included (default 500 ms). The
    /// redis-rs cluster client has no response timeout unless one is set: this one always is.
    pub response_timeout: Duration,
    /// Attempts redis-rs makes on `MOVED`, `TRYAGAIN` or a lost node, within the response
    /// timeout (default 3).
    pub retries: u32,
    /// How long a scan waits for the nodes to agree on which primaries serve the 16,384 slots
    /// (default 2 s), for example while a failed primary is being replaced. A scan that cannot
    /// resolve the topology within this time fails with
    /// [`BackendErrorKind::Unavailable`](crate::BackendErrorKind::Unavailable).
    pub topology_timeout: Duration,
    /// CA, client certificate and insecure mode for `rediss://` seeds (feature `tls`); each one
    /// not set here may come from a seed URL's `tls_*` options.
    pub tls: crate::TlsConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            retries: 3,
            topology_timeout: Duration::from_secs(2),
            tls: crate::TlsConfig::default(),
        }
    }
}

/// A [`Backend`] on a Redis Cluster (feature `cluster`).
///
/// `scan` visits every primary with its own cursor, one shard after the other in the order of
/// the first slot each serves. [`ScanCursor::node`] names the shard by that first slot (not by
/// a list index, which shifts when the list changes) and carries a tag of its primary's address.
///
/// The primaries are read (`CLUSTER NODES`) at the start of each shard's scan, and again when a
/// page fails or the cursor's primary is not the one last seen. A read asks three nodes (picked
/// by redis-rs among those it is connected to) and is used only when all three report the same
/// primaries, those cover all 16,384 slots exactly once, and none of them is flagged failed
/// (`fail`, `fail?`), address-less or in handshake: a node that has not yet learned of a
/// failover still lists the failed primary with its slots, or both primaries. Until then the
/// read is repeated, for at most [`ClusterConfig::topology_timeout`], and then the scan fails
/// with [`BackendErrorKind::Unavailable`]. A scan never ends early without an error.
///
/// A topology change between pages never skips keys and never fails the scan by itself:
///
/// - a primary that fails or is unreachable: the topology is read again and that shard is
///   scanned again from cursor 0 on its new primary (one retry);
/// - a primary that changed between pages (a failover another caller noticed): the shard is
///   scanned again from 0 on the new primary, since a `SCAN` cursor means nothing on another
///   server.
///
/// Scanning a shard again returns its keys again: the page that starts over has
/// [`ScanPage::restarted`] set. Resharding (slots moving between primaries) during a scan is
/// not covered: the scan fails with [`BackendErrorKind::Other`] instead of guessing.
///
/// `MGET` and `UNLINK` are sent as one command per hash slot, one after the other, each routed
/// by redis-rs on its own: redis-rs 1.8's own split of a multi-slot command silently leaves
/// out the slots whose mapped primary it has no connection to (its slot map still naming a
/// primary that was replaced), so `UNLINK` reported and deleted fewer keys without an error after a failover.
#[derive(Clone)]
pub struct ClusterBackend {
    keys: RedisBackend<ClusterConnection>,
    shards: Arc<RwLock<Vec<Shard>>>,
    topology_timeout: Duration,
    /// Whether the seeds were `rediss://`, for [`Backend::info`]; `None` after
    /// [`ClusterBackend::new`].
    tls: Option<bool>,
    /// With [`ClusterBackend::connect_tracked_with`]: the tracked connections to the
    /// primaries and the slot map routing the cache's commands to them.
    tracked: Option<Arc<tracked::Tracked>>,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBackend").finish_non_exhaustive()
    }
}

/// Nodes asked for their view of the topology at each read.
const VIEWS: usize = 3;

impl ClusterBackend {
    /// Connects to a cluster through any of its nodes (`redis://[user:password@]host:port`, one
    /// URL per seed node) with [`ClusterConfig::default`].
    ///
    /// # Errors
    /// A URL is invalid, or no seed node answers within the connect timeout.
    pub async fn connect<S: AsRef<str>>(seeds: &[S]) -> BackendResult<Self> {
        Self::connect_with(seeds, ClusterConfig::default()).await
    }

    /// Connects with explicit timeouts.
    ///
    /// # Errors
    /// A URL is invalid, or no seed node answers within the connect timeout.
    pub async fn connect_with<S: AsRef<str>>(
        seeds: &[S],
        config: ClusterConfig,
    ) -> BackendResult<Self> {
        let mut tls = crate::tls::TlsUrl {
            url: String::new(),
            secure: false,
            config: config.tls.clone(),
        };
        let mut urls = Vec::with_capacity(seeds.len());
        for seed in seeds {
            let seed = crate::tls::TlsUrl::parse(seed.as_ref(), &tls.config)?;
            tls.secure |= seed.secure;
            tls.config = seed.config;
            urls.push(seed.url);
        }
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut builder = ClusterClient::builder(urls)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            .retries(config.retries);
        #[cfg(feature = "tls")]
        if tls.secure {
            // redis-rs would panic at connect without a rustls crypto provider.
            crate::tls::ensure_crypto_provider();
            tls.warn_if_insecure();
            if tls.config.insecure {
                builder = builder.tls(redis::TlsMode::Insecure);
            }
            if let Some(certs) = tls.certificates()? {
                builder = builder.certs(certs);
            }
        }
        let client = builder.build().map_err(map_error)?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| tls.connect_error(e))?;
        let mut backend = Self::new(conn);
        backend.keys = backend.keys.with_response_timeout(config.response_timeout);
        backend.topology_timeout = config.topology_timeout;
        backend.tls = Some(tls.secure);
        backend.refresh().await?;
        Ok(backend)
    }

    /// Wraps an existing cluster connection. Give its client a response timeout: the redis-rs
    /// cluster client has none by default, and every call must be bounded.
    pub fn new(conn: ClusterConnection) -> Self {
        ClusterBackend {
            keys: RedisBackend::new(conn),
            shards: Arc::new(RwLock::new(Vec::new())),
            topology_timeout: ClusterConfig::default().topology_timeout,
            tls: None,
            tracked: None,
        }
    }

    /// Sends one command of your own, routed by its first key (for example `MEMORY USAGE key`).
    ///
    /// # Errors
    /// Redis fails or the reply does not convert into `T`.
    pub async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> BackendResult<T> {
        self.keys.command(cmd).await
    }

    /// The underlying cluster connection, for commands of your own.
    pub fn connection(&self) -> &ClusterConnection {
        self.keys.connection()
    }

    fn snapshot(&self) -> Vec<Shard> {
        match self.shards.read() {
            Ok(shards) => shards.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the primaries until the nodes agree on a complete, healthy view (see
    /// [`ClusterBackend`]), for at most the topology timeout.
    async fn refresh(&self) -> BackendResult<Vec<Shard>> {
        let deadline = Instant::now() + self.topology_timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let reason = match self.read_topology().await? {
                Ok(shards) => {
                    match self.shards.write() {
                        Ok(mut guard) => *guard = shards.clone(),
                        Err(poisoned) => *poisoned.into_inner() = shards.clone(),
                    }
                    return Ok(shards);
                }
                Err(reason) => reason,
            };
            if Instant::now() + pause > deadline {
                return Err(BackendError::new(
                    BackendErrorKind::Unavailable,
                    format!(
                        "cluster topology not resolved within {:?}: {reason}",
                        self.topology_timeout
                    ),
                ));
            }
            tracing::debug!(%reason, "cluster topology not settled; reading it again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// One read of the topology: `CLUSTER NODES` from [`VIEWS`] nodes picked at random by
    /// redis-rs among those it is connected to; the inner `Err` says why the views cannot be
    /// used (yet), the outer one is an ACL that refuses `CLUSTER NODES` (reading again would
    /// not help).
    ///
    /// Nodes are not addressed by name here: a request to an address redis-rs has no
    /// connection to makes it drop every connection and reconnect from the seed nodes.
    async fn read_topology(&self) -> BackendResult<Result<Vec<Shard>, String>> {
        // One after the other: see `per_slot` on requests in flight during a slot-map refresh.
        let mut replies = Vec::with_capacity(VIEWS);
        for _ in 0..VIEWS {
            replies.push(self.cluster_nodes(SingleNodeRoutingInfo::Random).await);
        }
        let mut agreed: Option<Vec<Shard>> = None;
        for reply in replies {
            let text = match reply {
                Ok(text) => text,
                Err(e) => match crate::backend::denied::classify(e) {
                    Ok(denied) => {
                        crate::backend::denied::warn_once(&denied);
                        return Err(denied);
                    }
                    Err(e) => return Ok(Err(format!("CLUSTER NODES failed: {e}"))),
                },
            };
            let who = answering_node(&text);
            let view = match parse_view(&text) {
                Ok(view) => view,
                Err(e) => return Ok(Err(format!("node {who}: {e}"))),
            };
            match &agreed {
                Some(first) if *first != view => {
                    return Ok(Err(format!(
                        "nodes disagree on the primaries ({who} differs)"
                    )))
                }
                Some(_) => {}
                None => agreed = Some(view),
            }
        }
        Ok(agreed.ok_or_else(|| "no view".to_owned()))
    }

    async fn cluster_nodes(&self, route: SingleNodeRoutingInfo) -> redis::RedisResult<String> {
        let mut conn = self.connection().clone();
        let value = conn
            .route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(route),
            )
            .await?;
        // A refusal comes back as a value (`NOPERM`), not as an error.
        Ok(redis::from_redis_value::<String>(value.extract_error()?)?)
    }

    async fn scan_node(
        &self,
        shard: &Shard,
        position: u64,
        pattern: &str,
        count: u32,
    ) -> BackendResult<(u64, Vec<Vec<u8>>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(position)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: shard.host.clone(),
            port: shard.port,
        });
        let mut conn = self.connection().clone();
        let value = conn.route_command(cmd, routing).await.map_err(map_error)?;
        let value = value.extract_error().map_err(map_error)?;
        redis::from_redis_value(value).map_err(|e| map_error(e.into()))
    }

    /// Runs `cmd KEYS...` once per hash slot, one command after the other, each a single-slot
    /// command routed by redis-rs (which follows `MOVED` and falls back to another node when
    /// the mapped one is not connected). The replies come back with the indices of their keys.
    ///
    /// redis-rs's own split of a multi-slot command is not used: it silently leaves out the
    /// slots whose mapped primary it has no connection to (its slot map still naming a primary
    /// that was replaced), so `UNLINK` would report and delete fewer keys without an error.
    ///
    /// The commands are not sent concurrently: the first request to a shard whose route is
    /// stale makes redis-rs refresh its slot map, and with redis-rs 1.8.1 a refresh that starts
    /// while other requests of the same connection wait for its lock stalled every request
    /// past the response timeout (seen on the first `clear` after a failover, in about half of
    /// the runs with 64 commands in flight; never with one).
    async fn per_slot<T: redis::FromRedisValue + Send>(
        &self,
        name: &'static str,
        keys: &[String],
    ) -> BackendResult<Vec<(Vec<usize>, T)>> {
        let mut slots: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            slots.entry(slot_of(key)).or_default().push(i);
        }
        let mut replies = Vec::with_capacity(slots.len());
        for indices in slots.into_values() {
            let mut cmd = redis::cmd(name);
            for &i in &indices {
                cmd.arg(&keys[i]);
            }
            let reply: T = self.keys.command(&cmd).await?;
            replies.push((indices, reply));
        }
        Ok(replies)
    }
}

impl Backend for ClusterBackend {
    fn index_in_steps(&self) -> bool {
        true
    }

    fn tracker(&self) -> Option<&crate::cache::Tracker> {
        self.tracked.as_ref().map(|t| &*t.tracker)
    }

    /// With tracking: on the tracked connection of the key's primary (see
    /// [`ClusterBackend::connect_tracked_with`]).
    async fn tracked_read(
        &self,
        key: &str,
        refresh: Option<Duration>,
    ) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
        match &self.tracked {
            Some(tracked) => tracked.read(&self.keys, key, refresh).await,
            None => tracked::unrouted_read(&self.keys, key, refresh).await,
        }
    }

    /// With tracking: on the tracked connection of the key's primary.
    async fn tracked_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        match &self.tracked {
            Some(tracked) => tracked.set(&self.keys, key, value, ttl, mode).await,
            None => self.keys.set(key, value, ttl, mode).await,
        }
    }

    /// A `PTTL` through the cluster connection; with tracking, `PING` on every primary's
    /// tracked connection (the cache's fence: every invalidation each primary sent before
    /// its reply has been applied).
    async fn ping(&self) -> BackendResult<()> {
        match &self.tracked {
            Some(tracked) => tracked.fence(&self.keys).await,
            None => {
                self.keys.pttl("redis-sessions:health").await?;
                Ok(())
            }
        }
    }

    /// `WAIT` on every primary, each on the connection this backend uses to it (redis-rs
    /// routes `WAIT` to all primaries): the smallest count of any primary, so a count of `n`
    /// means every shard had `n` replicas acknowledge this backend's writes to it. A primary
    /// without a write from this backend answers at once with its replicas. Each `WAIT` holds
    /// the connection to its primary until it returns.
    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        self.keys.wait_for_replicas(replicas, timeout).await
    }

    async fn get(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.keys.get(key).await
    }

    async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
        self.keys.get_ex(key, ttl).await
    }

    async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        self.keys.set(key, value, ttl, mode).await
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> BackendResult<bool> {
        self.keys.pexpire(key, ttl).await
    }

    async fn pttl(&self, key: &str) -> BackendResult<KeyTtl> {
        self.keys.pttl(key).await
    }

    /// One `UNLINK` per hash slot; the counts are summed.
    async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
        let replies = self.per_slot::<u64>("UNLINK", keys).await?;
        Ok(replies.into_iter().map(|(_, n)| n).sum())
    }

    /// One `MGET` per hash slot; the values are put back in key order.
    async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
        let replies = self.per_slot::<Vec<Option<Vec<u8>>>>("MGET", keys).await?;
        let mut values = vec![None; keys.len()];
        for (indices, reply) in replies {
            if reply.len() != indices.len() {
                return Err(BackendError::new(
                    BackendErrorKind::Other,
                    "MGET returned another number of values than keys",
                ));
            }
            for (i, value) in indices.into_iter().zip(reply) {
                values[i] = value;
            }
        }
        Ok(values)
    }

    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        let first_slot = (cursor.node & 0xffff) as u16;
        let tag = cursor.node >> 16;
        let mut position = cursor.position;
        let mut restarted = false;
        // A shard's scan starts on a freshly read topology; later pages use the last one read.
        let mut shards = match self.snapshot() {
            shards if position != 0 && !shards.is_empty() => shards,
            _ => self.refresh().await?,
        };
        let mut shard = shard_named(&shards, first_slot)?.clone();
        if position != 0 && shard.tag() != tag {
            // Another caller saw a primary change, or this cursor comes from a newer topology
            // than the last one read: read it again before deciding.
            shards = self.refresh().await?;
            shard = shard_named(&shards, first_slot)?.clone();
            if shard.tag() != tag {
                tracing::debug!(first_slot, "primary changed during scan; rescanning shard");
                position = 0;
                restarted = true;
            }
        }
        let (next, keys) = match self.scan_node(&shard, position, pattern, count).await {
            Ok(reply) => reply,
            Err(e) if e.kind() != BackendErrorKind::WrongType => {
                tracing::debug!(first_slot, error = %e, "scan of a primary failed; re-resolving");
                shards = self.refresh().await?;
                let now = shard_named(&shards, first_slot)?.clone();
                if now.tag() != shard.tag() && position != 0 {
                    position = 0;
                    restarted = true;
                }
                shard = now;
                crate::store::retried("cluster");
                self.scan_node(&shard, position, pattern, count).await?
            }
            Err(e) => return Err(e),
        };
        let next = if next != 0 {
            Some(shard.cursor(next))
        } else {
            shards
                .iter()
                .find(|s| s.first_slot() > shard.first_slot())
                .map(|s| s.cursor(0))
        };
        Ok(ScanPage {
            keys,
            next,
            restarted,
        })
    }

    /// `INFO` on every primary that serves slots in the view of one node's `CLUSTER NODES`
    /// (a node redis-rs picks, then each primary of the last topology read, until one
    /// answers). A primary flagged `fail` or `fail?` is reported as unavailable without being
    /// asked; one that does not answer, with its error. `slots_served` counts the slots of the
    /// primaries that answered (a refusal of `INFO` by the ACL counts as an answer).
    async fn info(&self, sections: &[&str]) -> BackendResult<super::ServerReport> {
        let text = self.any_cluster_nodes().await?;
        let mut report = super::ServerReport::new(super::Topology::Cluster);
        report.tls = self.tls;
        let mut served = 0u32;
        for primary in topology::primaries(&text) {
            let shown = primary.address.split('@').next().unwrap_or_default();
            if primary.failed {
                report.servers.push(super::ServerInfo::new(
                    shown,
                    Err(BackendError::new(
                        BackendErrorKind::Unavailable,
                        format!("flagged {} by the cluster", primary.flags),
                    )),
                ));
                continue;
            }
            let reply = match topology::address(&primary.address) {
                Some((host, port)) => {
                    let routing =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    let mut conn = self.connection().clone();
                    let cmd = redis::cmd("INFO").arg(sections).clone();
                    match conn.route_command(cmd, routing).await {
                        // A refusal (NOPERM) comes back as a value: make it the error.
                        Ok(value) => value.extract_error().map_err(map_error).and_then(|value| {
                            redis::from_redis_value::<String>(value)
                                .map_err(|e| map_error(e.into()))
                        }),
                        Err(e) => Err(map_error(e)),
                    }
                }
                None => Err(BackendError::new(
                    BackendErrorKind::Unavailable,
                    "the primary has no address",
                )),
            };
            // A refused INFO (ACL) is still an answer: the primary is up.
            if reply.as_ref().map_or_else(
                |e| {
                    matches!(
                        e.kind(),
                        BackendErrorKind::PermissionDenied | BackendErrorKind::Auth
                    )
                },
                |_| true,
            ) {
                served += primary.slots;
            }
            report.servers.push(super::ServerInfo::new(shown, reply));
        }
        report.slots_served = Some(served);
        Ok(report)
    }

    /// Ordered steps, the index and the session living in different hash slots: (the refuse
    /// policy's limit check, not atomic with the write here), the index member and its TTL,
    /// then the session (a compare-and-set, atomic on the session's slot, when
    /// `expected_sha1` is given); when the `SET`'s condition (or the comparison) fails, the
    /// member is put back as it was (removed if this call added it); when it succeeds, the
    /// member is added again if it is missing (a listing between the two steps saw it without
    /// its session, or naming the session's old user, and removed it as stale), then (a new
    /// member under the least-recently-used policy) the sessions past the limit are ended. A
    /// failure between the steps leaves at most a stale member, removed when found.
    async fn write_indexed(&self, w: &IndexedWrite<'_>) -> BackendResult<IndexedReply> {
        self.write_indexed_in_steps(w).await
    }

    /// The compare-and-set script on the key's own slot.
    async fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> BackendResult<ValueSwap> {
        self.keys.set_if_value(key, value, ttl, expected_sha1).await
    }

    async fn index_members(&self, index: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        self.keys.index_members(index).await
    }

    /// Check-and-delete of the session in one script on its own slot (no window between
    /// the comparison and the delete), then `HDEL` of the member on the index's slot.
    async fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> BackendResult<IndexedDelete> {
        self.delete_indexed_in_steps(key, index, member, expected_sha1)
            .await
    }

    async fn index_remove(&self, index: &str, members: &[String]) -> BackendResult<u64> {
        self.keys.index_remove(index, members).await
    }

    async fn index_extend(&self, index: &str, ttl: Duration) -> BackendResult<()> {
        self.keys.index_extend(index, ttl).await
    }
}

impl ClusterBackend {
    /// `CLUSTER NODES` from a node redis-rs picks, else from each primary of the last
    /// topology read in turn (a picked node may be the one that is down).
    async fn any_cluster_nodes(&self) -> BackendResult<String> {
        let mut last = match self.cluster_nodes(SingleNodeRoutingInfo::Random).await {
            Ok(text) => return Ok(text),
            Err(e) => map_error(e),
        };
        for shard in self.snapshot() {
            let route = SingleNodeRoutingInfo::ByAddress {
                host: shard.host.clone(),
                port: shard.port,
            };
            match self.cluster_nodes(route).await {
                Ok(text) => return Ok(text),
                Err(e) => last = map_error(e),
            }
        }
        Err(last)
    }
}
