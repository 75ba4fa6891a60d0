//! [`StoreBuilder`]: the store's options, each with connect-redis's default.

use std::sync::Arc;
use std::time::Duration;

use super::breaker::FailFast;
use super::{Inner, RedisStore, TtlFn, DEFAULT_PREFIX, DEFAULT_SCAN_COUNT, DEFAULT_TTL};
use crate::backend::{Backend, LimitPolicy, SessionLimit};
use crate::cache::{Cache, CacheConfig};
#[cfg(feature = "encryption")]
use crate::codec::KeyRing;
use crate::codec::{format_of, Codec, Serializer};
use crate::keyspace::{IdHashing, Keyspace};
use crate::session::Session;

/// Builds a [`RedisStore`]; every option has connect-redis's default.
#[must_use]
pub struct StoreBuilder<B> {
    backend: B,
    prefix: String,
    ttl: TtlFn,
    /// Serializer, size cap, compression and encryption: held once, in the codec itself.
    codec: Codec,
    disable_ttl: bool,
    disable_touch: bool,
    scan_count: u32,
    idle_timeout: Option<Duration>,
    absolute_timeout: Option<Duration>,
    hashing: IdHashing,
    index_by: Option<String>,
    session_limit: Option<SessionLimit>,
    /// `None`: fail-fast disabled.
    fail_fast: Option<FailFast>,
    cache: Option<CacheConfig>,
    merge_concurrent_saves: bool,
}

impl<B: Backend> RedisStore<B> {
    /// A builder for a store on `backend`.
    pub fn builder(backend: B) -> StoreBuilder<B> {
        StoreBuilder {
            backend,
            prefix: DEFAULT_PREFIX.to_owned(),
            ttl: Arc::new(|_| DEFAULT_TTL),
            codec: Codec::default(),
            disable_ttl: false,
            disable_touch: false,
            scan_count: DEFAULT_SCAN_COUNT,
            idle_timeout: None,
            absolute_timeout: None,
            hashing: IdHashing::Off,
            index_by: None,
            session_limit: None,
            fail_fast: Some(FailFast::new()),
            cache: None,
            merge_concurrent_saves: false,
        }
    }
}

