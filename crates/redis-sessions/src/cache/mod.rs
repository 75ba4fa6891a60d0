//! The client-side cache: decoded sessions kept in process memory, dropped when Redis says
//! their key changed (RESP3 `CLIENT TRACKING` invalidations), emptied whenever the tracking
//! connection is lost, bounded by entries and bytes with least-recently-used eviction.
//!
//! - `mod.rs`: [`CacheConfig`], [`CacheStats`], the cache itself and its read/write tickets;
//! - `turn.rs`: the waits of the install rule (a write's turn, a load waiting for a write);
//! - `tracker.rs`: the [`Tracker`] a tracking backend feeds with invalidations;
//! - `lru.rs`: the bounded map.
//!
//! # The install rule
//!
//! A value read from (or written to) Redis is installed only if nothing could have changed
//! the key since the command was sent. Each key with a command in flight has a *pending*
//! marker whose generation every invalidation of the key bumps (a push from Redis, a write of
//! this process, a flush); a ticket taken before the command is sent remembers the generation
//! and the cache's epoch, and installs only if both are unchanged. Redis starts tracking a
//! key for this connection when the read executes and sends an invalidation for any later
//! change, so an invalidation that concerns the value read either arrives before the install
//! (the generation moved: nothing installed) or after it (it drops the entry). A read this
//! process sends while a write of the same key is in flight installs nothing (the write
//! does, if nothing else changed the key).
//!
//! Writes of one session take turns: a write of a key that another write through this
//! cache has in flight waits until that one has finished (first come, first served; a
//! write dropped while waiting or in flight lets the next one go), so at most one of them
//! is in flight and each can install what it wrote: the last to finish is what Redis holds,
//! unless another client changed the key meanwhile (its invalidation moved the generation).
//! Two writes of one key in flight at once could execute in either order, so they install
//! nothing: that is left only for the changes that never install and do not wait (`clear`'s
//! deletes, a `GETEX` outside the cache's reads).
//!
//! A load that misses while a write of its key that took its turn is in flight waits for
//! that write to finish and then looks again ([`Cache::written`]): a read sent instead would
//! run in Redis after the write (one connection keeps the order) and its reply would come
//! after the write's, so waiting costs the load no time and spares Redis the read. It waits
//! for that one write only, never for writes still waiting for their turn; if the entry is
//! not there then (another write took the turn, an invalidation came), it reads from Redis.

pub(crate) mod lru;
mod tracker;
mod turn;

pub use self::tracker::Tracker;
pub(crate) use self::turn::{Turn, Written};

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use lru::Lru;

/// Default share of the idle timeout after which a cache hit refreshes the session's TTL.
pub const DEFAULT_REFRESH_FRACTION: f64 = 0.1;
/// Default bytes bound per entry of capacity (see [`CacheConfig::new`]).
const DEFAULT_BYTES_PER_ENTRY: usize = 2 * 1024;
/// What an entry weighs besides its value: its key twice (map and node), the slab node and
/// the decoded value's own allocations, roughly.
const ENTRY_OVERHEAD: usize = 160;

/// Options of the client-side cache ([`StoreBuilder::cache_with`](crate::StoreBuilder::cache_with)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheConfig {
    /// Most sessions held.
    pub entries: usize,
    /// Most bytes held: each entry weighs its stored value's size plus its key and a fixed
    /// overhead (an estimate of the decoded session's memory, not an exact count).
    pub bytes: usize,
    /// Under an [`idle_timeout`](crate::StoreBuilder::idle_timeout) *i*, a hit refreshes the
    /// session's TTL once this share of *i* has passed since the last refresh this process
    /// saw (default [`DEFAULT_REFRESH_FRACTION`], 0.1): a session's effective idle timeout is
    /// then between `(1 - fraction) × i` and *i*. Clamped to `0.0..=1.0`; 0 refreshes on every
    /// hit (a round trip per read, as without a cache).
    pub refresh_fraction: f64,
}

impl CacheConfig {
    /// At most `entries` sessions, and at most 2 KiB per entry of capacity in bytes.
    pub fn new(entries: usize) -> CacheConfig {
        CacheConfig {
            entries,
            bytes: entries.saturating_mul(DEFAULT_BYTES_PER_ENTRY),
            refresh_fraction: DEFAULT_REFRESH_FRACTION,
        }
    }

    /// The bytes bound.
    #[must_use]
    pub fn bytes(mut self, bytes: usize) -> CacheConfig {
        self.bytes = bytes;
        self
    }

