//! The one write path. Every change of Redis state goes through [`RedisStore::write`] (one
//! session) or [`RedisStore::delete_batch`] (`clear`'s batches): creates, updates, `set`,
//! touches, refreshes, destroys (by id or by listed id), and the delete of a session a read
//! found past its expiry. A per-user index update or a version check added here covers every
//! change.

use std::time::{Duration, SystemTime};

use super::{Op, Outcome, RedisStore, Target};
use crate::backend::{Backend, IndexedDelete, IndexedWrite, SetMode};
use crate::codec::{Encodable, Stamp};
use crate::error::{Error, Result};
use crate::id::{SessionId, StoredId};
use crate::session::{Kept, Session};

/// A change of one session. `E` is a [`Session`], or a framework adapter's borrowed shape of
/// one.
pub(super) enum Write<'a, E = Session> {
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
    /// `destroy`: delete the session. Its index member, if any, stays until a listing of
    /// that user finds the session gone (the store does not read the value to learn its user).
    Destroy,
    /// A revoke: delete the session and its member in this index, only while the session
    /// holds the value with this SHA-1 (the one the revoke read and checked).
    DestroyIndexed {
        /// The user's index.
        index: &'a str,
        /// The hex SHA-1 of the value the revoke checked.
        sha1: &'a str,
    },
    /// A read found the session past its explicit expiry: delete it.
    DeleteExpired,
}

impl<E> Write<'_, E> {
    /// The store operation, for spans and metrics.
    fn name(&self) -> Op {
        match self {
            Write::Upsert(_) => Op::Set,
            Write::Create(_) => Op::Create,
            Write::Update(_) => Op::Update,
            Write::Touch(_) => Op::Touch,
            Write::Refresh(_) => Op::Refresh,
            Write::Destroy | Write::DestroyIndexed { .. } => Op::Destroy,
            Write::DeleteExpired => Op::DeleteExpired,
        }
    }
}

/// Now, in Unix milliseconds.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long a session is to live, from invariant 2.
pub(super) enum Lifetime {
    Expire(Duration),
    Persist,
    Dead,
}

