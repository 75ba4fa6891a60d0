//! The few Redis operations the store needs, as a trait with implementations for one server
//! (`RedisBackend`, redis-rs), Redis Cluster (`ClusterBackend`, feature `cluster`), Sentinel
//! (`SentinelBackend`, feature `sentinel`) and [`MemoryBackend`] (in-process, with real expiry).
//!
//! Implement [`Backend`] to use another client. Each method maps to one Redis command; the
//! comments say which, and the in-memory backend follows the same semantics.

#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "redis")]
pub(crate) mod denied;
mod glob;
pub mod index;
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "sentinel")]
mod sentinel;
#[cfg(feature = "redis")]
pub(crate) mod tracking;

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "cluster")]
pub use self::cluster::{ClusterBackend, ClusterConfig};
pub use self::index::{
    IndexedDelete, IndexedReply, IndexedWrite, LimitPolicy, SessionLimit, ValueSwap,
};
pub use self::memory::MemoryBackend;
#[cfg(feature = "redis")]
pub use self::redis::{RedisBackend, RedisConfig};
#[cfg(feature = "sentinel")]
pub use self::sentinel::{PrimaryConnection, SentinelBackend, SentinelConfig};
#[cfg(feature = "redis")]
pub use self::tracking::TrackedConnection;
pub use crate::cache::Tracker;
use crate::error::BackendError;

/// Result of a backend call.
pub type BackendResult<T> = std::result::Result<T, BackendError>;

/// Condition of a [`Backend::set`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// Plain `SET`: create or overwrite.
    Always,
    /// `SET NX`: only if the key does not exist.
    IfAbsent,
    /// `SET XX`: only if the key exists.
    IfPresent,
}

/// Remaining time to live of a key (`PTTL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// The key does not exist.
    Missing,
    /// The key exists without expiry.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// Where a scan continues. Start with `ScanCursor::default()`.
///
/// `node` lets a backend with several servers (a cluster) walk each with its own cursor; its
/// value is the backend's own (the cluster backend names a shard by the first hash slot it
/// serves and a tag of its primary's address). A cursor whose `position` is 0 starts one
/// server's scan: every backend returns such a cursor when it moves on to the next server, and
/// never in the middle of one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCursor {
    /// The server being scanned, in the backend's own encoding.
    pub node: usize,
    /// That server's `SCAN` cursor.
    pub position: u64,
}

/// One page of a scan.
///
/// What a full scan (from `ScanCursor::default()` until `next` is `None`) promises, as `SCAN`
/// does for one server: every key that exists under the pattern for the whole scan is returned
/// at least once; a key may be returned more than once. A backend with several servers adds
/// one case of repeats: when a server's scan has to start over (the cluster backend, when a
/// shard's primary was replaced between two pages; the Sentinel backend, when it switched to
/// a new primary), the page that starts over has
/// [`restarted`](ScanPage::restarted) set, and keys that server already returned in this scan
/// may come again. Keys of servers whose scan had finished never come again.
///
/// A consumer that counts keys exactly with memory per server rather than per key keeps the
/// count of the server being scanned apart (the one entered by the last cursor with `position`
/// 0), adds it to the total when the next server starts, and drops it when a page has
/// `restarted` set, before counting that page's keys. Repeats within one server's scan (a
/// `SCAN` over a hash table that is being resized) are not signalled.
#[derive(Clone, Debug, Default)]
pub struct ScanPage {
    /// Keys matching the pattern (may be empty; may repeat across pages, see above).
    pub keys: Vec<Vec<u8>>,
    /// Where to continue, or `None` when the scan is complete.
    pub next: Option<ScanCursor>,
    /// The scan of the server the cursor was in started over with this page, on a new primary
    /// (its `SCAN` cursor meant nothing there): keys that server returned earlier in this scan
    /// may be returned again. Set by the cluster backend (a shard's primary was replaced) and
    /// the Sentinel backend (the primary was switched); always `false` on one server.
    pub restarted: bool,
}

