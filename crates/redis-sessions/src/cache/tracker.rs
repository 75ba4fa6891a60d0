//! The [`Tracker`]: where a tracking backend delivers invalidations, for every cache on
//! its connection(s).

#[allow(
    clippy::wildcard_imports,
    reason = "the cache's own state, one module up"
)]
use super::*;

/// Where a tracking backend delivers what Redis says about tracked keys, for every cache on
/// its connection(s). A [`Backend`](crate::Backend) that supports client-side caching owns
/// one and returns it from [`Backend::tracker`](crate::Backend::tracker); the store registers
/// its cache with it.
///
/// A backend for another client feeds it: [`invalidate`](Tracker::invalidate) for each key of
/// an invalidation message, [`flush`](Tracker::flush) when a connection that had tracking on
/// is lost or replaced, or Redis invalidates everything (a `null` key list).
#[derive(Default)]
pub struct Tracker {
    caches: Mutex<Vec<Weak<Cache>>>,
    /// The key prefixes of the registered caches' stores, and a generation bumped whenever
    /// their [minimal set](Tracker::prefixes) changes.
    prefixes: Mutex<(Vec<String>, u64)>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

impl Tracker {
    /// A tracker with no cache registered.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Registers a store's cache and the key prefix of its sessions, which the tracked
    /// connection asks Redis to broadcast changes of.
    pub(crate) fn register(&self, cache: &Arc<Cache>, prefix: &str) {
        let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|c| c.strong_count() > 0);
        caches.push(Arc::downgrade(cache));
        let mut prefixes = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        let (set, generation) = &mut *prefixes;
        if !set.iter().any(|p| prefix.starts_with(p.as_str())) {
            set.retain(|p| !p.starts_with(prefix));
            set.push(prefix.to_owned());
            *generation += 1;
        }
    }

    /// The key prefixes whose changes the connection must hear about (`CLIENT TRACKING ON
    /// BCAST PREFIX ...`), with the generation of that set: none of them is a prefix of
    /// another (Redis refuses overlapping prefixes), and an empty prefix stands alone (every
    /// key). A backend for another client turns tracking on with them, and on again (on a new
    /// connection, after a [`flush`](Tracker::flush)) when the generation changes; with no
    /// prefix yet, no cache is registered and nothing needs tracking.
    pub fn prefixes(&self) -> (Vec<String>, u64) {
        self.prefixes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` on every live cache, under the tracker's lock (a cache never takes it, so
    /// the order of locks is always tracker, then cache).
    fn each(&self, f: impl Fn(&Cache)) {
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        for cache in caches.iter().filter_map(Weak::upgrade) {
            f(&cache);
        }
    }

    /// Redis says `key` changed: every cache drops it.
    pub fn invalidate(&self, key: &[u8]) {
        if let Ok(key) = std::str::from_utf8(key) {
            self.each(|c| c.invalidate(key, true));
        }
    }

    /// Invalidations may have been missed (a connection lost or replaced, another primary):
    /// every cache is emptied.
    pub fn flush(&self) {
        self.each(Cache::flush);
    }

    /// A write this process sent on the tracked connection changed `key` (Redis does not tell
    /// the writing connection, `NOLOOP`): every cache but `except` drops it.
    pub(crate) fn wrote(&self, key: &str, except: Option<&Cache>) {
        self.each(|c| {
            if except.is_none_or(|e| !std::ptr::eq(e, c)) {
                c.invalidate(key, false);
            }
        });
    }
}