impl<B: Backend> RedisStore<B> {
    /// Writes a session, creating or overwriting it (connect-redis `set`): `SET key value PX ttl`,
    /// plain `SET` with `disable_ttl`, `UNLINK` when the TTL is zero or less.
    ///
    /// Returns [`Outcome::Written`] or [`Outcome::Expired`]. Prefer [`RedisStore::update`] for
    /// an existing session: `set` after a concurrent `destroy` brings the session back.
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::TooLarge`] or [`Error::Backend`].
    pub async fn set(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.write(&self.target(id), Write::Upsert(session)).await
    }

    /// Writes a new session only if no session has this id (`SET NX`).
    ///
    /// Returns [`Outcome::Written`], [`Outcome::Exists`] (nothing written: pick a new id), or
    /// [`Outcome::Expired`] (the TTL was zero or less; nothing written).
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::TooLarge`] or [`Error::Backend`].
    pub async fn create(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.write(&self.target(id), Write::Create(session)).await
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
            match self
                .write(&self.target(&id), Write::Create(session))
                .await?
            {
                Outcome::Exists => continue,
                outcome => return Ok((value, outcome)),
            }
        }
        Err(Error::IdCollisions(ATTEMPTS))
    }

    /// Overwrites a session only if it still exists (`SET XX`), so a write racing a `destroy`
    /// (logout) never resurrects the session.
    ///
    /// Returns [`Outcome::Written`], [`Outcome::Gone`] (it was destroyed or expired; nothing
    /// written) or [`Outcome::Expired`] (TTL zero or less: deleted).
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::TooLarge`] or [`Error::Backend`].
    pub async fn update(&self, id: &SessionId, session: &Session) -> Result<Outcome> {
        self.update_as(id, session).await
    }

    /// [`update`](RedisStore::update) of an adapter's shape of a session.
    pub(crate) async fn update_as<E: Encodable>(
        &self,
        id: &SessionId,
        session: &E,
    ) -> Result<Outcome> {
        self.write(&self.target(id), Write::Update(session)).await
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
        self.write(&self.target(id), Write::Touch(session)).await
    }

    /// Sets a session's TTL to `ttl` (capped by the idle timeout) without rewriting it
    /// (`PEXPIRE`); the same outcomes as [`RedisStore::touch`]. A zero `ttl` deletes.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn refresh(&self, id: &SessionId, ttl: Duration) -> Result<Outcome> {
        self.write::<Session>(&self.target(id), Write::Refresh(ttl))
            .await
    }

    /// Deletes a session (`UNLINK`); `true` if it existed.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn destroy(&self, id: &SessionId) -> Result<bool> {
        let outcome = self
            .write::<Session>(&self.target(id), Write::Destroy)
            .await?;
        Ok(outcome == Outcome::Deleted)
    }

    /// Deletes a session by a stored id as [`ids`](RedisStore::ids) lists it (the hash, when
    /// ids are hashed); `true` if it existed.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn destroy_listed(&self, stored: &StoredId) -> Result<bool> {
        let outcome = self
            .write::<Session>(&self.listed(stored), Write::Destroy)
            .await?;
        Ok(outcome == Outcome::Deleted)
    }

    /// The single write path for one session: [`apply`](Self::apply) inside its span.
    pub(super) async fn write<E: Encodable>(
        &self,
        target: &Target<'_>,
        op: Write<'_, E>,
    ) -> Result<Outcome> {
        let name = op.name();
        let ticket = self.changing_in_turn(&target.key).await;
        let result = self
            .observed(name, target, self.apply(target, op, ticket))
            .await;
        self.changed(&target.key);
        result
    }

    /// The body of [`write`](Self::write). `ticket`: the cache's, for a store with one (a
    /// plain write installs what it wrote; every other change just drops the entry).
    async fn apply<E: Encodable>(
        &self,
        target: &Target<'_>,
        op: Write<'_, E>,
        ticket: Option<crate::cache::Ticket>,
    ) -> Result<Outcome> {
        let backend = &self.inner.backend;
        let (session, mode) = match op {
            Write::Upsert(s) => (s, SetMode::Always),
            Write::Create(s) => (s, SetMode::IfAbsent),
            Write::Update(s) => (s, SetMode::IfPresent),
            // The arms below are not the common save: their steps are boxed, so that the
            // write's own future (moved around once per request by the adapters) stays small.
            Write::Touch(s) if self.inner.absolute_timeout.is_some() && s.created().is_none() => {
                // No record to cap the TTL with: the stored value's, read by the refresh.
                return Box::pin(self.refresh_read(target, self.lifetime(s, None))).await;
            }
            Write::Touch(s) => {
                let created = s.created();
                let lifetime = self.lifetime(s, self.absolute_deadline(created));
                let outcome = self.expire(target, lifetime).await?;
                if let (Outcome::Written, Some(user)) = (outcome, self.user_of(s)) {
                    let bound = self.sliding_bound(s.expires(), created);
                    Box::pin(self.keep_index_alive(&user, bound, self.lifetime(s, None))).await?;
                }
                return Ok(outcome);
            }
            Write::Refresh(ttl)
                if self.inner.index_by.is_some() || self.inner.absolute_timeout.is_some() =>
            {
                return Box::pin(self.refresh_read(target, self.lifetime_of(ttl))).await
            }
            Write::Refresh(ttl) => return self.expire(target, self.lifetime_of(ttl)).await,
            Write::Destroy => {
                let existed = backend.delete(std::slice::from_ref(&target.key)).await? > 0;
                return Ok(if existed {
                    Outcome::Deleted
                } else {
                    Outcome::Gone
                });
            }
            Write::DestroyIndexed { index, sha1 } => {
                let member = self.inner.keyspace.suffix(&target.key);
                let member = std::str::from_utf8(member).unwrap_or_default();
                return Ok(
                    match Box::pin(backend.delete_indexed(&target.key, index, member, sha1)).await?
                    {
                        IndexedDelete::Deleted => Outcome::Deleted,
                        IndexedDelete::Missing => Outcome::Gone,
                        _ => Outcome::Changed,
                    },
                );
            }
            Write::DeleteExpired => return Box::pin(self.delete_expired(target)).await,
        };
        let creation = match self.inner.absolute_timeout {
            Some(_) => Box::pin(self.creation_for_write(target, session, mode)).await?,
            None => super::absolute::Creation::default(),
        };
        let ttl = match self.lifetime(session, creation.deadline) {
            Lifetime::Dead if mode == SetMode::IfAbsent => return Ok(Outcome::Expired),
            Lifetime::Dead => return Box::pin(self.delete_expired(target)).await,
            Lifetime::Expire(ttl) => Some(ttl),
            Lifetime::Persist => None,
        };
        let stamp = self.stamp(session, creation.stamp);
        let value = self.encode_stamped(target, session, stamp)?;
        super::observe::value_size(super::observe::Dir::Written, value.len());
        if let Some(user) = self.user_of(session) {
            let bound = self.sliding_bound_until(session.expires(), creation.deadline);
            let (outcome, _) =
                Box::pin(self.write_indexed(target, &value, ttl, mode, &user, bound, None)).await?;
            return Ok(outcome);
        }
        let written = match ticket {
            Some(ticket) => {
                let loaded = |shape| session.loaded(stamp, shape);
                self.set_cached(target, &value, ttl, mode, ticket, loaded)
                    .await?
            }
            None => backend.set(&target.key, &value, ttl, mode).await?,
        };
        if written {
            return Ok(Outcome::Written);
        }
        Ok(self.not_written(target, mode))
    }

    /// A session with a user: written together with its index member; with `expected`, only
    /// while the stored value has that hex SHA-1 ([`Outcome::Changed`] and the value stored
    /// now otherwise).
    #[allow(
        clippy::too_many_arguments,
        reason = "one write's parts, passed through"
    )]
    pub(super) async fn write_indexed(
        &self,
        target: &Target<'_>,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
        user: &str,
        bound: Option<SystemTime>,
        expected: Option<&str>,
    ) -> Result<(Outcome, Option<Vec<u8>>)> {
        let inner = &*self.inner;
        let index = inner.keyspace.index_key(user);
        let member = std::str::from_utf8(inner.keyspace.suffix(&target.key)).unwrap_or_default();
        let write = IndexedWrite {
            key: &target.key,
            value,
            ttl,
            mode,
            index: &index,
            member,
            prefix: inner.keyspace.prefix(),
            index_ttl: ttl.map(|ttl| self.index_ttl(ttl, bound)),
            now_ms: now_ms(),
            idle: inner.idle_timeout,
            limit: inner.session_limit,
            expected_sha1: expected,
        };
        let reply = inner.backend.write_indexed(&write).await?;
        if reply.evicted > 0 {
            self.changed_unknown();
            super::observe::revoked("session_limit", reply.evicted);
            tracing::info!(
                session = %target.fingerprint(),
                ended = reply.evicted,
                "session limit per user: least recently used sessions ended"
            );
        }
        if reply.refused {
            tracing::info!(session = %target.fingerprint(), "session limit per user: new session refused");
            return Ok((Outcome::LimitReached, None));
        }
        if reply.written {
            return Ok((Outcome::Written, None));
        }
        if let Some(current) = reply.current {
            return Ok((Outcome::Changed, Some(current)));
        }
        Ok((self.not_written(target, mode), None))
    }

    /// How long an index must live after a write of a member whose key lives `ttl`: until
    /// the session's [`sliding_bound`](Self::sliding_bound) too, when it has one (reads
    /// re-arm the key up to it); plus [`INDEX_SLACK`](super::INDEX_SLACK).
    fn index_ttl(&self, ttl: Duration, bound: Option<SystemTime>) -> Duration {
        let mut longest = ttl;
        if let Some(left) = bound.and_then(|at| at.duration_since(SystemTime::now()).ok()) {
            longest = longest.max(left);
        }
        longest + super::INDEX_SLACK
    }

    /// The time sliding reads cannot keep a session alive past: under an idle timeout its
    /// explicit expiry (stored in the value) or its absolute deadline, whichever is first.
    /// `None` when nothing bounds them, and without an idle timeout (then only explicit
    /// refreshes re-arm the key, and each keeps the index alive itself).
    pub(super) fn sliding_bound(
        &self,
        expires: Option<SystemTime>,
        created: Option<SystemTime>,
    ) -> Option<SystemTime> {
        self.sliding_bound_until(expires, self.absolute_deadline(created))
    }

    /// [`sliding_bound`](Self::sliding_bound) with the absolute deadline already known.
    pub(super) fn sliding_bound_until(
        &self,
        expires: Option<SystemTime>,
        deadline: Option<SystemTime>,
    ) -> Option<SystemTime> {
        self.inner.idle_timeout?;
        match (expires, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// After a TTL-only write or a sliding read of a session of `user`: lets the index live
    /// as long as the session now can. Nothing to do when the session has a
    /// [`sliding_bound`](Self::sliding_bound): the index was sized by it at the write.
    pub(super) async fn keep_index_alive(
        &self,
        user: &str,
        bound: Option<SystemTime>,
        lifetime: Lifetime,
    ) -> Result<()> {
        let Lifetime::Expire(ttl) = lifetime else {
            return Ok(());
        };
        if bound.is_some() {
            return Ok(());
        }
        let index = self.inner.keyspace.index_key(user);
        Ok(self
            .inner
            .backend
            .index_extend(&index, self.index_ttl(ttl, None))
            .await?)
    }

    /// `refresh` (and `touch`) that must see the value: with an index (the value names the
    /// user whose index is then kept alive as long: a second command, for sessions with a
    /// user only) or an absolute timeout (the value's record caps the TTL: a second command
    /// only in the session's last `lifetime`). `GETEX PX` refreshes and returns the value.
    async fn refresh_read(&self, target: &Target<'_>, lifetime: Lifetime) -> Result<Outcome> {
        let inner = &*self.inner;
        if inner.disable_touch || inner.disable_ttl {
            return Ok(Outcome::Skipped);
        }
        let Lifetime::Expire(ttl) = lifetime else {
            return self.expire(target, lifetime).await;
        };
        let Some(bytes) = inner.backend.get_ex(&target.key, ttl).await? else {
            return Ok(Outcome::Gone);
        };
        // Refreshed; a value that does not decode names no user and has no record.
        let Ok(session) = self.decode::<Session>(target, &bytes) else {
            return Ok(Outcome::Written);
        };
        let created = session.created();
        if self.past_absolute(created) {
            return self.delete_expired(target).await;
        }
        self.cap_sliding_read(target, created, ttl).await?;
        if let Some(user) = self.user_of(&session) {
            let bound = self.sliding_bound(session.expires(), created);
            self.keep_index_alive(&user, bound, lifetime).await?;
        }
        Ok(Outcome::Written)
    }

    /// The user a session belongs to, when the store indexes by a field.
    pub(super) fn user_of<E: Encodable>(&self, session: &E) -> Option<String> {
        session.user(self.inner.index_by.as_deref()?)
    }

    pub(super) fn not_written(&self, target: &Target<'_>, mode: SetMode) -> Outcome {
        match mode {
            SetMode::IfAbsent => {
                tracing::debug!(session = %target.fingerprint(), "create: id already in use");
                Outcome::Exists
            }
            _ => {
                tracing::warn!(session = %target.fingerprint(), "update of a destroyed or expired session dropped (not resurrected)");
                Outcome::Gone
            }
        }
    }

    /// Deletes keys that `clear`'s own scan returned; the number that existed.
    pub(super) async fn delete_batch(&self, keys: &[String]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let tickets: Vec<_> = keys.iter().filter_map(|k| self.changing(k)).collect();
        let deleted = self.inner.backend.delete(keys).await;
        drop(tickets);
        for key in keys {
            self.changed(key);
        }
        Ok(deleted?)
    }

    /// A session's lifetime from invariant 2, capped at its absolute `deadline` if any.
    pub(super) fn lifetime<E: Encodable>(
        &self,
        session: &E,
        deadline: Option<SystemTime>,
    ) -> Lifetime {
        let now = SystemTime::now();
        let mut ttl = match session.expires() {
            Some(at) => at.duration_since(now).unwrap_or_default(),
            None => (self.inner.ttl)(&session.to_session(Stamp::default())),
        };
        if let Some(deadline) = deadline {
            ttl = ttl.min(deadline.duration_since(now).unwrap_or_default());
        }
        self.lifetime_of(ttl)
    }

    pub(super) fn lifetime_of(&self, ttl: Duration) -> Lifetime {
        let ttl = self.inner.idle_timeout.map_or(ttl, |idle| ttl.min(idle));
        if ttl < Duration::from_millis(1) {
            Lifetime::Dead
        } else if self.inner.disable_ttl {
            Lifetime::Persist
        } else {
            Lifetime::Expire(ttl)
        }
    }

    /// What the value carries of the session's expiry (the rest of the stamp empty):
    /// - a [`Session::with_expiry`] expiry, in `cookie.expires` (express-session's place);
    /// - any other explicit expiry under an idle timeout, whose reads re-arm the TTL past it, as
    ///   the bound a read checks: the compact member `__exp` (also kept, without the option,
    ///   by a [`Session`] read with one, so a value read and written back keeps its form);
    /// - otherwise nothing: the key's TTL alone carries it ([`Session::with_key_expiry`], the
    ///   framework adapters).
    fn expiry_stamp<E: Encodable>(&self, session: &E) -> Stamp {
        let Some(at) = session.expires() else {
            return Stamp::default();
        };
        match session.kept() {
            Kept::Cookie => Stamp {
                expires: Some(at),
                ..Stamp::default()
            },
            Kept::Bound => Stamp {
                bound: Some(at),
                ..Stamp::default()
            },
            Kept::Key => Stamp {
                bound: self.inner.idle_timeout.map(|_| at),
                ..Stamp::default()
            },
        }
    }

    pub(super) fn encode<E: Encodable>(
        &self,
        target: &Target<'_>,
        session: &E,
        created: Option<u64>,
    ) -> Result<Vec<u8>> {
        self.encode_stamped(target, session, self.stamp(session, created))
    }

    /// What the store writes into a value of `session` besides its fields: its expiry where
    /// [`expiry_stamp`](Self::expiry_stamp) keeps it, and the creation record `created`.
    fn stamp<E: Encodable>(&self, session: &E, created: Option<u64>) -> Stamp {
        Stamp {
            created,
            ..self.expiry_stamp(session)
        }
    }

    /// [`encode`](Self::encode) with the stamp made.
    fn encode_stamped<E: Encodable>(
        &self,
        target: &Target<'_>,
        session: &E,
        stamp: Stamp,
    ) -> Result<Vec<u8>> {
        let inner = &*self.inner;
        let bound_to = inner.keyspace.suffix(&target.key);
        inner
            .codec
            .encode(session, stamp, bound_to)
            .inspect_err(|e| {
                if e.is_too_large() {
                    tracing::warn!(session = %target.fingerprint(), error = %e, "session refused");
                }
            })
    }

    /// The TTL-only writes (touch, refresh).
    async fn expire(&self, target: &Target<'_>, lifetime: Lifetime) -> Result<Outcome> {
        let inner = &*self.inner;
        if inner.disable_touch || inner.disable_ttl {
            return Ok(Outcome::Skipped);
        }
        match lifetime {
            Lifetime::Dead => self.delete_expired(target).await,
            Lifetime::Expire(ttl) => Ok(match inner.backend.pexpire(&target.key, ttl).await? {
                true => Outcome::Written,
                false => Outcome::Gone,
            }),
            Lifetime::Persist => Ok(Outcome::Skipped),
        }
    }

    pub(super) async fn delete_expired(&self, target: &Target<'_>) -> Result<Outcome> {
        self.inner
            .backend
            .delete(std::slice::from_ref(&target.key))
            .await?;
        Ok(Outcome::Expired)
    }
}
