//! [`Backend`] on Redis Cluster, with redis-rs's async cluster client.
//!
//! Single-key commands are routed by hash slot by redis-rs. `MGET` and `UNLINK` are split by
//! redis-rs into one sub-command per slot (never a `CROSSSLOT` error) and the replies are put
//! back in key order. `SCAN` is the one command redis-rs cannot route (its `scan_match` silently
//! walks one random node), so [`ClusterBackend`] walks every primary itself, see
//! [`ClusterBackend::scan`](Backend::scan).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::redis::{map_error, RedisBackend};
use super::{Backend, BackendResult, KeyTtl, ScanCursor, ScanPage, SetMode};
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
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            retries: 3,
        }
    }
}

/// A primary and the slots it serves, as `CLUSTER NODES` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shard {
    /// Lowest slot served: names the shard across failovers (a promoted replica takes over
    /// exactly its primary's slots), so cursors stay meaningful when addresses change.
    first_slot: u16,
    /// Host exactly as the cluster reports it: redis-rs routes by this string.
    host: String,
    port: u16,
}

impl Shard {
    /// A 16-bit tag of the address, carried in the cursor to notice a primary change.
    fn tag(&self) -> usize {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.host.bytes().chain(self.port.to_be_bytes()) {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        ((h ^ (h >> 16)) & 0xffff) as usize
    }
}

/// [`ScanCursor::node`] of a cluster scan: shard index in the low 16 bits, address tag above.
fn encode(index: usize, shard: &Shard) -> usize {
    index | (shard.tag() << 16)
}

/// A [`Backend`] on a Redis Cluster (feature `cluster`).
///
/// `scan` visits every primary with its own cursor. The primaries are read from `CLUSTER NODES`
/// at the start of each scan and sorted by the first slot they serve; [`ScanCursor::node`]
/// holds the shard's index and a tag of its primary's address. A topology change between pages
/// never skips keys and never fails the scan by itself:
///
/// - a primary that fails or is unreachable: the topology is read again and that shard is
///   scanned again from cursor 0 on its new primary (one retry);
/// - a primary that changed between pages (a failover another caller noticed): the shard is
///   scanned again from 0 on the new primary, since a `SCAN` cursor means nothing on another
///   server.
///
/// Scanning a shard again returns keys twice; the store drops repeats, as it must for `SCAN`
/// anyway. Resharding (slots moving between primaries) during a scan is not covered: `SCAN`
/// makes no promise for keys that move.
#[derive(Clone)]
pub struct ClusterBackend {
    keys: RedisBackend<ClusterConnection>,
    shards: Arc<RwLock<Vec<Shard>>>,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBackend").finish_non_exhaustive()
    }
}

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
        let seeds: Vec<&str> = seeds.iter().map(AsRef::as_ref).collect();
        let client = ClusterClient::builder(seeds)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            .retries(config.retries)
            .build()
            .map_err(map_error)?;
        let conn = client.get_async_connection().await.map_err(map_error)?;
        let backend = Self::new(conn);
        backend.refresh().await?;
        Ok(backend)
    }

    /// Wraps an existing cluster connection. Give its client a response timeout: the redis-rs
    /// cluster client has none by default, and every call must be bounded.
    pub fn new(conn: ClusterConnection) -> Self {
        ClusterBackend {
            keys: RedisBackend::new(conn),
            shards: Arc::new(RwLock::new(Vec::new())),
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

    /// Reads the primaries from `CLUSTER NODES` (a random node answers; up to 3 attempts).
    async fn refresh(&self) -> BackendResult<Vec<Shard>> {
        let mut last = None;
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            let mut conn = self.connection().clone();
            let reply = conn
                .route_command(
                    redis::cmd("CLUSTER").arg("NODES").clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                )
                .await
                .and_then(|v| redis::from_redis_value::<String>(v).map_err(Into::into));
            match reply {
                Ok(text) => {
                    let shards = parse_primaries(&text);
                    if shards.is_empty() {
                        last = Some(BackendError::new(
                            BackendErrorKind::Unavailable,
                            "CLUSTER NODES lists no primary serving slots",
                        ));
                        continue;
                    }
                    match self.shards.write() {
                        Ok(mut guard) => *guard = shards.clone(),
                        Err(poisoned) => *poisoned.into_inner() = shards.clone(),
                    }
                    return Ok(shards);
                }
                Err(e) => last = Some(map_error(e)),
            }
        }
        Err(last.unwrap_or_else(|| BackendError::new(BackendErrorKind::Other, "no attempt")))
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
        redis::from_redis_value(value).map_err(|e| map_error(e.into()))
    }
}