    /// The share of the idle timeout after which a hit refreshes the TTL.
    #[must_use]
    pub fn refresh_fraction(mut self, fraction: f64) -> CacheConfig {
        self.refresh_fraction = if fraction.is_nan() {
            DEFAULT_REFRESH_FRACTION
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }
}

/// Counts of the cache's work since the store was built ([`RedisStore::cache_stats`](crate::RedisStore::cache_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads served from memory.
    pub hits: u64,
    /// Loads that went to Redis (not cached, expired locally, or a TTL refresh was due).
    pub misses: u64,
    /// Keys Redis said changed (invalidation messages, one per key) while cached or being read.
    pub invalidations: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Times the cache was emptied: a lost or replaced connection, Redis flushing its
    /// tracking table, a write that ended other sessions (the per-user limit).
    pub flushes: u64,
    /// Sessions held now.
    pub entries: u64,
    /// Bytes held now, as weighed against [`CacheConfig::bytes`].
    pub bytes: u64,
}

/// A decoded session in the cache.
#[derive(Clone)]
pub(crate) struct Cached {
    /// The decoded value: the shape the reader asked for (a `Session`, tower's or actix's).
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    /// When the key's TTL runs out, as far as this process knows (a lower bound).
    pub(crate) key_expires: Option<Instant>,
    /// When the TTL was last set by a command this process saw.
    pub(crate) refreshed: Instant,
    /// The version of the stored bytes it was decoded from, kept for a store that merges
    /// concurrent saves (a save guarded by it then needs no read).
    pub(crate) version: Option<crate::store::Version>,
}

/// The shape loads use (a [`Decoded`](crate::codec::Decoded) type), recorded by the reads
/// that install, so that a write installs the same shape.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    /// Which type it is: a write that holds the session in that shape installs it as it is.
    pub(crate) id: std::any::TypeId,
    /// How it is decoded from the stored bytes (`bound_to`: the key's suffix), for a write
    /// that does not.
    pub(crate) decode: Decode,
}

/// Decodes stored bytes (`bound_to`: the key's suffix) into a shape.
pub(crate) type Decode = fn(
    &crate::codec::Codec,
    &[u8],
    &[u8],
) -> Result<crate::codec::Loaded, crate::error::CodecError>;

#[derive(Default)]
struct Pending {
    /// Bumped by every invalidation of the key.
    generation: u64,
    /// Tickets of this key not yet finished.
    inflight: u32,
    /// Of those, writes.
    writers: u32,
    /// A write that took its [`Turn`] is in flight: the next one waits for it.
    turn_taken: bool,
    /// Writes waiting for their turn, first come first served: an id and the waker of each.
    waiting: VecDeque<(u64, Waker)>,
    /// Loads waiting for the write in flight to finish ([`Cache::written`]), all woken when
    /// it does (a load that went away leaves a waker that wakes nothing).
    loads: Vec<Waker>,
}

impl Pending {
    /// Nothing in flight and nobody waiting: the marker can go.
    fn idle(&self) -> bool {
        self.inflight == 0 && self.waiting.is_empty()
    }

    /// The waker of the write whose turn comes next, when none is in flight.
    fn next_turn(&self) -> Option<Waker> {
        if self.turn_taken {
            return None;
        }
        self.waiting.front().map(|(_, waker)| waker.clone())
    }
}

struct State {
    lru: Lru<Cached>,
    /// Bumped by every flush: tickets from before one install nothing.
    epoch: u64,
    pending: HashMap<String, Pending>,
    /// The id the next write that has to wait for its turn gets.
    next_waiter: u64,
    /// The shape the last read installed, so a write can install the same shape.
    shape: Option<Shape>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    evictions: AtomicU64,
    flushes: AtomicU64,
}

