//! Concurrent saves of the framework adapters: a save writes the top-level fields its request
//! changed or removed, applied onto the session as it is stored now
//! ([`StoreBuilder::merge_concurrent_saves`](super::StoreBuilder::merge_concurrent_saves)).
//!
//! The frameworks hand `save` only the record. What the request loaded (its **base**: a
//! digest of each top-level field, and the [`Version`] of the bytes read) is kept in a
//! bounded process-local map keyed by the tokio task that loaded it and the session's key:
//! both frameworks run a request's load and save inside that request's one future, and no
//! two requests run in one task at the same time (the crate docs' "Concurrent requests" has
//! the sources). A save takes its task's base out of the map; a later load in the same task
//! replaces it; the least recently used entries go first past [`MERGE_BASES`].
//!
//! A save with a base is a conditional write of the record as it is, guarded by the base's
//! version (one round trip). On a conflict the reply carries the value stored now: the
//! fields the request changed or removed are applied onto it (in Rust, never in Lua) and it
//! is written guarded by its own version, up to [`MODIFY_ATTEMPTS`] times. A save without a
//! base (evicted, loaded in another task, no tokio task) writes the record whole, as before.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::conditional::{back_off, Conditional, Version};
use super::{Outcome, RedisStore};
use crate::backend::Backend;
use crate::cache::lru::Lru;
use crate::codec::{Decoded, Encodable};
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::session::{Kept, Session};

use super::conditional::MODIFY_ATTEMPTS;

/// How many loaded bases the store keeps at most (the least recently used go first; a save
/// whose base went writes the record whole).
pub const MERGE_BASES: usize = 10_000;

/// The bytes bound of the bases (names and digests; about 40 bytes per field).
const MERGE_BASE_BYTES: usize = 32 << 20;

/// A session's fields as a framework holds them: tower-sessions' map of values,
/// actix-session's map of JSON texts.
pub(crate) trait Fielded {
    /// Calls `each` with every top-level field's name and a digest of its value.
    fn digests(&self, hasher: &RandomState, each: &mut dyn FnMut(&str, u64));
    /// Whether the field is there.
    fn has(&self, name: &str) -> bool;
    /// The field's value as JSON (for a merge onto the stored session).
    fn value(&self, name: &str) -> Option<Value>;
}

/// What one request loaded.
struct Base {
    /// Each top-level field's digest.
    fields: HashMap<String, u64>,
    /// The version of the bytes read (the client-side cache keeps it with each entry of a
    /// store that merges); `None` when unknown.
    version: Option<Version>,
}

/// The bases of the requests in flight, by task and key.
pub(crate) struct Bases {
    map: Mutex<Lru<Base>>,
    /// Keyed per process, so that no value can be crafted to collide with another's digest.
    hasher: RandomState,
}

impl Bases {
    pub(crate) fn new() -> Bases {
        Bases {
            map: Mutex::new(Lru::new(MERGE_BASES, MERGE_BASE_BYTES)),
            hasher: RandomState::new(),
        }
    }

    fn digests(&self, fields: &dyn Fielded) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        fields.digests(&self.hasher, &mut |name, digest| {
            out.insert(name.to_owned(), digest);
        });
        out
    }

    fn remember(&self, slot: &str, fields: &dyn Fielded, version: Option<Version>) {
        let fields = self.digests(fields);
        let size = 64 + fields.keys().map(|k| k.len() + 40).sum::<usize>();
        let base = Base { fields, version };
        let _evicted = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slot, base, size);
    }

    fn take(&self, slot: &str) -> Option<Base> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(slot)
    }
}

/// The map's key: the current tokio task and the session's key; `None` outside a task.
fn slot(key: &str) -> Option<String> {
    let task = tokio::task::try_id()?;
    Some(format!("{task}\u{0}{key}"))
}

/// What a save changes, against its base.
struct Changes {
    /// Fields new or with another value.
    changed: Vec<String>,
    /// Fields of the base the record no longer has.
    removed: Vec<String>,
}

