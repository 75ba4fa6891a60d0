//! In-process backend with Redis's expiry semantics, for the demo's embedded default and for
//! unit tests of applications.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::glob;
use super::index::{choose_evictions, last_used_ms, member_value, value_sha1, IndexMember};
use super::{
    Backend, BackendResult, IndexedDelete, IndexedReply, IndexedWrite, KeyTtl, ScanCursor,
    ScanPage, SetMode, ValueSwap,
};
use crate::error::{BackendError, BackendErrorKind};

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
    value: Data,
    expires_at: Option<Instant>,
}

/// A key's value: a string, or a hash (a per-user index).
enum Data {
    Str(Vec<u8>),
    Hash(BTreeMap<String, Vec<u8>>),
}

impl Data {
    fn bytes(&self) -> BackendResult<Vec<u8>> {
        match self {
            Data::Str(bytes) => Ok(bytes.clone()),
            Data::Hash(_) => Err(wrong_type()),
        }
    }
}

fn wrong_type() -> BackendError {
    BackendError::new(
        BackendErrorKind::WrongType,
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    )
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

    /// A compare-and-set's check: `None` when `key` holds the value with the hex SHA-1
    /// `expected` (go ahead), else what to reply; a hash is `WRONGTYPE`, as `GET` in the script.
    fn compare(
        &mut self,
        key: &(u64, String),
        expected: &str,
        now: Instant,
    ) -> BackendResult<Option<ValueSwap>> {
        let Some(entry) = self.live(key, now) else {
            return Ok(Some(ValueSwap::Missing));
        };
        let bytes = entry.value.bytes()?;
        Ok((value_sha1(&bytes) != expected).then_some(ValueSwap::Changed(bytes)))
    }

    /// `PTTL` of a key.
    fn ttl(&mut self, key: &(u64, String), now: Instant) -> KeyTtl {
        match self.live(key, now) {
            None => KeyTtl::Missing,
            Some(Entry {
                expires_at: None, ..
            }) => KeyTtl::Persistent,
            Some(Entry {
                expires_at: Some(at),
                ..
            }) => KeyTtl::Expires(at.saturating_duration_since(now)),
        }
    }

    /// The hash at `key`, if it exists; a key of another type is `WRONGTYPE`.
    fn hash(
        &mut self,
        key: &(u64, String),
        now: Instant,
    ) -> BackendResult<Option<&mut BTreeMap<String, Vec<u8>>>> {
        match self.live(key, now) {
            None => Ok(None),
            Some(Entry {
                value: Data::Hash(h),
                ..
            }) => Ok(Some(h)),
            Some(_) => Err(wrong_type()),
        }
    }

    /// The limit's step of [`Backend::write_indexed`]: drops dead members, then ends the
    /// least recently used ones or refuses. `Ok(None)`: refused.
    fn apply_limit(
        &mut self,
        w: &IndexedWrite<'_>,
        limit: super::SessionLimit,
        now: Instant,
    ) -> BackendResult<Option<u64>> {
        let index = slot(w.index);
        let members: Vec<(String, Option<IndexMember>)> = match self.hash(&index, now)? {
            Some(h) => h
                .iter()
                .map(|(m, v)| (m.clone(), IndexMember::parse(v)))
                .collect(),
            None => return Ok(Some(0)),
        };
        let mut live = Vec::with_capacity(members.len());
        let mut dead = Vec::new();
        for (member, parsed) in members {
            let key = slot(&format!("{}{member}", w.prefix));
            // Moved to another user or unindexed: its value is not the one recorded.
            let moved = match (self.live(&key, now), &parsed) {
                (Some(entry), Some(m)) => match &entry.value {
                    Data::Str(v) => !m.matches(v),
                    Data::Hash(_) => true,
                },
                _ => false,
            };
            match self.ttl(&key, now) {
                KeyTtl::Missing => dead.push(member),
                _ if moved => dead.push(member),
                ttl => {
                    let written = parsed.map_or(0, |m| m.written_ms);
                    live.push((member, last_used_ms(written, ttl, w.idle, w.now_ms)));
                }
            }
        }
        let Some(ended) = choose_evictions(live, limit) else {
            return Ok(None);
        };
        for member in &ended {
            self.entries.remove(&slot(&format!("{}{member}", w.prefix)));
        }
        if let Some(h) = self.hash(&index, now)? {
            for member in dead.iter().chain(&ended) {
                h.remove(member);
            }
        }
        Ok(Some(ended.len() as u64))
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
        self.lock()
            .live(&slot(key), now)
            .map(|e| e.value.bytes())
            .transpose()
    }

    async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(entry) = state.live(&slot(key), now) else {
            return Ok(None);
        };
        let value = entry.value.bytes()?;
        entry.expires_at = Some(now + ttl);
        Ok(Some(value))
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
                value: Data::Str(value.to_vec()),
                expires_at: ttl.map(|t| now + t),
            };
            state.entries.insert(slot, entry);
            state.wrote(now);
        }
        Ok(allowed)
    }

    async fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> BackendResult<ValueSwap> {
        let now = Instant::now();
        let slot = slot(key);
        let mut state = self.lock();
        if let Some(swap) = state.compare(&slot, expected_sha1, now)? {
            return Ok(swap);
        }
        let entry = Entry {
            value: Data::Str(value.to_vec()),
            expires_at: ttl.map(|t| now + t),
        };
        state.entries.insert(slot, entry);
        state.wrote(now);
        Ok(ValueSwap::Written)
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
        Ok(self.lock().ttl(&slot(key), now))
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
        // MGET answers nil for a key of another type.
        Ok(keys
            .iter()
            .map(|k| state.live(&slot(k), now).and_then(|e| e.value.bytes().ok()))
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

    async fn write_indexed(&self, w: &IndexedWrite<'_>) -> BackendResult<IndexedReply> {
        let now = Instant::now();
        let mut state = self.lock();
        let key = slot(w.key);
        if let Some(expected) = w.expected_sha1 {
            match state.compare(&key, expected, now)? {
                Some(ValueSwap::Changed(current)) => return Ok(IndexedReply::changed(current)),
                Some(_) => return Ok(IndexedReply::written(false)),
                None => {}
            }
        }
        let exists = state.live(&key, now).is_some();
        match w.mode {
            SetMode::IfAbsent if exists => return Ok(IndexedReply::written(false)),
            SetMode::IfPresent if !exists => return Ok(IndexedReply::written(false)),
            _ => {}
        }
        let index = slot(w.index);
        let old = state
            .hash(&index, now)?
            .and_then(|h| h.get(w.member).cloned());
        let created = old
            .as_deref()
            .and_then(IndexMember::parse)
            .map_or(w.now_ms, |m| m.created_ms);
        let mut evicted = 0;
        if let (None, Some(limit)) = (&old, w.limit) {
            match state.apply_limit(w, limit, now)? {
                Some(n) => evicted = n,
                None => return Ok(IndexedReply::refused()),
            }
        }
        let entry = Entry {
            value: Data::Str(w.value.to_vec()),
            expires_at: w.ttl.map(|t| now + t),
        };
        state.entries.insert(key, entry);
        let times = member_value(created, w.now_ms, w.value).into_bytes();
        match state.live(&index, now) {
            Some(entry) => {
                if let Data::Hash(h) = &mut entry.value {
                    h.insert(w.member.to_owned(), times);
                }
                match (w.index_ttl, entry.expires_at) {
                    (None, _) => entry.expires_at = None,
                    // `PEXPIRE GT`: only longer, and never on a persistent index.
                    (Some(t), Some(at)) if at < now + t => entry.expires_at = Some(now + t),
                    _ => {}
                }
            }
            None => {
                let entry = Entry {
                    value: Data::Hash(BTreeMap::from([(w.member.to_owned(), times)])),
                    expires_at: w.index_ttl.map(|t| now + t),
                };
                state.entries.insert(index, entry);
            }
        }
        state.wrote(now);
        Ok(IndexedReply::with_evicted(true, evicted))
    }

    async fn index_members(&self, index: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        let now = Instant::now();
        Ok(self
            .lock()
            .hash(&slot(index), now)?
            .map(|h| h.iter().map(|(m, v)| (m.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> BackendResult<IndexedDelete> {
        let now = Instant::now();
        let mut state = self.lock();
        let key = slot(key);
        let outcome = match state.live(&key, now).map(|e| &e.value) {
            None => IndexedDelete::Missing,
            Some(Data::Str(v)) if super::index::value_sha1(v) == expected_sha1 => {
                state.entries.remove(&key);
                IndexedDelete::Deleted
            }
            Some(_) => return Ok(IndexedDelete::Changed),
        };
        let index = slot(index);
        if let Some(h) = state.hash(&index, now)? {
            h.remove(member);
            if h.is_empty() {
                state.entries.remove(&index);
            }
        }
        Ok(outcome)
    }

    async fn index_remove(&self, index: &str, members: &[String]) -> BackendResult<u64> {
        let now = Instant::now();
        let mut state = self.lock();
        let index = slot(index);
        let Some(h) = state.hash(&index, now)? else {
            return Ok(0);
        };
        let removed = members.iter().filter(|m| h.remove(*m).is_some()).count();
        if h.is_empty() {
            state.entries.remove(&index);
        }
        Ok(removed as u64)
    }

    async fn index_extend(&self, index: &str, ttl: Duration) -> BackendResult<()> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(entry) = state.live(&slot(index), now) {
            if entry.expires_at.is_some_and(|at| at < now + ttl) {
                entry.expires_at = Some(now + ttl);
            }
        }
        Ok(())
    }

    /// No replicas: 0 at once, whatever is asked (a durable revoke on memory reports that
    /// nothing confirmed it, and still ends the sessions).
    async fn wait_for_replicas(&self, _replicas: u32, _timeout: Duration) -> BackendResult<u32> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// The memory backend's futures never wait: run one to its end.
    fn now<F: std::future::Future>(f: F) -> F::Output {
        f.now_or_never().expect("the memory backend never waits")
    }

    #[test]
    fn compare_and_set_writes_only_the_expected_value() {
        let b = MemoryBackend::default();
        let ttl = Some(Duration::from_secs(60));
        let v1 = value_sha1(b"one");
        assert_eq!(
            now(b.set_if_value("k", b"two", ttl, &v1)).unwrap(),
            ValueSwap::Missing
        );
        assert_eq!(
            now(b.get("k")).unwrap(),
            None,
            "a missing key is not created"
        );
        assert!(now(b.set("k", b"one", None, SetMode::Always)).unwrap());
        assert_eq!(
            now(b.set_if_value("k", b"two", ttl, &v1)).unwrap(),
            ValueSwap::Written
        );
        assert_eq!(now(b.get("k")).unwrap(), Some(b"two".to_vec()));
        assert!(
            matches!(now(b.pttl("k")).unwrap(), KeyTtl::Expires(t) if t <= Duration::from_secs(60))
        );
        // Stale: the value stored now comes back, nothing is written.
        assert_eq!(
            now(b.set_if_value("k", b"three", ttl, &v1)).unwrap(),
            ValueSwap::Changed(b"two".to_vec())
        );
        assert_eq!(now(b.get("k")).unwrap(), Some(b"two".to_vec()));
        // No TTL: persistent, as `SET` without `PX`.
        let v2 = value_sha1(b"two");
        assert_eq!(
            now(b.set_if_value("k", b"four", None, &v2)).unwrap(),
            ValueSwap::Written
        );
        assert_eq!(now(b.pttl("k")).unwrap(), KeyTtl::Persistent);
    }

    #[test]
    fn compare_and_set_of_an_index_is_a_wrong_type() {
        let b = MemoryBackend::default();
        let write = IndexedWrite {
            key: "s:1",
            value: b"{}",
            ttl: None,
            mode: SetMode::Always,
            index: "s:idx",
            member: "1",
            prefix: "s:",
            index_ttl: None,
            now_ms: 1,
            idle: None,
            limit: None,
            expected_sha1: None,
        };
        assert!(now(b.write_indexed(&write)).unwrap().written);
        let err = now(b.set_if_value("s:idx", b"x", None, &value_sha1(b"")))
            .expect_err("a hash is not a session");
        assert_eq!(err.kind(), BackendErrorKind::WrongType);
        // The indexed compare-and-set: a stale version gets the value stored now.
        let stale = IndexedWrite {
            value: b"{\"a\":1}",
            mode: SetMode::IfPresent,
            expected_sha1: Some(&value_sha1(b"old")),
            ..write
        };
        let reply = now(b.write_indexed(&stale)).unwrap();
        assert!(!reply.written);
        assert_eq!(reply.current.as_deref(), Some(&b"{}"[..]));
    }
}