/// Primaries serving slots, sorted by their first slot. Failed primaries are kept: their slots
/// are not served by anyone else yet, and scanning them fails with a typed error.
fn parse_primaries(text: &str) -> Vec<Shard> {
    let mut shards: Vec<Shard> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.split(',').any(|f| f == "master") {
                return None;
            }
            // `ip:port@cport[,hostname]`
            let addr = fields.get(1)?.split('@').next()?;
            let (host, port) = addr.rsplit_once(':')?;
            let first_slot = fields
                .get(8..)?
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| s.split('-').next()?.parse::<u16>().ok())
                .min()?;
            Some(Shard {
                first_slot,
                host: host.to_owned(),
                port: port.parse().ok()?,
            })
        })
        .filter(|s| !s.host.is_empty())
        .collect();
    shards.sort_by_key(|s| s.first_slot);
    shards
}

impl Backend for ClusterBackend {
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

    /// `UNLINK`, split by redis-rs into one command per slot; the counts are summed.
    async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
        self.keys.delete(keys).await
    }

    /// `MGET`, split by redis-rs into one command per slot; the values come back in key order.
    async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
        self.keys.mget(keys).await
    }

    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        let index = cursor.node & 0xffff;
        let starting = cursor.node == 0 && cursor.position == 0;
        let mut shards = self.snapshot();
        if starting || shards.is_empty() {
            shards = self.refresh().await?;
        }
        let Some(mut shard) = shards.get(index).cloned() else {
            // The cluster has fewer shards than when the scan started (resharding).
            return Ok(ScanPage::default());
        };
        let mut position = cursor.position;
        if position != 0 && encode(index, &shard) != cursor.node {
            tracing::debug!(
                shard = index,
                "primary changed during scan; rescanning shard"
            );
            position = 0;
        }
        let (next, keys) = match self.scan_node(&shard, position, pattern, count).await {
            Ok(reply) => reply,
            Err(e) if e.kind() != BackendErrorKind::WrongType => {
                tracing::debug!(shard = index, error = %e, "scan of a primary failed; re-resolving");
                shards = self.refresh().await?;
                shard = shards.get(index).cloned().ok_or(e)?;
                self.scan_node(&shard, 0, pattern, count).await?
            }
            Err(e) => return Err(e),
        };
        let next = if next != 0 {
            Some(ScanCursor {
                node: encode(index, &shard),
                position: next,
            })
        } else {
            shards.get(index + 1).map(|s| ScanCursor {
                node: encode(index + 1, s),
                position: 0,
            })
        };
        Ok(ScanPage { keys, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_sorted_by_first_slot() {
        let text = "a 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922\n\
                    b 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                    c 127.0.0.1:7003@17003 slave a 0 0 2 connected\n\
                    d 127.0.0.1:7002@17002,host.example master - 0 0 3 connected 10923-16383 [5-<-x]\n\
                    e 127.0.0.1:7004@17004 master - 0 0 0 connected\n";
        let shards = parse_primaries(text);
        let ports: Vec<u16> = shards.iter().map(|s| s.port).collect();
        assert_eq!(ports, [7000, 7001, 7002]);
        assert_eq!(shards[2].host, "127.0.0.1");
        assert_eq!(shards[1].first_slot, 5461);
    }

    #[test]
    fn cursor_node_keeps_index_and_notices_address_changes() {
        let a = Shard {
            first_slot: 0,
            host: "127.0.0.1".into(),
            port: 7000,
        };
        let b = Shard {
            port: 7003,
            ..a.clone()
        };
        assert_eq!(encode(2, &a) & 0xffff, 2);
        assert_ne!(encode(2, &a), encode(2, &b));
    }
}