/// How a save was written, for the debug log and the `redis_sessions.merges` metric.
#[derive(Clone, Copy)]
enum How {
    /// Nobody wrote since the load: the conditional write of the record applied.
    Fast,
    /// Another save came first: the request's changes were applied onto it.
    Merged,
    /// Cleared (nothing of the base left) or merging off: the record written whole.
    Whole,
    /// No base (evicted, loaded in another task, no tokio task): the record written whole.
    Fallback,
}

impl How {
    fn name(self) -> &'static str {
        match self {
            How::Fast => "fast",
            How::Merged => "merged",
            How::Whole => "whole",
            How::Fallback => "fallback",
        }
    }
}

fn counted(how: How) {
    tracing::trace!(path = how.name(), "adapter save");
    #[cfg(feature = "metrics")]
    metrics::counter!(super::metric::MERGES, "path" => how.name()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = how;
}

impl<B: Backend> RedisStore<B> {
    /// An adapter's load ([`load_as`](RedisStore::load_as)) that keeps what it loaded as
    /// the base of this task's save of the session (`fields`: the loaded session's fields).
    pub(crate) async fn load_based<T: Decoded + Clone + Send + Sync + 'static>(
        &self,
        id: &SessionId,
        fields: impl Fn(&T) -> &dyn Fielded,
    ) -> Result<Option<T>> {
        let Some(bases) = &self.inner.bases else {
            return self.load_as(id).await;
        };
        let Some(slot) = slot(&self.target(id).key) else {
            return self.load_as(id).await;
        };
        let mut version = None;
        let loaded = self.load_seen::<T>(id, Some(&mut version)).await?;
        match &loaded {
            Some(session) => bases.remember(&slot, fields(session), version),
            // Nothing to merge onto: a later save of this id is a fallback.
            None => drop(bases.take(&slot)),
        }
        Ok(loaded)
    }

    /// An adapter's save of an existing session (`session`: the record in the adapter's
    /// shape; `fields`: its fields). Returns [`Outcome::Written`], [`Outcome::Gone`] (a
    /// logout won: nothing written), [`Outcome::Expired`] or [`Outcome::LimitReached`].
    pub(crate) async fn save_merged<E: Encodable>(
        &self,
        id: &SessionId,
        session: &E,
        fields: &(dyn Fielded + Sync),
    ) -> Result<Outcome> {
        let Some(bases) = &self.inner.bases else {
            return self.update_as(id, session).await;
        };
        let target = self.target(id);
        let Some(base) = slot(&target.key).and_then(|slot| bases.take(&slot)) else {
            counted(How::Fallback);
            tracing::debug!(session = %target.fingerprint(), "save without a loaded base: written whole");
            return self.update_as(id, session).await;
        };
        let changes = changes(&base, fields, &bases.hasher);
        if !base.fields.is_empty() && base.fields.keys().all(|name| !fields.has(name)) {
            // Cleared: nothing of the old session may survive.
            counted(How::Whole);
            return self.update_as(id, session).await;
        }
        // A load from a cache entry without a version (one installed before merging was
        // known, or none kept): the first write then reports what is stored now.
        let guard = base.version.unwrap_or_else(Version::none);
        match self.update_if_as(id, session, &guard).await? {
            // Rare, and a large future: boxed, so that the save's own future (moved around
            // once per request by the adapters) stays small.
            conflict @ Conditional::Conflict(_) => {
                Box::pin(self.merge_after_conflict(id, session, fields, &changes, conflict)).await
            }
            other => {
                counted(How::Fast);
                Ok(finished(other))
            }
        }
    }

    /// The rest of [`save_merged`](Self::save_merged) after its first conditional write
    /// found the session changed (`written`): merge the changes onto what is stored and write
    /// again, a bounded number of times.
    async fn merge_after_conflict<E: Encodable>(
        &self,
        id: &SessionId,
        session: &E,
        fields: &(dyn Fielded + Sync),
        changes: &Changes,
        mut written: Conditional,
    ) -> Result<Outcome> {
        let mut how = How::Fast;
        for attempt in 0..MODIFY_ATTEMPTS {
            let mut current = match written {
                Conditional::Conflict(current) => current,
                other => {
                    counted(how);
                    return Ok(finished(other));
                }
            };
            how = How::Merged;
            if attempt > 0 {
                // Collided again: pause, and merge onto what is stored after the pause (the
                // conflict's value is stale by then), as `modify` does.
                back_off(attempt).await;
                match self.get_versioned(id).await? {
                    Some(now) => current = now,
                    None => {
                        counted(how);
                        return Ok(Outcome::Gone);
                    }
                }
            }
            let merged = apply(current.session, changes, fields, session.expires());
            written = self.update_if(id, &merged, &current.version).await?;
        }
        match written {
            Conditional::Conflict(_) => Err(Error::Contended(MODIFY_ATTEMPTS)),
            other => {
                counted(how);
                Ok(finished(other))
            }
        }
    }
}

