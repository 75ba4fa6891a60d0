//! [`RedisStore`]: connect-redis's methods with its options, and the fixes it lacks.
//!
//! - `mod.rs`: the store type, [`Outcome`], and the reads;
//! - `builder.rs`: [`StoreBuilder`], the options;
//! - `absolute.rs`: the absolute timeout's rules (the creation record, the TTL caps);
//! - `breaker.rs`, `guard.rs`: fail-fast ([`FailFast`]), a circuit breaker around every
//!   backend call;
//! - `write.rs`: the one write path: every change of Redis state goes through it;
//! - `conditional.rs`: compare-and-set ([`RedisStore::update_if`], [`RedisStore::modify`]);
//! - `index.rs`, `durable.rs`: per-user sessions, and revokes that wait for replicas
//!   ([`RedisStore::revoke_user_sessions_durably`]);
//! - `scan.rs`: listings, `length` and `clear`;
//! - `raw.rs`: [`RedisStore::raw`], a session's key and bytes as stored, for inspection;
//! - `check.rs`: [`RedisStore::check`], what is wrong with the deployment (the CLI's `doctor`).

mod absolute;
mod breaker;
mod builder;
mod cached;
mod check;
mod conditional;
mod durable;
mod guard;
mod index;
#[cfg(any(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
mod merge;
mod observe;
mod raw;
mod scan;
mod write;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use breaker::{FailFast, FailFastState};
pub use builder::StoreBuilder;
pub use check::{Check, CheckLevel, Diagnosis};
pub use conditional::{Conditional, Version, Versioned, MODIFY_ATTEMPTS};
pub use durable::{Revoked, WaitForReplicas};
pub use index::{UserSession, REVOKE_ROUNDS};
#[cfg(any(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
pub use merge::MERGE_BASES;
#[cfg(feature = "metrics")]
pub mod metric;
#[cfg(feature = "redis")]
pub(crate) use observe::reconnected;
#[cfg(any(feature = "cluster", feature = "sentinel"))]
pub(crate) use observe::retried;
pub use observe::Endpoint;
pub use raw::RawSession;

use crate::backend::{Backend, BackendResult, KeyTtl};
use crate::codec::{Codec, Decoded};
use crate::error::{BackendErrorKind, CodecError, Error, Result};
use crate::id::{Fingerprint, SessionId, StoredId};
use crate::keyspace::Keyspace;
use crate::session::Session;
use observe::Op;
use write::Write;

/// Default key prefix, as connect-redis.
pub const DEFAULT_PREFIX: &str = "sess:";
/// Default time to live: one day, as connect-redis.
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);
/// Default `SCAN COUNT` and batch size of admin operations, as connect-redis.
pub const DEFAULT_SCAN_COUNT: u32 = 100;
/// How much longer than its longest-lived session a per-user index lives: covers the time
/// between the index's and the session's TTL being set (two servers on a cluster) and a
/// sliding read's two commands. When a user's last session ends, its index is gone at most
/// this long after.
pub const INDEX_SLACK: Duration = Duration::from_secs(2);

/// How long after its write an index member whose session is missing, or names another user,
/// is left in place on a backend that writes the index and the session in separate steps
/// ([`Backend::index_in_steps`]: Cluster), where it may be a write between its steps: its
/// session may be about to be written. Older, it is stale and removed. Covers the time
/// between the two steps (one command, with its timeout and retries) and clock differences
/// between the application's instances.
pub const INDEX_PENDING: Duration = Duration::from_secs(5);

/// A function computing a session's time to live (connect-redis's `ttl` function).
pub type TtlFn = Arc<dyn Fn(&Session) -> Duration + Send + Sync>;

/// What a write did. Each method documents which outcomes it can return; more outcomes will
/// come, so match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
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
    /// Destroy: the session existed and was deleted.
    Deleted,
    /// Create (or a write that gives a session its user): the user already has
    /// [`max_sessions_per_user`](StoreBuilder::max_sessions_per_user) sessions and the policy
    /// is [`LimitPolicy::Refuse`](crate::LimitPolicy::Refuse); nothing was written.
    LimitReached,
    /// A revoke's conditional delete: the session was rewritten since it was read (it may
    /// belong to another user now); nothing was deleted.
    Changed,
}

impl Outcome {
    /// The value (or TTL) is now in the store.
    pub fn is_written(self) -> bool {
        self == Outcome::Written
    }
}

