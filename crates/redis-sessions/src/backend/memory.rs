//! In-process backend with Redis's expiry semantics, for the demo's embedded default and for
//! unit tests of applications.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::glob;
use super::{Backend, BackendResult, KeyTtl, ScanCursor, ScanPage, SetMode};

/// Sweep expired entries after this many writes (Redis expires actively too).
const SWEEP_EVERY: u32 = 1024;

/// An in-memory [`Backend`] with real expiry: a key past its TTL is gone for every operation.
///
/// Clones share the same data. Keys are ordered by a fixed hash so that a scan cursor stays
/// valid while keys are added and removed, with `SCAN`'s guarantee: a key present for the whole
/// scan is returned.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<(u64, String), Entry>,
    writes: u32,
}

struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

fn slot(key: &str) -> (u64, String) {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish(), key.to_owned())
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Number of live keys (all keys, not only sessions).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().entries.values().filter(|e| e.live(now)).count()
    }

    /// No live keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an entry half-written, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// The live entry at `key`, removing it if it has expired.
    fn live(&mut self, key: &(u64, String), now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| !e.live(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn wrote(&mut self, now: Instant) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.entries.retain(|_, e| e.live(now));
        }
    }
}

impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        let now = Instant::now();
        Ok(self.lock().live(&slot(key), now).map(|e| e.value.clone()))
    }

    async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
        let now = Instant::now();
        Ok(self.lock().live(&slot(key), now).map(|e| {
            e.expires_at = Some(now + ttl);
            e.value.clone()
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        let now = Instant::now();
        let slot = slot(key);
        let mut state = self.lock();
        let exists = state.live(&slot, now).is_some();
        let allowed = match mode {
            SetMode::Always => true,
            SetMode::IfAbsent => !exists,
            SetMode::IfPresent => exists,
        };
        if allowed {
            let entry = Entry {
                value: value.to_vec(),
                expires_at: ttl.map(|t| now + t),
            };
            state.entries.insert(slot, entry);
            state.wrote(now);
        }
        Ok(allowed)
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> BackendResult<bool> {
        let now = Instant::now();
        let slot = slot(key);
        let mut state = self.lock();
        let Some(entry) = state.live(&slot, now) else {
            return Ok(false);
        };
        if ttl.is_zero() {
            state.entries.remove(&slot);
        } else {
            entry.expires_at = Some(now + ttl);
        }
        Ok(true)
    }

    async fn pttl(&self, key: &str) -> BackendResult<KeyTtl> {
        let now = Instant::now();
        Ok(match self.lock().live(&slot(key), now) {
            None => KeyTtl::Missing,
            Some(Entry {
                expires_at: None, ..
            }) => KeyTtl::Persistent,
            Some(Entry {
                expires_at: Some(at),
                ..
            }) => KeyTtl::Expires(at.saturating_duration_since(now)),
        })
    }

    async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut existed = 0;
        for key in keys {
            if let Some(entry) = state.entries.remove(&slot(key)) {
                existed += u64::from(entry.live(now));
            }
        }
        Ok(existed)
    }

    async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
        let now = Instant::now();
        let mut state = self.lock();
        Ok(keys
            .iter()
            .map(|k| state.live(&slot(k), now).map(|e| e.value.clone()))
            .collect())
    }

    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        let now = Instant::now();
        let state = self.lock();
        let start = (cursor.position, String::new());
        let mut range = state
            .entries
            .range((Bound::Included(start), Bound::Unbounded))
            .peekable();
        let mut keys = Vec::new();
        let mut visited = 0;
        let mut last_hash = None;
        while let Some(((hash, key), entry)) = range.peek() {
            // Finish the current hash bucket so the cursor never splits one.
            if visited >= count.max(1) && last_hash != Some(*hash) {
                break;
            }
            if entry.live(now) && glob::matches(pattern.as_bytes(), key.as_bytes()) {
                keys.push(key.as_bytes().to_vec());
            }
            last_hash = Some(*hash);
            visited += 1;
            range.next();
        }
        let next = range.peek().map(|((hash, _), _)| ScanCursor {
            node: 0,
            position: *hash,
        });
        Ok(ScanPage {
            keys,
            next,
            ..ScanPage::default()
        })
    }

    /// No server: reports [`Topology::Memory`](super::Topology::Memory) and nothing else.
    async fn info(&self, _sections: &[&str]) -> BackendResult<super::ServerReport> {
        let mut report = super::ServerReport::new(super::Topology::Memory);
        report.tls = Some(false);
        Ok(report)
    }
}