/// A conditional write's outcome as an adapter's save reports it.
fn finished(outcome: Conditional) -> Outcome {
    match outcome {
        Conditional::Written(_) => Outcome::Written,
        Conditional::Expired => Outcome::Expired,
        Conditional::LimitReached => Outcome::LimitReached,
        _ => Outcome::Gone,
    }
}

fn changes(base: &Base, fields: &(dyn Fielded + Sync), hasher: &RandomState) -> Changes {
    let mut changed = Vec::new();
    fields.digests(hasher, &mut |name, digest| {
        if base.fields.get(name) != Some(&digest) {
            changed.push(name.to_owned());
        }
    });
    let removed = base
        .fields
        .keys()
        .filter(|name| !fields.has(name))
        .cloned()
        .collect();
    Changes { changed, removed }
}

/// The session stored now with this request's changes applied, expiring when the save
/// itself sets (its creation record, if any, is the stored one's).
fn apply(
    current: Session,
    changes: &Changes,
    fields: &(dyn Fielded + Sync),
    expires: Option<std::time::SystemTime>,
) -> Session {
    let mut data = current.into_fields();
    for name in &changes.removed {
        data.remove(name);
    }
    for name in &changes.changed {
        if let Some(value) = fields.value(name) {
            data.insert(name.clone(), value);
        }
    }
    let merged = Session::from_parts(data, None, Kept::Key);
    match expires {
        Some(at) => merged.with_key_expiry(at),
        None => merged,
    }
}

/// A digest of a JSON value: its compact JSON text, hashed.
#[cfg_attr(
    not(any(feature = "tower-sessions-014", feature = "tower-sessions-015")),
    allow(
        dead_code,
        reason = "only tower-sessions' records are digested value by value"
    )
)]
fn digest_value(hasher: &RandomState, value: &Value) -> u64 {
    struct Sink<H>(H);
    impl<H: Hasher> std::io::Write for Sink<H> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Sink(hasher.build_hasher());
    // Writing a `Value` cannot fail (its keys are strings) and the sink never fails.
    let _ = serde_json::to_writer(&mut sink, value);
    sink.0.finish()
}

#[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
impl Fielded for HashMap<String, Value> {
    fn digests(&self, hasher: &RandomState, each: &mut dyn FnMut(&str, u64)) {
        for (name, value) in self {
            each(name, digest_value(hasher, value));
        }
    }
    fn has(&self, name: &str) -> bool {
        self.contains_key(name)
    }
    fn value(&self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }
}

/// actix-session's state: each value's JSON text (a text that is not JSON is a string, as
/// the codec stores it).
#[cfg(feature = "actix")]
impl Fielded for HashMap<String, String> {
    fn digests(&self, hasher: &RandomState, each: &mut dyn FnMut(&str, u64)) {
        for (name, text) in self {
            each(name, hasher.hash_one(text.as_str()));
        }
    }
    fn has(&self, name: &str) -> bool {
        self.contains_key(name)
    }
    fn value(&self, name: &str) -> Option<Value> {
        let text = self.get(name)?;
        Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())))
    }
}