/// Redis-backed session store with connect-redis's options and methods.
///
/// Cloning is cheap (an `Arc`); clones share the backend connection.
pub struct RedisStore<B> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    /// The backend behind the fail-fast breaker: every call of the store goes through it.
    backend: guard::Guarded<B>,
    keyspace: Keyspace,
    codec: Codec,
    ttl: TtlFn,
    disable_ttl: bool,
    disable_touch: bool,
    scan_count: u32,
    /// Sliding idle timeout: caps every TTL and is re-armed by every [`RedisStore::load`].
    idle_timeout: Option<Duration>,
    /// Absolute timeout from a session's recorded creation: caps every TTL, sliding reads
    /// included (`absolute.rs`).
    absolute_timeout: Option<Duration>,
    /// The backend's server, for the spans' fields.
    endpoint: Option<Endpoint>,
    /// The session field naming the user a session belongs to (per-user index).
    index_by: Option<String>,
    /// The most sessions a user may have, and what happens past it.
    session_limit: Option<crate::backend::SessionLimit>,
    /// The client-side cache of loads ([`StoreBuilder::cache`]).
    cache: Option<Arc<crate::cache::Cache>>,
    /// What each adapter request in flight loaded, for its save's merge
    /// ([`StoreBuilder::merge_concurrent_saves`]); `None` when merging is off.
    #[cfg(any(
        feature = "tower-sessions-014",
        feature = "tower-sessions-015",
        feature = "actix"
    ))]
    bases: Option<merge::Bases>,
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
            .field("absolute_timeout", &self.inner.absolute_timeout)
            .field("index_by", &self.inner.index_by)
            .field("session_limit", &self.inner.session_limit)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// One session's key, and the id text whose fingerprint names it in logs and errors
/// (computed only when something is logged).
pub(crate) struct Target<'a> {
    key: String,
    id: &'a str,
}

impl Target<'_> {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.id)
    }
}

impl<B: Backend> RedisStore<B> {
    /// A store on `backend` with every option at its default.
    pub fn new(backend: B) -> Self {
        Self::builder(backend).build()
    }

    /// The backend, for operations of your own.
    pub fn backend(&self) -> &B {
        &self.inner.backend.backend
    }

    /// Where the fail-fast breaker is ([`StoreBuilder::fail_fast`]); `None` when it is
    /// disabled. Exported as the `redis_sessions.fail_fast.state` gauge (feature `metrics`).
    pub fn fail_fast_state(&self) -> Option<FailFastState> {
        self.inner.backend.state()
    }

    /// The key layout.
    pub fn keyspace(&self) -> &Keyspace {
        &self.inner.keyspace
    }

