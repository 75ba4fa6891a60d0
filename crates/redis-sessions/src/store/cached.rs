//! The store's side of the client-side cache ([`StoreBuilder::cache`]): loads served from
//! memory, reads and writes that install what they read or wrote, and the hooks that keep
//! every cache on the connection right when this process changes a key.
//!
//! What is cached: the decoded session of a [`load`](RedisStore::load) (the framework
//! adapters' read), after decryption and decompression, only when it decoded and was not past
//! its stored expiry; and the session a write through the store's write path (`set`,
//! `create`, `update`, the adapters' saves) just wrote, so the next load of a session this
//! process saved is a hit: the adapter's session in memory when a load of the bytes written
//! would give exactly it (JSON values; not with a `cookie` field), else decoded from the bytes
//! written. What drops an entry: Redis's
//! invalidation of its key (any change by any client, expiry and eviction included), any
//! write of the key by this process, the key's TTL running out as far as this process knows,
//! and LRU eviction. What empties the cache: a lost or replaced connection.

use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{RedisStore, Target, Version};
use crate::backend::{Backend, KeyTtl, SetMode};
use crate::cache::{Cache, CacheStats, Cached, Shape, Ticket};
use crate::codec::{Codec, Decoded, Loaded};
use crate::error::{CodecError, Result};

/// A reader's shape (recorded with each install, so a write can install the same shape).
fn shape_of<T: Decoded + Clone + Send + Sync + 'static>() -> Shape {
    Shape {
        id: TypeId::of::<T>(),
        decode: decode_as::<T>,
    }
}

fn decode_as<T: Decoded + Clone + Send + Sync + 'static>(
    codec: &Codec,
    bytes: &[u8],
    bound_to: &[u8],
) -> std::result::Result<Loaded, CodecError> {
    let value: T = codec.decode_into(bytes, bound_to)?;
    let expires = value.expires();
    Ok((Arc::new(value), expires))
}

/// When the key's TTL runs out, measured from before the command was sent (a lower bound).
fn key_expires(sent: Instant, ttl: Option<KeyTtl>) -> Option<Instant> {
    match ttl {
        Some(KeyTtl::Expires(left)) => Some(sent + left),
        Some(KeyTtl::Missing) => Some(sent),
        _ => None,
    }
}