/// The Redis operations the store needs.
///
/// Every call must be bounded in time: an implementation returns a
/// [`BackendErrorKind::Timeout`](crate::BackendErrorKind::Timeout) error rather than hang.
pub trait Backend: Send + Sync + 'static {
    /// `GET key`.
    fn get(&self, key: &str) -> impl Future<Output = BackendResult<Option<Vec<u8>>>> + Send;

    /// `GETEX key PX ttl`: read and refresh the expiry in one command.
    fn get_ex(
        &self,
        key: &str,
        ttl: Duration,
    ) -> impl Future<Output = BackendResult<Option<Vec<u8>>>> + Send;

    /// `SET key value [PX ttl] [NX|XX]`; `true` when written, `false` when the condition failed.
    fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> impl Future<Output = BackendResult<bool>> + Send;

    /// Compare-and-set: `SET key value [PX ttl]` only while the key holds a value whose
    /// lowercase hex SHA-1 is `expected_sha1`, atomically, in one round trip (a Lua script on
    /// Redis, run on the key's own slot on Cluster). When it does not, nothing is written and
    /// the reply carries what the key holds now ([`ValueSwap::Changed`]) or says it is gone
    /// ([`ValueSwap::Missing`]), so a retry needs no extra read.
    fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> impl Future<Output = BackendResult<ValueSwap>> + Send;

    /// `PEXPIRE key ttl`; `true` when the key existed.
    fn pexpire(&self, key: &str, ttl: Duration)
        -> impl Future<Output = BackendResult<bool>> + Send;

    /// `PTTL key`.
    fn pttl(&self, key: &str) -> impl Future<Output = BackendResult<KeyTtl>> + Send;

    /// `UNLINK key...` (or `DEL`); the number of keys that existed. Never called with no keys.
    fn delete(&self, keys: &[String]) -> impl Future<Output = BackendResult<u64>> + Send;

    /// `MGET key...`, one entry per key. Never called with no keys.
    fn mget(
        &self,
        keys: &[String],
    ) -> impl Future<Output = BackendResult<Vec<Option<Vec<u8>>>>> + Send;

    /// One `SCAN cursor MATCH pattern COUNT count` step.
    fn scan(
        &self,
        cursor: ScanCursor,
        pattern: &str,
        count: u32,
    ) -> impl Future<Output = BackendResult<ScanPage>> + Send;

    /// The server this backend sends its commands to, for the store's tracing spans
    /// (`server.address`, `server.port`, `db.namespace`); `None` (the default) when unknown or
    /// when there are several (a cluster).
    fn endpoint(&self) -> Option<crate::store::Endpoint> {
        None
    }

    /// Whether [`write_indexed`](Backend::write_indexed) writes the index member and the
    /// session in separate steps (Cluster: they live in different hash slots), so that a
    /// member may exist for a moment before its session is written, or while the session
    /// still names its old user. Listings then leave such a member in place for
    /// [`INDEX_PENDING`](crate::INDEX_PENDING) after its write rather than remove it as stale
    /// (removing it could leave the session, once written, live and unindexed). `false` (the
    /// default): one atomic step, so a member without its session is stale at once. A wrapper
    /// of another backend must return what the wrapped one returns.
    fn index_in_steps(&self) -> bool {
        false
    }

    /// One cheap round trip to the server, for [`RedisStore::health`](crate::RedisStore::health):
    /// `PING`. The default sends a `PTTL` of a key that is never a session's (a backend for
    /// another client overrides it with its own `PING`).
    fn ping(&self) -> impl Future<Output = BackendResult<()>> + Send {
        async move {
            self.pttl("redis-sessions:health").await?;
            Ok(())
        }
    }

    // --- Per-user index (see the `index` module): a hash per user, field = stored id. ---

    /// Writes a session (`SET key value [PX ttl] [NX|XX]`) and records it in its user's
    /// index (`HSET index member "created:written:sha1"`, the index's TTL raised to at least
    /// `index_ttl`, or removed when that is `None`), applying `limit` when the member is new
    /// to the index. On one server this is one atomic step (a Lua script); where the index
    /// and the session live on different servers, the index is written first and a member
    /// this call added is removed again when the `SET`'s condition fails, so a failure leaves
    /// at most a stale member, never an unindexed session.
    fn write_indexed(
        &self,
        write: &IndexedWrite<'_>,
    ) -> impl Future<Output = BackendResult<IndexedReply>> + Send;

    /// `HGETALL index`: every member with its value (empty when the index does not exist).
    fn index_members(
        &self,
        index: &str,
    ) -> impl Future<Output = BackendResult<Vec<(String, Vec<u8>)>>> + Send;

    /// Deletes a session only while its stored value still has the hex SHA-1
    /// `expected_sha1` (the value the caller read and checked), and removes `member` from
    /// `index`: [`IndexedDelete::Deleted`]. A session that no longer exists has its member
    /// removed ([`IndexedDelete::Missing`]); one holding another value (rewritten since it
    /// was read, perhaps for another user) is left alone, member included
    /// ([`IndexedDelete::Changed`]).
    ///
    /// One atomic step on one server (a Lua script); on Cluster, a script on the session's
    /// own slot compares and deletes atomically, then the member is removed by a second
    /// command (a failure between them leaves a stale member).
    fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> impl Future<Output = BackendResult<IndexedDelete>> + Send;

    /// `HDEL index member...`: drops stale members; the number removed. May be called with
    /// no members (then nothing is sent).
    fn index_remove(
        &self,
        index: &str,
        members: &[String],
    ) -> impl Future<Output = BackendResult<u64>> + Send;

    /// `PEXPIRE index ttl GT`: lets the index live at least `ttl` (a sliding read kept one
    /// of its sessions alive). Never shortens it, never gives a persistent index a TTL.
    fn index_extend(
        &self,
        index: &str,
        ttl: Duration,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    // --- Durable writes (`RedisStore::revoke_user_sessions_durably`) ---

    /// `WAIT replicas timeout` on the connection(s) this backend's writes went through: how
    /// many replicas acknowledged every write sent on them before this call (Redis counts
    /// from the last write of the *connection*, so a backend must send it on the one that
    /// wrote). It returns when `replicas` replicas have acknowledged, or after `timeout` with
    /// how many had.
    ///
    /// `WAIT` holds its connection until it returns: every command sent after it on the same
    /// (multiplexed) connection waits behind it, for up to `timeout`. A backend whose
    /// connection has a response timeout cuts `timeout` to fit within it (the reply must
    /// arrive before the client gives up), and never sends `WAIT … 0` (which would block
    /// forever). On Cluster `WAIT` goes to every primary and the smallest count is returned.
    ///
    /// The default, for backends of other clients and for the [`MemoryBackend`] (which has no
    /// replicas), returns 0 at once: nothing was confirmed.
    fn wait_for_replicas(
        &self,
        replicas: u32,
        timeout: Duration,
    ) -> impl Future<Output = BackendResult<u32>> + Send {
        let _ = (replicas, timeout);
        async { Ok(0) }
    }

    // --- Client-side caching (`StoreBuilder::cache`) ---

    /// Where this backend delivers Redis's invalidations of keys it read, when it keeps
    /// `CLIENT TRACKING` on: the store's cache registers with it. `None` (the default): the
    /// backend does not support a client-side cache, and the store refuses one.
    fn tracker(&self) -> Option<&Tracker> {
        None
    }

    /// A read for the cache: the value (`GETEX PX refresh`, or `GET`) and its TTL. The
    /// default sends them as two commands; a tracked connection with broadcast tracking
    /// (changes of every key under the [tracker's prefixes](Tracker::prefixes) reported) sends
    /// `GETEX` alone (the TTL is the one just set) or `GET` and `PTTL` in one round trip.
    fn tracked_read(
        &self,
        key: &str,
        refresh: Option<Duration>,
    ) -> impl Future<Output = BackendResult<Option<(Vec<u8>, KeyTtl)>>> + Send {
        async move {
            let value = match refresh {
                Some(ttl) => self.get_ex(key, ttl).await?,
                None => self.get(key).await?,
            };
            match value {
                Some(value) => Ok(Some((value, self.pttl(key).await?))),
                None => Ok(None),
            }
        }
    }

    /// A write for the cache: `SET key value [PX ttl] [NX|XX]` (under broadcast tracking the
    /// key stays tracked after its change, so nothing more is needed).
    fn tracked_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> impl Future<Output = BackendResult<bool>> + Send {
        self.set(key, value, ttl, mode)
    }

    // --- Server facts for `RedisStore::check` (the doctor) ---

    /// `INFO [section...]` on every server the store's keys live on: the one server, every
    /// cluster primary, the Sentinel group's current primary; plus what the backend knows of
    /// its deployment (topology, TLS, slot coverage, the sentinels' view). An empty `sections`
    /// sends a plain `INFO` (the default sections, which every Redis version accepts; several
    /// sections in one `INFO` need Redis 7).
    ///
    /// A server that does not answer is an entry with an error, not an error of the call. The
    /// default implementation, for backends of other clients, reports
    /// [`Topology::Unknown`] with no servers.
    ///
    /// # Errors
    /// Only when the backend cannot tell which servers it uses (for example a cluster none of
    /// whose nodes answers `CLUSTER NODES`).
    fn info(&self, sections: &[&str]) -> impl Future<Output = BackendResult<ServerReport>> + Send {
        let _ = sections;
        async { Ok(ServerReport::new(Topology::Unknown)) }
    }
}