    fn target<'a>(&self, id: &'a SessionId) -> Target<'a> {
        Target {
            key: self.inner.keyspace.key(id),
            id: id.as_str(),
        }
    }

    fn listed<'a>(&self, stored: &'a StoredId) -> Target<'a> {
        Target {
            key: self.inner.keyspace.stored_key(stored),
            id: stored.as_str(),
        }
    }

    /// Reads a session (`GET`). `None` when it is missing, expired or empty.
    ///
    /// # Errors
    /// [`Error::Decode`] for a value that is not a session (including a key of another Redis
    /// type); [`Error::Backend`] when Redis fails.
    pub async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        let target = self.target(id);
        self.observed(Op::Get, &target, self.read(&target, None))
            .await
    }

    /// Reads a session and sets its TTL to `ttl` in the same command (`GETEX PX`, Redis 6.2+):
    /// sliding expiry for one round trip and no rewrite.
    ///
    /// A session whose explicit expiry has passed, or past its
    /// [`absolute_timeout`](StoreBuilder::absolute_timeout), is deleted and `None` is returned,
    /// so a refresh never outlives either; under an absolute timeout the TTL is at most what
    /// is left of it.
    ///
    /// # Errors
    /// As [`RedisStore::get`].
    pub async fn get_and_refresh(&self, id: &SessionId, ttl: Duration) -> Result<Option<Session>> {
        let target = self.target(id);
        self.observed(Op::GetAndRefresh, &target, self.read(&target, Some(ttl)))
            .await
    }

    /// Reads a session by a stored id as [`ids`](RedisStore::ids) and [`all`](RedisStore::all)
    /// list it (the hash, when ids are hashed).
    ///
    /// # Errors
    /// As [`RedisStore::get`].
    pub async fn get_listed(&self, stored: &StoredId) -> Result<Option<Session>> {
        let target = self.listed(stored);
        self.observed(Op::GetListed, &target, self.read(&target, None))
            .await
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
    pub(crate) async fn load_as<T: Decoded + Clone + Send + Sync + 'static>(
        &self,
        id: &SessionId,
    ) -> Result<Option<T>> {
        self.load_seen(id, None).await
    }

    /// [`load_as`](RedisStore::load_as) that, with `seen`, also gives the version of the
    /// bytes read (`None` for a load the client-side cache served).
    pub(crate) async fn load_seen<T: Decoded + Clone + Send + Sync + 'static>(
        &self,
        id: &SessionId,
        seen: Option<&mut Option<Version>>,
    ) -> Result<Option<T>> {
        let target = self.target(id);
        let read = async {
            match &self.inner.cache {
                Some(cache) => self.read_cached(cache, &target, seen).await,
                None => self.read_seen(&target, self.inner.idle_timeout, seen).await,
            }
        };
        match self.observed(Op::Load, &target, read).await {
            Err(Error::Decode { .. }) => Ok(None),
            other => other,
        }
    }

    /// `GET`, or `GETEX PX refresh`, then decode; a session past its explicit expiry or its
    /// absolute timeout is deleted (through the write path) and reads as none.
    async fn read<T: Decoded>(
        &self,
        target: &Target<'_>,
        refresh: Option<Duration>,
    ) -> Result<Option<T>> {
        self.read_seen(target, refresh, None).await
    }

    /// [`read`](Self::read); with `seen`, the version of the bytes read is put there.
    async fn read_seen<T: Decoded>(
        &self,
        target: &Target<'_>,
        refresh: Option<Duration>,
        seen: Option<&mut Option<Version>>,
    ) -> Result<Option<T>> {
        let backend = &self.inner.backend;
        let bytes = match refresh {
            Some(ttl) => {
                // GETEX changes the key's TTL: no cache may keep it (Redis stops tracking it).
                let _changing = self.changing(&target.key);
                let bytes = backend.get_ex(&target.key, ttl).await;
                self.changed(&target.key);
                bytes
            }
            None => backend.get(&target.key).await,
        };
        if let (Some(seen), Ok(Some(bytes))) = (seen, &bytes) {
            *seen = Some(Version::of(bytes));
        }
        self.accept(target, bytes, refresh).await
    }

    /// A read's reply: decoded; a session past its explicit expiry is deleted (through the
    /// write path) and reads as none; a refreshed session's user index is kept alive.
    async fn accept<T: Decoded>(
        &self,
        target: &Target<'_>,
        bytes: BackendResult<Option<Vec<u8>>>,
        refresh: Option<Duration>,
    ) -> Result<Option<T>> {
        let Some(bytes) = present(target, bytes)? else {
            return Ok(None);
        };
        observe::value_size(observe::Dir::Read, bytes.len());
        let session: T = self.decode(target, &bytes)?;
        let created = session.created();
        // The steps below are rare, and each is a large future: boxed, so that the load's
        // own future (which every adapter moves around once per request) stays small.
        if session.expires().is_some_and(|t| t <= SystemTime::now()) || self.past_absolute(created)
        {
            let _expired = Box::pin(self.write::<Session>(target, Write::DeleteExpired)).await?;
            return Ok(None);
        }
        if let Some(ttl) = refresh {
            if self.inner.absolute_timeout.is_some() {
                Box::pin(self.cap_sliding_read(target, created, ttl)).await?;
            }
            // The read re-armed the key's TTL: its user's index must live as long.
            if let Some(user) = self
                .inner
                .index_by
                .as_deref()
                .and_then(|field| session.user(field))
            {
                let bound = self.sliding_bound(session.expires(), created);
                Box::pin(self.keep_index_alive(&user, bound, self.lifetime_of(ttl))).await?;
            }
        }
        Ok(Some(session))
    }

    fn decode<T: Decoded>(&self, target: &Target<'_>, bytes: &[u8]) -> Result<T> {
        let bound_to = self.inner.keyspace.suffix(&target.key);
        self.inner.codec.decode_into(bytes, bound_to).map_err(|source| {
            tracing::warn!(session = %target.fingerprint(), error = %source, "undecodable session value");
            Error::Decode {
                fingerprint: target.fingerprint(),
                source,
            }
        })
    }

    /// Whether Redis answers: one cheap round trip ([`Backend::ping`], `PING`), for a
    /// health check endpoint.
    ///
    /// It goes through the fail-fast breaker as every call: while the store fails fast it
    /// answers at once with that error (and after the cooldown it may be the probe).
    ///
    /// # Errors
    /// [`Error::Backend`] with the reason (timed out, unavailable, failing fast,
    /// authentication, ...); [`Error::is_unavailable`] tells an outage from a misconfiguration.
    pub async fn health(&self) -> Result<()> {
        self.observed_many(Op::Health, self.health_unobserved())
            .await
    }

    async fn health_unobserved(&self) -> Result<()> {
        let result = self.inner.backend.ping().await;
        if let Err(e) = &result {
            tracing::debug!(error = %e, "health check failed");
        }
        Ok(result?)
    }

    /// The remaining time to live of a session.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn ttl(&self, id: &SessionId) -> Result<KeyTtl> {
        Ok(self.inner.backend.pttl(&self.target(id).key).await?)
    }

    /// The remaining time to live of a session by a stored id, as the listings return it.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn ttl_listed(&self, stored: &StoredId) -> Result<KeyTtl> {
        Ok(self.inner.backend.pttl(&self.listed(stored).key).await?)
    }
}

/// A read's bytes: `None` for a missing or empty value; a key of another Redis type is a
/// decode error naming the session.
fn present(target: &Target<'_>, bytes: BackendResult<Option<Vec<u8>>>) -> Result<Option<Vec<u8>>> {
    match bytes {
        Ok(Some(bytes)) if !bytes.is_empty() => Ok(Some(bytes)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == BackendErrorKind::WrongType => Err(Error::Decode {
            fingerprint: target.fingerprint(),
            source: CodecError::NotASession {
                format: "redis",
                what: "the key holds another Redis type",
            },
        }),
        Err(e) => Err(e.into()),
    }
}
