//! [`RedisStore`]: connect-redis's methods with its options, and the fixes it lacks.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, Stream, StreamExt, TryChunksError, TryStreamExt};

use crate::backend::{Backend, KeyTtl, ScanCursor, SetMode};
#[cfg(feature = "encryption")]
use crate::codec::KeyRing;
use crate::codec::{
    format_of, Codec, Decoded, Encodable, Json, Serializer, DEFAULT_MAX_VALUE_SIZE,
};
use crate::error::{BackendErrorKind, CodecError, Error, Result};
use crate::id::SessionId;
use crate::keyspace::{IdHashing, Keyspace};
use crate::session::Session;

/// Default key prefix, as connect-redis.
pub const DEFAULT_PREFIX: &str = "sess:";
/// Default time to live: one day, as connect-redis.
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);
/// Default `SCAN COUNT` and batch size of admin operations, as connect-redis.
pub const DEFAULT_SCAN_COUNT: u32 = 100;

/// A function computing a session's time to live (connect-redis's `ttl` function).
pub type TtlFn = Arc<dyn Fn(&Session) -> Duration + Send + Sync>;

/// What a write did. Each method documents which outcomes it can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The value was written, or (touch) its TTL refreshed.
    Written,
    /// The session's TTL was zero or less, so it was deleted instead of written.
    Expired,
    /// Update or touch: the session no longer exists (destroyed or expired); nothing was written.
    Gone,
    /// Create: a session with this id already exists; nothing was written.
    Exists,
    /// Touch with `disable_touch` or `disable_ttl`: nothing was sent.
    Skipped,
}

impl Outcome {
    /// The value (or TTL) is now in the store.
    pub fn is_written(self) -> bool {
        self == Outcome::Written
    }
}