/// One store's cache.
pub(crate) struct Cache {
    state: Mutex<State>,
    counters: Counters,
    refresh_fraction: f64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub(crate) fn new(config: CacheConfig) -> Cache {
        Cache {
            state: Mutex::new(State {
                lru: Lru::new(config.entries, config.bytes),
                epoch: 0,
                pending: HashMap::new(),
                next_waiter: 0,
                shape: None,
            }),
            counters: Counters::default(),
            refresh_fraction: config.refresh_fraction,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters more than losing the cache; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The interval after which a hit refreshes the TTL, under an idle timeout.
    pub(crate) fn refresh_every(&self, idle: Duration) -> Duration {
        idle.mul_f64(self.refresh_fraction)
    }

    /// The cached value of `key` if it is still good at `now`: its key has not expired and
    /// (with `refresh_every`) its TTL was refreshed less than that long ago. Counts the hit or
    /// miss.
    #[cfg(test)]
    pub(crate) fn lookup<T: Clone + 'static>(
        &self,
        key: &str,
        now: Instant,
        refresh_every: Option<Duration>,
    ) -> Option<T> {
        self.lookup_versioned(key, now, refresh_every)
            .map(|(value, _)| value)
    }

    /// [`lookup`](Cache::lookup) with the version the entry was read or written at, if kept.
    #[cfg(test)]
    pub(crate) fn lookup_versioned<T: Clone + 'static>(
        &self,
        key: &str,
        now: Instant,
        refresh_every: Option<Duration>,
    ) -> Option<(T, Option<crate::store::Version>)> {
        let hit = self.probe(key, now, refresh_every).ok();
        self.count(hit.is_some());
        hit
    }