impl<B: Backend> StoreBuilder<B> {
    /// Key prefix (default `"sess:"`). May be empty, but then [`RedisStore::clear`] refuses.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Fixed time to live for sessions without an explicit expiry (default 86,400 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Arc::new(move |_| ttl);
        self
    }

    /// Time to live computed from the session, for sessions without an explicit expiry. A zero
    /// result deletes the session instead of writing it.
    pub fn ttl_with(mut self, ttl: impl Fn(&Session) -> Duration + Send + Sync + 'static) -> Self {
        self.ttl = Arc::new(ttl);
        self
    }

    /// Write sessions without expiry and make `touch` a no-op (default `false`). A session whose
    /// explicit expiry has passed is still deleted on write.
    pub fn disable_ttl(mut self, disable: bool) -> Self {
        self.disable_ttl = disable;
        self
    }

    /// Make `touch` a no-op (default `false`).
    pub fn disable_touch(mut self, disable: bool) -> Self {
        self.disable_touch = disable;
        self
    }

    /// Serializer (default [`Json`](crate::Json)).
    pub fn serializer<S: Serializer>(mut self, serializer: S) -> Self {
        self.codec
            .set_serializer(Arc::new(serializer), format_of::<S>());
        self
    }

    /// `SCAN COUNT` hint and batch size of `MGET`/`UNLINK` in admin operations (default 100;
    /// values below 1 become 1).
    pub fn scan_count(mut self, count: u32) -> Self {
        self.scan_count = count.max(1);
        self
    }

    /// Server-side idle timeout (default none): a session not read or written for this long
    /// expires. Every write's TTL is capped at it, and [`RedisStore::load`] (the read the
    /// framework adapters use) re-arms it in the same command as the read (`GETEX PX`), so a
    /// read-only request costs one Redis command and rewrites nothing. A session's explicit
    /// expiry is then written into its value, and a read after it deletes the session, however
    /// recently it was used.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Absolute timeout (default none; OWASP's "absolute timeout"): a session ends this long
    /// after it was created, however active it is. The store records the creation time once,
    /// in the value (the reserved field `__created`, Unix ms, see
    /// [`Session::created`](crate::Session::created)), at the session's first write, and never
    /// moves it; every write's TTL, and every sliding read's under an
    /// [`idle_timeout`](StoreBuilder::idle_timeout), is the smaller of its own and what is left
    /// of the absolute timeout, and a read past it deletes the session and returns none.
    /// Listings ([`RedisStore::user_sessions`]) show the same creation time.
    ///
    /// A session written before the option was turned on has no record until its next write
    /// (counted from then); until then only its own expiry bounds it.
    pub fn absolute_timeout(mut self, absolute: Duration) -> Self {
        self.absolute_timeout = Some(absolute);
        self
    }

    /// Hash session ids into keys (default [`IdHashing::Off`]): a Redis dump then holds no
    /// usable session ids. Listings return the hashes; see [`IdHashing`].
    pub fn hash_ids(mut self, hashing: IdHashing) -> Self {
        self.hashing = hashing;
        self
    }

    /// Cap on the size of a stored value and of a serialized session, in bytes (default
    /// [`DEFAULT_MAX_VALUE_SIZE`](crate::DEFAULT_MAX_VALUE_SIZE), 64 KiB). A larger session is
    /// refused on write with [`Error::TooLarge`](crate::Error::TooLarge); a larger value in
    /// Redis is a decode error, read no further.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.codec.set_max_size(bytes);
        self
    }

    /// Compress serialized sessions of at least `threshold` bytes with LZ4 (default: no
    /// compression; [`DEFAULT_COMPRESS_ABOVE`](crate::codec::DEFAULT_COMPRESS_ABOVE) is a good
    /// threshold). A session is stored compressed only when that makes it smaller.
    #[cfg(feature = "compression")]
    pub fn compress_above(mut self, threshold: usize) -> Self {
        self.codec.set_compress_above(Some(threshold));
        self
    }

    /// Encrypt sessions at rest with the ring's first key (XChaCha20-Poly1305, bound to the
    /// session's key); values encrypted with any key of the ring are read, and so are
    /// unencrypted values (see [`require_encryption`](StoreBuilder::require_encryption)).
    #[cfg(feature = "encryption")]
    pub fn encrypt(mut self, keys: KeyRing) -> Self {
        self.codec.set_keys(Some(keys));
        self
    }

    /// Refuse values that are not encrypted (default `false`, so a store that turns encryption
    /// on keeps reading its old sessions). Turn it on once the old sessions have expired: then
    /// someone who can write to Redis but has no key cannot plant a session.
    #[cfg(feature = "encryption")]
    pub fn require_encryption(mut self, required: bool) -> Self {
        self.codec.set_require_encryption(required);
        self
    }

    /// Index sessions by the user named in their field `field` (a string, or a number: `42`
    /// and `"42"` are one user), so a user's sessions can be listed, counted and ended
    /// ([`RedisStore::user_sessions`], [`RedisStore::revoke_user_sessions`]) without a scan.
    /// Default: no index. Sessions without the field are not indexed and cost nothing extra;
    /// see the crate docs' "Per-user sessions" for the layout and its guarantees.
    pub fn index_by(mut self, field: impl Into<String>) -> Self {
        self.index_by = Some(field.into());
        self
    }

    /// At most `max` sessions per user (needs [`index_by`](StoreBuilder::index_by); `0`
    /// means no limit, the default). Checked when a session joins its user's index (a login):
    /// [`LimitPolicy::EndLeastRecentlyUsed`] ends the user's least recently used sessions to
    /// make room, [`LimitPolicy::Refuse`] writes nothing and returns
    /// [`Outcome::LimitReached`](crate::Outcome::LimitReached). Atomic with the write on one
    /// server and in memory. On a cluster it runs in steps around the write: once racing
    /// creates for a user have returned, no more than `max` of their sessions are live, but
    /// logins racing at the limit may all be refused, and under an idle timeout racing
    /// logins may end one another (the README's "Per-user sessions" has the details).
    pub fn max_sessions_per_user(mut self, max: u32, policy: LimitPolicy) -> Self {
        self.session_limit = (max > 0).then_some(SessionLimit { max, policy });
        self
    }

    /// Keep up to `capacity` recently loaded sessions in process memory (a client-side cache
    /// with server-assisted invalidation; at most 2 KiB per entry of capacity in bytes):
    /// see [`cache_with`](StoreBuilder::cache_with).
    ///
    /// # Errors
    /// As [`cache_with`](StoreBuilder::cache_with).
    pub fn cache(self, capacity: usize) -> crate::Result<Self> {
        self.cache_with(CacheConfig::new(capacity))
    }

    /// A client-side cache of loads: a [`RedisStore::load`] (every framework adapter's read)
    /// of a session this process read or wrote recently costs no Redis command, and Redis's
    /// invalidation (RESP3 `CLIENT TRACKING`) drops the entry as soon as any client changes,
    /// deletes or expires the key. A save caches what it wrote; saves of one session through
    /// this store take turns, and a load waits for a save of its session in flight, so
    /// overlapping requests of a session cost no extra read. The crate docs' "Client-side
    /// cache" has the exact rules.
    ///
    /// # Errors
    /// [`Error::CacheUnsupported`](crate::Error::CacheUnsupported) when the backend does not
    /// keep client-side tracking on ([`Backend::tracker`] is `None`): use
    /// [`RedisBackend::connect_tracked`](crate::RedisBackend::connect_tracked) (one server),
    /// `SentinelBackend::connect_tracked_with` (Sentinel), `ClusterBackend::connect_tracked_with`
    /// (Cluster: emptied on every topology change, and checked every second, see the crate
    /// docs), or [`connect_tracked`](crate::connect_tracked) with any URL.
    pub fn cache_with(mut self, config: CacheConfig) -> crate::Result<Self> {
        if self.backend.tracker().is_none() {
            return Err(crate::Error::CacheUnsupported);
        }
        self.cache = Some(config);
        Ok(self)
    }

    /// Fail-fast settings (on by default with [`FailFast::new`]: after 5 consecutive timeouts
    /// or connection failures, every call fails at once for 1 s with an error whose
    /// [`is_failing_fast`](crate::Error::is_failing_fast) is true, then one probe call decides
    /// whether Redis is back). A hung Redis then costs a request microseconds instead of the
    /// reply timeout. Only timeouts and connection failures count: a refusal (`NOPERM`,
    /// `READONLY`, a wrong type) or a corrupt value is an answer and resets the count.
    pub fn fail_fast(mut self, settings: FailFast) -> Self {
        self.fail_fast = Some(settings);
        self
    }

    /// Turns fail-fast off: every call waits for Redis (or its timeout), however many failed
    /// before.
    pub fn disable_fail_fast(mut self) -> Self {
        self.fail_fast = None;
        self
    }

    /// Whether a framework adapter's save (tower-sessions 0.14 / 0.15, actix-session) writes
    /// only the top-level fields its request changed or removed, applied onto the session as
    /// it is stored now, so that concurrent requests of one session keep each other's changes
    /// (default `false`: every save writes the record whole, and the last of two concurrent
    /// saves erases the other's changes, the behaviour of every other store).
    ///
    /// Off by default: on Redis 7 the conditional write is a script, which costs Redis about
    /// twice the CPU of a `SET XX` (the README's "Concurrent requests" has the figures). With
    /// a per-user index the write is a script anyway and merging costs nearly nothing more.
    ///
    /// A save without conflict costs what it did (one round trip: a conditional write
    /// instead of `SET XX`); a conflict adds one conditional write per retry. A save whose
    /// load the store did not see in the same tokio task writes the record whole. The
    /// crate docs' "Concurrent requests" has the exact guarantees. The direct API is not
    /// affected: use [`RedisStore::update_if`] or [`RedisStore::modify`] there.
    pub fn merge_concurrent_saves(mut self, merge: bool) -> Self {
        self.merge_concurrent_saves = merge;
        self
    }

    /// Builds the store (feature `metrics`: and describes its metrics to the installed
    /// recorder, [`metric::describe`](crate::metric::describe)).
    pub fn build(self) -> RedisStore<B> {
        #[cfg(feature = "metrics")]
        super::metric::describe();
        let keyspace = Keyspace::new(self.prefix).with_hashing(self.hashing);
        let cache = self.cache.map(|config| {
            let cache = Arc::new(Cache::new(config));
            if let Some(tracker) = self.backend.tracker() {
                tracker.register(&cache, keyspace.prefix());
            }
            cache
        });
        RedisStore {
            inner: Arc::new(Inner {
                endpoint: self.backend.endpoint(),
                backend: super::guard::Guarded::new(self.backend, self.fail_fast),
                keyspace,
                codec: self.codec,
                ttl: self.ttl,
                disable_ttl: self.disable_ttl,
                disable_touch: self.disable_touch,
                scan_count: self.scan_count,
                idle_timeout: self.idle_timeout,
                absolute_timeout: self.absolute_timeout,
                index_by: self.index_by,
                session_limit: self.session_limit,
                cache,
                #[cfg(any(
                    feature = "tower-sessions-014",
                    feature = "tower-sessions-015",
                    feature = "actix"
                ))]
                bases: self.merge_concurrent_saves.then(super::merge::Bases::new),
            }),
        }
    }
}