impl<B: Backend> RedisStore<B> {
    /// The cache's counts, or `None` for a store without a cache.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(|c| c.stats())
    }

    /// A load through the cache: a hit when the entry is good (its TTL not run out, and
    /// under an idle timeout refreshed less than the refresh interval ago) and its stored
    /// expiry has not passed; otherwise one tracked read (with the idle timeout's
    /// `PEXPIRE`), whose result is installed if nothing changed the key meanwhile.
    pub(super) async fn read_cached<T: Decoded + Clone + Send + Sync + 'static>(
        &self,
        cache: &Arc<Cache>,
        target: &Target<'_>,
        seen: Option<&mut Option<Version>>,
    ) -> Result<Option<T>> {
        let idle = self.inner.idle_timeout;
        let every = idle.map(|idle| cache.refresh_every(idle));
        let mut found = cache.probe::<T>(&target.key, Instant::now(), every);
        if matches!(found, Err(true)) {
            // A save of this session by this store is in flight: a read sent now would run
            // after it, so take what it installs instead (its reply comes first anyway).
            cache.written(&target.key).await;
            found = cache.probe::<T>(&target.key, Instant::now(), every);
        }
        cache.count(found.is_ok());
        if let Ok((hit, version)) = found {
            if hit.expires().is_none_or(|at| at > SystemTime::now())
                && !self.past_absolute(hit.created())
            {
                if let Some(seen) = seen {
                    *seen = version;
                }
                return Ok(Some(hit));
            }
            // Past its stored expiry or its absolute timeout: the read below finds it so and
            // deletes it.
        }
        let ticket = cache.begin_read(&target.key);
        let sent = Instant::now();
        let (bytes, ttl) = match self.inner.backend.tracked_read(&target.key, idle).await {
            Ok(Some((bytes, ttl))) => (Ok(Some(bytes)), Some(ttl)),
            Ok(None) => (Ok(None), None),
            Err(e) => (Err(e), None),
        };
        let size = bytes
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map_or(0, Vec::len);
        let version = match &bytes {
            Ok(Some(bytes)) if seen.is_some() || self.merges() => Some(Version::of(bytes)),
            _ => None,
        };
        if let Some(seen) = seen {
            seen.clone_from(&version);
        }
        let session: Option<T> = self.accept(target, bytes, idle).await?;
        if let Some(session) = &session {
            let cached = Cached {
                value: Arc::new(session.clone()),
                key_expires: key_expires(sent, ttl),
                refreshed: sent,
                version,
            };
            ticket.install(cached, size, Some(shape_of::<T>()));
        }
        Ok(session)
    }

    /// Before a command that changes `key` and never installs (a delete of many keys, a
    /// `GETEX`): this store's cache drops it and keeps reads and writes in flight from
    /// installing (the ticket, which installs nothing when dropped).
    pub(super) fn changing(&self, key: &str) -> Option<Ticket> {
        self.inner.cache.as_ref().map(|c| c.begin_write(key))
    }

    /// Before a write of one session (the write path, a conditional write): waits until no
    /// other write of `key` by this store is in flight, then as [`changing`](Self::changing).
    /// One write of a key at a time, so that each can install what it wrote.
    pub(super) async fn changing_in_turn(&self, key: &str) -> Option<Ticket> {
        match &self.inner.cache {
            Some(cache) => Some(cache.turn(key).await),
            None => None,
        }
    }

    /// After a command that changed `key`: every other cache on the backend's tracked
    /// connection drops it (Redis does not tell the writing connection).
    pub(super) fn changed(&self, key: &str) {
        if let Some(tracker) = self.inner.backend.tracker() {
            tracker.wrote(key, self.inner.cache.as_deref());
        }
    }

    /// After a command that may have changed keys this process does not know (sessions a
    /// per-user limit ended): every cache on the connection is emptied.
    pub(super) fn changed_unknown(&self) {
        if let Some(tracker) = self.inner.backend.tracker() {
            tracker.flush();
        }
    }

    /// A write of a value for a store with a cache: the tracked `SET`, then the written
    /// session installed in the shape loads use if nothing changed the key meanwhile (see
    /// [`install_written`](Self::install_written); `loaded`: the session in memory, as
    /// [`Encodable::loaded`](crate::codec::Encodable::loaded) gives it). `true` when written.
    pub(super) async fn set_cached(
        &self,
        target: &Target<'_>,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
        ticket: Ticket,
        loaded: impl FnOnce(TypeId) -> Option<Loaded>,
    ) -> Result<bool> {
        let sent = Instant::now();
        let written = self
            .inner
            .backend
            .tracked_set(&target.key, value, ttl, mode)
            .await?;
        if written {
            let version = self.merges().then(|| Version::of(value));
            self.install_written(target, value, ttl, sent, ticket, version, loaded);
        }
        Ok(written)
    }

    /// After a write of `value` sent at `sent`: the written session installed in the shape
    /// loads use if nothing changed the key meanwhile: the session the writer holds in
    /// memory when it has it in that shape exactly as a load of `value` would decode it
    /// (JSON values), else decoded from `value`. No install before a load recorded the
    /// shape, or for a value already past its expiry.
    #[allow(
        clippy::too_many_arguments,
        reason = "one write's parts, passed through"
    )]
    pub(super) fn install_written(
        &self,
        target: &Target<'_>,
        value: &[u8],
        ttl: Option<Duration>,
        sent: Instant,
        ticket: Ticket,
        version: Option<Version>,
        loaded: impl FnOnce(TypeId) -> Option<Loaded>,
    ) {
        let Some(shape) = ticket.cache().shape() else {
            return;
        };
        let codec = &self.inner.codec;
        let in_memory = codec.writes_json().then(|| loaded(shape.id)).flatten();
        let installed = match in_memory {
            Some(loaded) => Ok(loaded),
            None => (shape.decode)(codec, value, self.inner.keyspace.suffix(&target.key)),
        };
        if let Ok((decoded, expires)) = installed {
            if expires.is_none_or(|at| at > SystemTime::now()) {
                let cached = Cached {
                    value: decoded,
                    key_expires: ttl.map(|ttl| sent + ttl),
                    refreshed: sent,
                    version,
                };
                ticket.install(cached, value.len(), None);
            }
        }
    }

    /// Whether the store merges the adapters' concurrent saves (its cache then keeps each
    /// entry's version).
    pub(super) fn merges(&self) -> bool {
        #[cfg(any(
            feature = "tower-sessions-014",
            feature = "tower-sessions-015",
            feature = "actix"
        ))]
        return self.inner.bases.is_some();
        #[cfg(not(any(
            feature = "tower-sessions-014",
            feature = "tower-sessions-015",
            feature = "actix"
        )))]
        false
    }
}