    /// The cached value of `key` and its version if it is still good at `now` (as
    /// [`lookup`](Cache::lookup), without counting); otherwise whether a write of the key
    /// that took its [`turn`](Cache::turn) is in flight (its value may be installed soon).
    pub(crate) fn probe<T: Clone + 'static>(
        &self,
        key: &str,
        now: Instant,
        refresh_every: Option<Duration>,
    ) -> Result<(T, Option<crate::store::Version>), bool> {
        let mut state = self.lock();
        let good = state.lru.get(key).and_then(|cached| {
            let alive = cached.key_expires.is_none_or(|at| now < at);
            let fresh = refresh_every.is_none_or(|every| now < cached.refreshed + every);
            let value = cached.value.downcast_ref::<T>();
            (alive && fresh)
                .then_some(value)
                .flatten()
                .map(|value| (value.clone(), cached.version.clone()))
        });
        match good {
            Some(hit) => Ok(hit),
            None => {
                state.lru.remove(key);
                Err(state.pending.get(key).is_some_and(|p| p.turn_taken))
            }
        }
    }

    /// Counts a load's hit or miss.
    pub(crate) fn count(&self, hit: bool) {
        let counter = match hit {
            true => &self.counters.hits,
            false => &self.counters.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        crate::store::metric::cache(if hit { "hit" } else { "miss" }, 1);
    }

    /// Resolves once the write of `key` in flight now (one that took its
    /// [`turn`](Cache::turn)) has finished, so that a load can take what it installed instead
    /// of sending a read that Redis would run after that write anyway. It waits for that one
    /// write only, never for writes still waiting for their turn.
    pub(crate) fn written(self: &Arc<Self>, key: &str) -> Written {
        Written {
            cache: Arc::clone(self),
            key: key.to_owned(),
            generation: None,
        }
    }

    /// A ticket for a read of `key` about to be sent.
    pub(crate) fn begin_read(self: &Arc<Self>, key: &str) -> Ticket {
        self.begin(key, false)
    }

    /// A ticket for a write of `key` about to be sent: drops the cached value and keeps every
    /// read in flight from installing. It does not wait for its [`turn`](Cache::turn): used
    /// for changes that never install (deletes of many keys, a `GETEX` that moves the TTL),
    /// which a write in flight at the same time then keeps from installing too.
    pub(crate) fn begin_write(self: &Arc<Self>, key: &str) -> Ticket {
        self.begin(key, true)
    }

    /// The ticket of a write of `key`, once no other write of `key` that took its turn in
    /// this cache is in flight (they go one at a time, in the order they asked), so that
    /// each of them can install what it wrote. Dropped while waiting, the future leaves the
    /// queue and lets the next write go.
    pub(crate) fn turn(self: &Arc<Self>, key: &str) -> Turn {
        Turn {
            cache: Arc::clone(self),
            key: key.to_owned(),
            waiter: None,
        }
    }

    fn begin(self: &Arc<Self>, key: &str, write: bool) -> Ticket {
        let mut state = self.lock();
        self.begin_locked(&mut state, key.to_owned(), write, false)
    }

    fn begin_locked(
        self: &Arc<Self>,
        state: &mut State,
        key: String,
        write: bool,
        turn: bool,
    ) -> Ticket {
        let epoch = state.epoch;
        if write {
            state.lru.remove(&key);
        }
        let pending = match state.pending.get_mut(&key) {
            Some(pending) => pending,
            None => state.pending.entry(key.clone()).or_default(),
        };
        if write {
            pending.generation += 1;
        }
        if turn {
            pending.turn_taken = true;
        }
        // Another write of this key in flight: its order against this command is unknown.
        let valid = pending.writers == 0;
        pending.inflight += 1;
        if write {
            pending.writers += 1;
        }
        Ticket {
            cache: Arc::clone(self),
            key,
            generation: pending.generation,
            epoch,
            valid,
            write,
            turn,
            done: false,
        }
    }

    /// Redis (or a write of this process on the same connection) changed `key`.
    pub(crate) fn invalidate(&self, key: &str, from_redis: bool) {
        let mut state = self.lock();
        let cached = state.lru.remove(key);
        let pending = state.pending.get_mut(key).map(|p| p.generation += 1);
        if from_redis && (cached || pending.is_some()) {
            self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            crate::store::metric::cache("invalidation", 1);
        }
    }

    /// Empties the cache; tickets taken before install nothing.
    pub(crate) fn flush(&self) {
        let mut state = self.lock();
        state.lru.clear();
        state.epoch += 1;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        crate::store::metric::cache("flush", 1);
    }

    /// The shape reads last installed, for installing a written value.
    pub(crate) fn shape(&self) -> Option<Shape> {
        self.lock().shape
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let (entries, bytes) = {
            let state = self.lock();
            (state.lru.len() as u64, state.lru.bytes() as u64)
        };
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    /// Ends a ticket: installs `value` when the ticket still holds, else (for a write) drops
    /// whatever another command installed meanwhile.
    fn finish(&self, ticket: &Ticket, value: Option<(Cached, usize, Option<Shape>)>) {
        let mut state = self.lock();
        let (holds, next) = Self::settle(&mut state, ticket);
        if !holds {
            if ticket.write {
                state.lru.remove(&ticket.key);
            }
        } else if let Some((cached, size, shape)) = value {
            if shape.is_some() {
                state.shape = shape;
            }
            let weight = size + 2 * ticket.key.len() + ENTRY_OVERHEAD;
            let evicted = state.lru.insert(&ticket.key, cached, weight);
            if evicted > 0 {
                self.counters
                    .evictions
                    .fetch_add(evicted as u64, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                crate::store::metric::cache("eviction", evicted as u64);
            }
        } else {
            state.lru.remove(&ticket.key);
        }
        drop(state);
        for waker in next {
            waker.wake();
        }
    }

    /// Takes a finished ticket off its key's marker: whether it may install, and the loads
    /// and the write to wake now that its turn is over.
    fn settle(state: &mut State, ticket: &Ticket) -> (bool, Vec<Waker>) {
        let epoch = state.epoch;
        let Some(pending) = state.pending.get_mut(&ticket.key) else {
            return (false, Vec::new());
        };
        let holds = ticket.valid
            && pending.generation == ticket.generation
            && epoch == ticket.epoch
            && (!ticket.write || pending.writers == 1);
        pending.inflight -= 1;
        if ticket.write {
            pending.writers -= 1;
            if !holds {
                pending.generation += 1;
            }
        }
        let mut next = Vec::new();
        if ticket.turn {
            pending.turn_taken = false;
            next = std::mem::take(&mut pending.loads);
            next.extend(pending.next_turn());
        }
        if pending.idle() {
            state.pending.remove(&ticket.key);
        }
        (holds, next)
    }
}

/// A command of one key in flight. Dropped without [`install`](Ticket::install) (an error, a
/// missing key, a cancelled request), it installs nothing; a write's ticket then drops the key.
pub(crate) struct Ticket {
    cache: Arc<Cache>,
    key: String,
    generation: u64,
    epoch: u64,
    valid: bool,
    write: bool,
    /// A write that took its [`Turn`]: finishing it lets the next one go.
    turn: bool,
    done: bool,
}

impl Ticket {
    /// Installs the value the command read or wrote (`size`: its stored bytes), if nothing
    /// changed the key meanwhile; `shape` records how reads decode it.
    pub(crate) fn install(mut self, cached: Cached, size: usize, shape: Option<Shape>) {
        self.done = true;
        self.cache.finish(&self, Some((cached, size, shape)));
    }

    /// The cache this ticket belongs to.
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.cache.finish(self, None);
        }
    }
}

#[cfg(test)]
mod tests;