/// The kind of deployment behind a backend, as [`Backend::info`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// The in-process [`MemoryBackend`]: no server at all.
    Memory,
    /// One Redis server.
    Standalone,
    /// Redis Cluster.
    Cluster,
    /// A primary found through Redis Sentinel.
    Sentinel,
    /// A backend that does not say (the trait's default [`Backend::info`]).
    Unknown,
}

/// One server's answer to `INFO`.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `host:port` as the deployment names the server.
    pub address: String,
    /// The `INFO` text, or why the server did not answer (a cluster primary flagged failed is
    /// an [`Unavailable`](crate::BackendErrorKind::Unavailable) error without being asked).
    pub reply: BackendResult<String>,
}

impl ServerInfo {
    /// A server's answer.
    pub fn new(address: impl Into<String>, reply: BackendResult<String>) -> ServerInfo {
        ServerInfo {
            address: address.into(),
            reply,
        }
    }
}

/// One sentinel's answer to `SENTINEL GET-MASTER-ADDR-BY-NAME`.
#[derive(Debug)]
#[non_exhaustive]
pub struct SentinelView {
    /// The sentinel's address.
    pub address: String,
    /// The primary it names (`host:port`), `None` when it does not know the master name, or
    /// why it did not answer.
    pub primary: BackendResult<Option<String>>,
}

impl SentinelView {
    /// A sentinel's answer.
    pub fn new(address: impl Into<String>, primary: BackendResult<Option<String>>) -> SentinelView {
        SentinelView {
            address: address.into(),
            primary,
        }
    }
}

/// What [`Backend::info`] found about the deployment.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerReport {
    /// The kind of deployment.
    pub topology: Topology,
    /// Whether the connections use TLS; `None` when the backend cannot tell.
    pub tls: Option<bool>,
    /// One entry per server asked (see [`Backend::info`]).
    pub servers: Vec<ServerInfo>,
    /// Cluster: how many of the 16,384 hash slots are served by a primary that answered
    /// `INFO`, even with a refusal (in the view of the node that answered `CLUSTER NODES`).
    pub slots_served: Option<u32>,
    /// Sentinel: every configured sentinel's answer, in configuration order.
    pub sentinels: Vec<SentinelView>,
}

impl ServerReport {
    /// An empty report for `topology`: no servers, TLS unknown.
    pub fn new(topology: Topology) -> ServerReport {
        ServerReport {
            topology,
            tls: None,
            servers: Vec::new(),
            slots_served: None,
            sentinels: Vec::new(),
        }
    }
}