/// The one write path: every store write goes through [`RedisStore::write`]. `E` is a
/// [`Session`], or a framework adapter's borrowed shape of one.
enum Write<'a, E = Session> {
    /// `set`: create or overwrite (connect-redis).
    Upsert(&'a E),
    /// `create`: only if absent.
    Create(&'a E),
    /// `update`: only if present.
    Update(&'a E),
    /// `touch`: refresh the TTL only.
    Touch(&'a E),
    /// `refresh`: set the TTL to this duration (capped by the idle timeout).
    Refresh(Duration),
}

/// How long a session is to live, from invariant 2.
enum Lifetime {
    Expire(Duration),
    Persist,
    Dead,
}

/// Redis-backed session store with connect-redis's options and methods.
///
/// Cloning is cheap (an `Arc`); clones share the backend connection.
pub struct RedisStore<B> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    backend: B,
    keyspace: Keyspace,
    codec: Codec,
    ttl: TtlFn,
    disable_ttl: bool,
    disable_touch: bool,
    scan_count: u32,
    /// Sliding idle timeout: caps every TTL and is re-armed by every [`RedisStore::load`].
    idle_timeout: Option<Duration>,
}

impl<B> Clone for RedisStore<B> {
    fn clone(&self) -> Self {
        RedisStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B> fmt::Debug for RedisStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keyspace.prefix())
            .field("hashing", self.inner.keyspace.hashing())
            .field("codec", &self.inner.codec)
            .field("disable_ttl", &self.inner.disable_ttl)
            .field("disable_touch", &self.inner.disable_touch)
            .field("scan_count", &self.inner.scan_count)
            .field("idle_timeout", &self.inner.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStore`]; every option has connect-redis's default.
#[must_use]
pub struct StoreBuilder<B> {
    backend: B,
    prefix: String,
    ttl: TtlFn,
    serializer: Arc<dyn Serializer>,
    /// Which built-in serializer `serializer` is (for reading the other built-in format).
    format: crate::codec::Format,
    disable_ttl: bool,
    disable_touch: bool,
    scan_count: u32,
    idle_timeout: Option<Duration>,
    hashing: IdHashing,
    max_value_size: usize,
    #[cfg(feature = "compression")]
    compress_above: Option<usize>,
    #[cfg(feature = "encryption")]
    keys: Option<KeyRing>,
    #[cfg(feature = "encryption")]
    require_encryption: bool,
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

    /// Serializer (default [`Json`]).
    pub fn serializer<S: Serializer>(mut self, serializer: S) -> Self {
        self.format = format_of::<S>();
        self.serializer = Arc::new(serializer);
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
    /// read-only request costs one Redis command and rewrites nothing. An explicit session
    /// expiry still ends the session at that time (an absolute lifetime).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Hash session ids into keys (default [`IdHashing::Off`]): a Redis dump then holds no
    /// usable session ids. Listings return the hashes; see [`IdHashing`].
    pub fn hash_ids(mut self, hashing: IdHashing) -> Self {
        self.hashing = hashing;
        self
    }

    /// Cap on the size of a stored value and of a serialized session, in bytes (default
    /// [`DEFAULT_MAX_VALUE_SIZE`], 64 KiB). A larger session is refused on write with
    /// [`Error::TooLarge`]; a larger value in Redis is a decode error, read no further.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Compress serialized sessions of at least `threshold` bytes with LZ4 (default: no
    /// compression; [`DEFAULT_COMPRESS_ABOVE`](crate::codec::DEFAULT_COMPRESS_ABOVE) is a good
    /// threshold). A session is stored compressed only when that makes it smaller.
    #[cfg(feature = "compression")]
    pub fn compress_above(mut self, threshold: usize) -> Self {
        self.compress_above = Some(threshold);
        self
    }

    /// Encrypt sessions at rest with the ring's first key (XChaCha20-Poly1305, bound to the
    /// session's key); values encrypted with any key of the ring are read, and so are
    /// unencrypted values (see [`require_encryption`](StoreBuilder::require_encryption)).
    #[cfg(feature = "encryption")]
    pub fn encrypt(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Refuse values that are not encrypted (default `false`, so a store that turns encryption
    /// on keeps reading its old sessions). Turn it on once the old sessions have expired: then
    /// someone who can write to Redis but has no key cannot plant a session.
    #[cfg(feature = "encryption")]
    pub fn require_encryption(mut self, required: bool) -> Self {
        self.require_encryption = required;
        self
    }

    /// The store.
    pub fn build(self) -> RedisStore<B> {
        #[allow(unused_mut, reason = "options behind features")]
        let mut codec = Codec::new(self.serializer, self.format);
        codec.set_max_size(self.max_value_size);
        #[cfg(feature = "compression")]
        codec.set_compress_above(self.compress_above);
        #[cfg(feature = "encryption")]
        codec.set_keys(self.keys, self.require_encryption);
        RedisStore {
            inner: Arc::new(Inner {
                backend: self.backend,
                keyspace: Keyspace::new(self.prefix).with_hashing(self.hashing),
                codec,
                ttl: self.ttl,
                disable_ttl: self.disable_ttl,
                disable_touch: self.disable_touch,
                scan_count: self.scan_count,
                idle_timeout: self.idle_timeout,
            }),
        }
    }
}

impl<B: Backend> RedisStore<B> {
    /// A store on `backend` with every option at its default.
    pub fn new(backend: B) -> Self {
        Self::builder(backend).build()
    }

    /// A builder for a store on `backend`.
    pub fn builder(backend: B) -> StoreBuilder<B> {
        StoreBuilder {
            backend,
            prefix: DEFAULT_PREFIX.to_owned(),
            ttl: Arc::new(|_| DEFAULT_TTL),
            serializer: Arc::new(Json),
            format: format_of::<Json>(),
            disable_ttl: false,
            disable_touch: false,
            scan_count: DEFAULT_SCAN_COUNT,
            idle_timeout: None,
            hashing: IdHashing::Off,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            #[cfg(feature = "compression")]
            compress_above: None,
            #[cfg(feature = "encryption")]
            keys: None,
            #[cfg(feature = "encryption")]
            require_encryption: false,
        }
    }

    /// The backend, for operations of your own.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// The key layout.
    pub fn keyspace(&self) -> &Keyspace {
        &self.inner.keyspace
    }

    /// Reads a session (`GET`). `None` when it is missing, expired or empty.
    ///
    /// # Errors
    /// [`Error::Decode`] for a value that is not a session (including a key of another Redis
    /// type); [`Error::Backend`] when Redis fails.
    pub async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        let key = self.inner.keyspace.key(id);
        let bytes = self.inner.backend.get(&key).await;
        self.read(id, &key, bytes).await
    }

    /// Reads a session and sets its TTL to `ttl` in the same command (`GETEX PX`, Redis 6.2+):
    /// sliding expiry for one round trip and no rewrite.
    ///
    /// A session whose explicit expiry has passed is deleted and `None` is returned, so a
    /// refresh never outlives an absolute expiry.
    ///
    /// # Errors
    /// As [`RedisStore::get`].
    pub async fn get_and_refresh(&self, id: &SessionId, ttl: Duration) -> Result<Option<Session>> {
        let key = self.inner.keyspace.key(id);
        let bytes = self.inner.backend.get_ex(&key, ttl).await;
        self.read(id, &key, bytes).await
    }

    async fn read<T: Decoded>(
        &self,
        id: &SessionId,
        key: &str,
        bytes: std::result::Result<Option<Vec<u8>>, crate::BackendError>,
    ) -> Result<Option<T>> {
        let bytes = match bytes {
            Ok(Some(bytes)) if !bytes.is_empty() => bytes,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == BackendErrorKind::WrongType => {
                return Err(Error::Decode {
                    fingerprint: id.fingerprint(),
                    source: CodecError::NotASession {
                        format: "redis",
                        what: "the key holds another Redis type",
                    },
                })
            }
            Err(e) => return Err(e.into()),
        };
        let session: T = self.decode(id, key, &bytes)?;
        if session.expires().is_some_and(|t| t <= SystemTime::now()) {
            self.inner.backend.delete(&[key.to_owned()]).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// The read path for framework adapters: [`get`](RedisStore::get), or with an
    /// [`idle_timeout`](StoreBuilder::idle_timeout) [`get_and_refresh`](RedisStore::get_and_refresh)
    /// (one command either way).
    ///
    /// Policy for a corrupt value: it is logged (with the session's fingerprint) and treated as
    /// no session, so the user gets a fresh one instead of an error page; the bad value is left in
    /// Redis for inspection until its TTL ends.
    ///
    /// # Errors
    /// [`Error::Backend`] when Redis fails.
    pub async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.load_as(id).await
    }

    /// [`load`](RedisStore::load) into an adapter's own shape of a session, decoded straight
    /// from JSON or MessagePack.
    pub(crate) async fn load_as<T: Decoded>(&self, id: &SessionId) -> Result<Option<T>> {
        let key = self.inner.keyspace.key(id);
        let bytes = match self.inner.idle_timeout {
            Some(idle) => self.inner.backend.get_ex(&key, idle).await,
            None => self.inner.backend.get(&key).await,
        };
        match self.read(id, &key, bytes).await {
            Err(Error::Decode { .. }) => Ok(None),
            other => other,
        }
    }

    /// Creates `session` under a fresh id from `next_id`, drawing again on a collision
    /// ([`Outcome::Exists`]), so an existing session is never overwritten. Returns the caller's
    /// id value and the outcome ([`Outcome::Written`] or [`Outcome::Expired`]).
    ///
    /// # Errors
    /// [`Error::IdCollisions`] when 8 ids in a row collided (a broken random generator), and
    /// the errors of [`RedisStore::create`] and of `next_id`.
    pub async fn create_unique<T>(
        &self,
        session: &Session,
        next_id: impl FnMut() -> Result<(T, SessionId)>,
    ) -> Result<(T, Outcome)> {
        self.create_unique_as(session, next_id).await
    }

    /// [`create_unique`](RedisStore::create_unique) of an adapter's shape of a session.
    pub(crate) async fn create_unique_as<T, E: Encodable>(
        &self,
        session: &E,
        mut next_id: impl FnMut() -> Result<(T, SessionId)>,
    ) -> Result<(T, Outcome)> {
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let (value, id) = next_id()?;
            match self.write(&id, Write::Create(session)).await? {
                Outcome::Exists => continue,
                outcome => return Ok((value, outcome)),
            }
        }
        Err(Error::IdCollisions(ATTEMPTS))
    }

    /// Sets a session's TTL to `ttl` (capped by the idle timeout) without rewriting it
    /// (`PEXPIRE`); the same outcomes as [`RedisStore::touch`]. A zero `ttl` deletes.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn refresh(&self, id: &SessionId, ttl: Duration) -> Result<Outcome> {
        self.write::<Session>(id, Write::Refresh(ttl)).await
    }

    fn decode<T: Decoded>(&self, id: &SessionId, key: &str, bytes: &[u8]) -> Result<T> {
        let bound_to = self.inner.keyspace.suffix(key);
        self.inner.codec.decode_into(bytes, bound_to).map_err(|source| {
            tracing::warn!(session = %id.fingerprint(), error = %source, "undecodable session value");
            Error::Decode {
                fingerprint: id.fingerprint(),
                source,
            }
        })
    }

    /// Writes a session, creating or overwriting it (connect-redis `set`): `SET key value PX ttl`,
    /// plain `SET` with `disable_ttl`, `DEL` when the TTL is zero or less.
    ///
    /// Returns [`Outcome::Written`] or [`Outcome::Expired`]. Prefer [`RedisStore::update`] for
    /// an existing session: `set` after a concurrent `destroy` brings the session back.
    ///
    /// # Errors
    /// [`Error::Encode`] or [`Error::Backend`].
    pub async fn set(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.write(id, Write::Upsert(session)).await
    }

    /// Writes a new session only if no session has this id (`SET NX`).
    ///
    /// Returns [`Outcome::Written`], [`Outcome::Exists`] (nothing written: pick a new id), or
    /// [`Outcome::Expired`] (the TTL was zero or less; nothing written).
    ///
    /// # Errors
    /// [`Error::Encode`] or [`Error::Backend`].
    pub async fn create(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.write(id, Write::Create(session)).await
    }

    /// Overwrites a session only if it still exists (`SET XX`), so a write racing a `destroy`
    /// (logout) never resurrects the session.
    ///
    /// Returns [`Outcome::Written`], [`Outcome::Gone`] (it was destroyed or expired; nothing
    /// written) or [`Outcome::Expired`] (TTL zero or less: deleted).
    ///
    /// # Errors
    /// [`Error::Encode`] or [`Error::Backend`].
    pub async fn update(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.update_as(id, session).await
    }

    /// [`update`](RedisStore::update) of an adapter's shape of a session.
    pub(crate) async fn update_as<E: Encodable>(
        &self,
        id: &SessionId,
        session: &E,
    ) -> Result<Outcome> {
        self.write(id, Write::Update(session)).await
    }

    /// Refreshes a session's TTL without rewriting its value (`PEXPIRE`).
    ///
    /// Returns [`Outcome::Written`], [`Outcome::Gone`], [`Outcome::Expired`] (its explicit
    /// expiry has passed: deleted, as connect-redis's `EXPIRE key -1`) or [`Outcome::Skipped`]
    /// (`disable_touch` or `disable_ttl`).
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn touch(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.write(id, Write::Touch(session)).await
    }

    /// Deletes a session; `true` if it existed.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn destroy(&self, id: &SessionId) -> Result<bool> {
        let key = self.inner.keyspace.key(id);
        Ok(self.inner.backend.delete(&[key]).await? > 0)
    }

    /// Reads a session by a stored id as [`ids`](RedisStore::ids) and [`all`](RedisStore::all)
    /// list it (the hash, when ids are hashed); the same as [`get`](RedisStore::get) without
    /// hashing.
    ///
    /// # Errors
    /// As [`RedisStore::get`].
    pub async fn get_listed(&self, stored: &SessionId) -> Result<Option<Session>> {
        let key = self.inner.keyspace.stored_key(stored);
        let bytes = self.inner.backend.get(&key).await;
        self.read(stored, &key, bytes).await
    }

    /// Deletes a session by a stored id as [`ids`](RedisStore::ids) lists it (the hash, when
    /// ids are hashed); `true` if it existed. The same as [`destroy`](RedisStore::destroy)
    /// without hashing.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn destroy_listed(&self, stored: &SessionId) -> Result<bool> {
        let key = self.inner.keyspace.stored_key(stored);
        Ok(self.inner.backend.delete(&[key]).await? > 0)
    }

    /// The remaining time to live of a session.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn ttl(&self, id: &SessionId) -> Result<KeyTtl> {
        let key = self.inner.keyspace.key(id);
        Ok(self.inner.backend.pttl(&key).await?)
    }

    fn lifetime<E: Encodable>(&self, session: &E) -> Lifetime {
        let ttl = match session.expires() {
            Some(at) => at.duration_since(SystemTime::now()).unwrap_or_default(),
            None => (self.inner.ttl)(&session.to_session()),
        };
        self.lifetime_of(ttl)
    }

    fn lifetime_of(&self, ttl: Duration) -> Lifetime {
        let ttl = self.inner.idle_timeout.map_or(ttl, |idle| ttl.min(idle));
        if ttl < Duration::from_millis(1) {
            Lifetime::Dead
        } else if self.inner.disable_ttl {
            Lifetime::Persist
        } else {
            Lifetime::Expire(ttl)
        }
    }

    /// The single write path. Later versions add index and version checks here, in one atomic
    /// step; callers do not change.
    async fn write<E: Encodable>(&self, id: &SessionId, op: Write<'_, E>) -> Result<Outcome> {
        let inner = &*self.inner;
        let key = inner.keyspace.key(id);
        let (session, mode) = match op {
            Write::Upsert(s) => (s, SetMode::Always),
            Write::Create(s) => (s, SetMode::IfAbsent),
            Write::Update(s) => (s, SetMode::IfPresent),
            Write::Touch(s) => return self.expire(key, self.lifetime(s)).await,
            Write::Refresh(ttl) => return self.expire(key, self.lifetime_of(ttl)).await,
        };
        let ttl = match self.lifetime(session) {
            Lifetime::Dead if mode == SetMode::IfAbsent => return Ok(Outcome::Expired),
            Lifetime::Dead => return self.delete_expired(key).await,
            Lifetime::Expire(ttl) => Some(ttl),
            Lifetime::Persist => None,
        };
        let value = self.encode(id, &key, session)?;
        if inner.backend.set(&key, &value, ttl, mode).await? {
            return Ok(Outcome::Written);
        }
        Ok(match mode {
            SetMode::IfAbsent => {
                tracing::debug!(session = %id.fingerprint(), "create: id already in use");
                Outcome::Exists
            }
            _ => {
                tracing::warn!(session = %id.fingerprint(), "update of a destroyed or expired session dropped (not resurrected)");
                Outcome::Gone
            }
        })
    }

    fn encode<E: Encodable>(&self, id: &SessionId, key: &str, session: &E) -> Result<Vec<u8>> {
        // Under an idle timeout reads re-arm the TTL past the expiry, so the value must keep
        // it as the absolute bound (the adapters ask `expiry_in_value` first: no copy).
        if let Some(at) = session.expires() {
            if self.expiry_in_value() && !session.expiry_stored() {
                let bounded = session.to_session().into_owned().with_expiry(at);
                return self.encode(id, key, &bounded);
            }
        }
        let inner = &*self.inner;
        inner
            .codec
            .encode(session, inner.keyspace.suffix(key))
            .inspect_err(|e| {
                if e.is_too_large() {
                    tracing::warn!(session = %id.fingerprint(), error = %e, "session refused");
                }
            })
    }

    /// Whether a session's expiry must be written into its value: with an idle timeout, whose
    /// reads re-arm the TTL past it. Otherwise the key's TTL is the expiry, and the framework
    /// adapters keep it there alone ([`Session::with_key_expiry`]).
    pub(crate) fn expiry_in_value(&self) -> bool {
        self.inner.idle_timeout.is_some()
    }

    /// The TTL-only writes (touch, refresh).
    async fn expire(&self, key: String, lifetime: Lifetime) -> Result<Outcome> {
        let inner = &*self.inner;
        if inner.disable_touch || inner.disable_ttl {
            return Ok(Outcome::Skipped);
        }
        match lifetime {
            Lifetime::Dead => self.delete_expired(key).await,
            Lifetime::Expire(ttl) => Ok(match inner.backend.pexpire(&key, ttl).await? {
                true => Outcome::Written,
                false => Outcome::Gone,
            }),
            Lifetime::Persist => Ok(Outcome::Skipped),
        }
    }

    async fn delete_expired(&self, key: String) -> Result<Outcome> {
        self.inner.backend.delete(&[key]).await?;
        Ok(Outcome::Expired)
    }

    /// Pages of session ids under the prefix, each id once (a 64-bit keyed hash per id is kept
    /// to drop `SCAN`'s repeats: 8 bytes per session, not the sessions).
    fn id_pages(&self) -> impl Stream<Item = Result<Vec<SessionId>>> + Send + '_ {
        let hasher = RandomState::new();
        let start = (Some(ScanCursor::default()), HashSet::<u64>::new());
        stream::try_unfold(start, move |(cursor, mut seen)| {
            let hasher = hasher.clone();
            async move {
                let Some(cursor) = cursor else {
                    return Ok(None);
                };
                let inner = &*self.inner;
                let page = inner
                    .backend
                    .scan(cursor, inner.keyspace.scan_pattern(), inner.scan_count)
                    .await?;
                let ids = page
                    .keys
                    .iter()
                    .filter_map(|key| inner.keyspace.id_of(key))
                    .filter(|id| seen.insert(hasher.hash_one(id)))
                    .collect();
                Ok(Some((ids, (page.next, seen))))
            }
        })
    }

    /// Every session id under the prefix, streamed page by page (bounded memory).
    ///
    /// Keys under the prefix whose rest is not a valid session id (another application's
    /// `sess:admin:1`) are skipped.
    pub fn ids_stream(&self) -> impl Stream<Item = Result<SessionId>> + Send + '_ {
        self.id_pages()
            .map_ok(|ids| stream::iter(ids.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Every session id under the prefix (connect-redis `ids`). With
    /// [`hash_ids`](StoreBuilder::hash_ids) these are the hashes the keys hold (stored ids):
    /// address them with [`get_listed`](RedisStore::get_listed) and
    /// [`destroy_listed`](RedisStore::destroy_listed).
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn ids(&self) -> Result<Vec<SessionId>> {
        self.ids_stream().try_collect().await
    }

    /// Number of sessions under the prefix (connect-redis `length`).
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn length(&self) -> Result<u64> {
        self.id_pages()
            .try_fold(0u64, |n, ids| async move { Ok(n + ids.len() as u64) })
            .await
    }

    /// Every session with its id, streamed: values are fetched with `MGET` in batches of
    /// `scan_count`. A value that does not decode yields an [`Error::Decode`] item and the
    /// stream goes on; a backend failure ends it.
    pub fn all_stream(&self) -> impl Stream<Item = Result<(SessionId, Session)>> + Send + '_ {
        self.id_batches()
            .and_then(move |ids| self.fetch(ids))
            .map_ok(stream::iter)
            .try_flatten()
    }

    /// Ids in batches of exactly `scan_count` (the last one shorter), across `SCAN` pages: a
    /// page holds about `COUNT` keys, often a few more, so batching page by page would send
    /// two `MGET`/`UNLINK` for many pages (121 instead of 100 for 10,000 sessions).
    fn id_batches(&self) -> impl Stream<Item = Result<Vec<SessionId>>> + Send + '_ {
        self.ids_stream()
            .try_chunks(self.inner.scan_count as usize)
            .map_err(|TryChunksError(_, e)| e)
    }

    async fn fetch(&self, ids: Vec<SessionId>) -> Result<Vec<Result<(SessionId, Session)>>> {
        let inner = &*self.inner;
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(inner.scan_count as usize) {
            let keys: Vec<String> = batch
                .iter()
                .map(|id| inner.keyspace.stored_key(id))
                .collect();
            let values = inner.backend.mget(&keys).await?;
            for ((id, key), value) in batch.iter().zip(&keys).zip(values) {
                // Missing: expired or destroyed since the scan saw it.
                let Some(bytes) = value.filter(|v| !v.is_empty()) else {
                    continue;
                };
                out.push(self.decode(id, key, &bytes).map(|s| (id.clone(), s)));
            }
        }
        Ok(out)
    }

    /// Every session with its id (connect-redis `all`).
    ///
    /// # Errors
    /// [`Error::Backend`], or [`Error::Decode`] for the first value that does not decode (use
    /// [`RedisStore::all_stream`] to skip such values).
    pub async fn all(&self) -> Result<Vec<(SessionId, Session)>> {
        self.all_stream().try_collect().await
    }

    /// Deletes every session under the prefix, in batches of `scan_count` (`UNLINK`), and only
    /// keys its own scan returned. Returns how many were deleted.
    ///
    /// # Errors
    /// [`Error::EmptyPrefix`] when the prefix is empty (that would delete every key of the
    /// database); [`Error::Backend`].
    pub async fn clear(&self) -> Result<u64> {
        let inner = &*self.inner;
        if inner.keyspace.prefix().is_empty() {
            return Err(Error::EmptyPrefix);
        }
        let mut batches = std::pin::pin!(self.id_batches());
        let mut deleted = 0;
        while let Some(batch) = batches.next().await.transpose()? {
            let keys: Vec<String> = batch
                .iter()
                .map(|id| inner.keyspace.stored_key(id))
                .collect();
            deleted += inner.backend.delete(&keys).await?;
        }
        Ok(deleted)
    }
}
