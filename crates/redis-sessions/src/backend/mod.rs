//! The few Redis operations the store needs, as a trait with implementations for one server
//! (`RedisBackend`, redis-rs), Redis Cluster (`ClusterBackend`, feature `cluster`), Sentinel
//! (`SentinelBackend`, feature `sentinel`) and [`MemoryBackend`] (in-process, with real expiry).
//!
//! Implement [`Backend`] to use another client. Each method maps to one Redis command; the
//! comments say which, and the in-memory backend follows the same semantics.

#[cfg(feature = "cluster")]
mod cluster;
mod glob;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sentinel")]
mod sentinel;

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "cluster")]
pub use self::cluster::{ClusterBackend, ClusterConfig};
pub use self::memory::MemoryBackend;
#[cfg(feature = "redis")]
pub use self::redis::{RedisBackend, RedisConfig};
#[cfg(feature = "sentinel")]
pub use self::sentinel::{SentinelBackend, SentinelConfig};
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
/// `node` lets a backend with several servers (a cluster) walk each with its own cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCursor {
    /// Index of the server being scanned.
    pub node: usize,
    /// That server's `SCAN` cursor.
    pub position: u64,
}

/// One page of a scan.
#[derive(Clone, Debug, Default)]
pub struct ScanPage {
    /// Keys matching the pattern (may be empty; may repeat across pages, as `SCAN` may).
    pub keys: Vec<Vec<u8>>,
    /// Where to continue, or `None` when the scan is complete.
    pub next: Option<ScanCursor>,
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
}
