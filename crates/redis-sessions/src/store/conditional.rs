//! Compare-and-set for the direct API: [`RedisStore::get_versioned`],
//! [`RedisStore::update_if`] and [`RedisStore::modify`].
//!
//! A [`Version`] of a stored session is the SHA-1 of its stored bytes (the digest the per-user
//! index records too), so the value's format is untouched (connect-redis's, encrypted,
//! compressed). A conditional write is one round trip: a Lua script that compares
//! `redis.sha1hex` of the stored value and writes (folded into the index script for a session
//! with a user), and on a mismatch returns the value stored now, so a retry needs no read.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::observe::{self, Observed, Op};
use super::write::{Lifetime, Write};
use super::{present, Outcome, RedisStore, Target};
use crate::backend::index::value_sha1;
use crate::backend::{Backend, SetMode, ValueSwap};
use crate::codec::Encodable;
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::session::Session;

/// How many times [`RedisStore::modify`] applies its closure before giving up
/// ([`Error::Contended`]).
pub const MODIFY_ATTEMPTS: usize = 16;

/// The version of a stored session: opaque (the lowercase hex SHA-1 of the stored bytes).
/// Two reads give the same version exactly when the stored value did not change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// The version of stored bytes.
    pub(crate) fn of(bytes: &[u8]) -> Version {
        Version(value_sha1(bytes))
    }

    /// A version no stored value has (its digest is not a SHA-1 of anything known).
    #[cfg(any(
        feature = "tower-sessions-014",
        feature = "tower-sessions-015",
        feature = "actix"
    ))]
    pub(crate) fn none() -> Version {
        Version("0".repeat(40))
    }

    /// The version as text (to keep it in a form or a header, for example).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A version from its text as [`as_str`](Version::as_str) gave it; `None` when it is not
    /// 40 hex digits.
    pub fn parse(text: &str) -> Option<Version> {
        (text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Version(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session with the version it was read at.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// The session.
    pub session: Session,
    /// Its version, for [`RedisStore::update_if`].
    pub version: Version,
}

/// What a conditional write ([`RedisStore::update_if`]) did. More outcomes may come: match
/// with a wildcard arm.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Conditional {
    /// The session still had the expected version: the new value is written, with this
    /// version.
    Written(Version),
    /// Another write came first: nothing was written. This is what is stored now (apply your
    /// change to it and write again with its version).
    Conflict(Versioned),
    /// The session no longer exists (destroyed, as by a logout, or expired): nothing was
    /// written, and the session is not brought back.
    Gone,
    /// The session's TTL was zero or less (an explicit expiry that has passed): the session
    /// still had the expected version and now ends (it is written with a 1 ms TTL).
    Expired,
    /// The write gave the session a user who already has
    /// [`max_sessions_per_user`](super::StoreBuilder::max_sessions_per_user) sessions, under
    /// [`LimitPolicy::Refuse`](crate::LimitPolicy::Refuse): nothing was written.
    LimitReached,
}

/// A conditional write's reply, before the current value is decoded.
enum Swap {
    Written(Version),
    Changed(Vec<u8>),
    Gone,
    Expired,
    LimitReached,
}

impl Observed for Result<Swap> {
    fn outcome(&self) -> Option<&'static str> {
        match self {
            Ok(Swap::Written(_)) => Some("written"),
            Ok(Swap::Changed(_)) => Some("conflict"),
            Ok(Swap::Gone) => Some("gone"),
            Ok(Swap::Expired) => Some("expired"),
            Ok(Swap::LimitReached) => Some("limit_reached"),
            Err(Error::TooLarge { .. }) => Some("too_large"),
            Err(_) => None,
        }
    }
    fn error(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

impl<B: Backend> RedisStore<B> {
    /// Reads a session with its [`Version`] (`GET`; the version is computed from the bytes
    /// read, so this costs what [`get`](RedisStore::get) costs). `None` when it is missing,
    /// expired or empty.
    ///
    /// # Errors
    /// As [`RedisStore::get`].
    pub async fn get_versioned(&self, id: &SessionId) -> Result<Option<Versioned>> {
        let target = self.target(id);
        let read = async {
            let bytes = present(&target, self.inner.backend.get(&target.key).await)?;
            match bytes {
                Some(bytes) => self.versioned(&target, &bytes).await,
                None => Ok(None),
            }
        };
        self.observed(Op::Get, &target, read).await
    }

    /// Decodes stored bytes with their version; a session past its explicit expiry is
    /// deleted (as a read does) and is none.
    async fn versioned(&self, target: &Target<'_>, bytes: &[u8]) -> Result<Option<Versioned>> {
        observe::value_size(observe::Dir::Read, bytes.len());
        let session: Session = self.decode(target, bytes)?;
        if session.expires().is_some_and(|t| t <= SystemTime::now()) {
            let _expired = self.write::<Session>(target, Write::DeleteExpired).await?;
            return Ok(None);
        }
        Ok(Some(Versioned {
            session,
            version: Version::of(bytes),
        }))
    }

    /// Writes `session` only if the stored session is still at `version` (compare-and-set):
    /// one round trip, atomic on the server (for a session with a user, together with its
    /// index member, as every write).
    ///
    /// Returns [`Conditional::Written`] with the new version; [`Conditional::Conflict`] with
    /// what is stored now when another write came first (never a silent overwrite);
    /// [`Conditional::Gone`] when the session no longer exists (a logout wins: nothing is
    /// written); [`Conditional::Expired`] or [`Conditional::LimitReached`].
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::TooLarge`], [`Error::Backend`]; [`Error::Decode`] when the
    /// value stored now (a conflict) is not a session.
    pub async fn update_if(
        &self,
        id: &SessionId,
        session: &Session,
        version: &Version,
    ) -> Result<Conditional> {
        self.update_if_as(id, session, version).await
    }

    /// [`update_if`](RedisStore::update_if) of an adapter's shape of a session.
    pub(crate) async fn update_if_as<E: Encodable>(
        &self,
        id: &SessionId,
        session: &E,
        version: &Version,
    ) -> Result<Conditional> {
        let target = self.target(id);
        let ticket = self.changing_in_turn(&target.key).await;
        let swap = self
            .observed(
                Op::UpdateIf,
                &target,
                self.apply_if(&target, session, version),
            )
            .await;
        // Nothing installed: a script's write, which Redis 7 reports back to the writing
        // connection under broadcast tracking (`NOLOOP` covers plain commands only), so the
        // entry would be dropped as soon as installed; the cache just drops the key. Ended
        // before anything below writes the key again (a conflict's value found expired).
        drop(ticket);
        self.changed(&target.key);
        Ok(match swap? {
            Swap::Written(version) => Conditional::Written(version),
            Swap::Changed(bytes) => match self.versioned(&target, &bytes).await? {
                Some(current) => Conditional::Conflict(current),
                None => Conditional::Gone,
            },
            Swap::Gone => {
                tracing::debug!(session = %target.fingerprint(), "conditional write of a destroyed or expired session dropped");
                Conditional::Gone
            }
            Swap::Expired => Conditional::Expired,
            Swap::LimitReached => Conditional::LimitReached,
        })
    }

    async fn apply_if<E: Encodable>(
        &self,
        target: &Target<'_>,
        session: &E,
        version: &Version,
    ) -> Result<Swap> {
        let creation = self
            .creation_for_write(target, session, SetMode::IfPresent)
            .await?;
        let (ttl, ended) = match self.lifetime(session, creation.deadline) {
            // Ended by a write that expires at once, so that it stays conditional.
            Lifetime::Dead => (Some(Duration::from_millis(1)), true),
            Lifetime::Expire(ttl) => (Some(ttl), false),
            Lifetime::Persist => (None, false),
        };
        let value = self.encode(target, session, creation.stamp)?;
        observe::value_size(observe::Dir::Written, value.len());
        let written = || match ended {
            true => Swap::Expired,
            false => Swap::Written(Version::of(&value)),
        };
        let expected = version.as_str();
        if let Some(user) = self.user_of(session) {
            let (outcome, current) = self
                .write_indexed(
                    target,
                    &value,
                    ttl,
                    SetMode::IfPresent,
                    &user,
                    self.sliding_bound_until(session.expires(), creation.deadline),
                    Some(expected),
                )
                .await?;
            return Ok(match (outcome, current) {
                (Outcome::Written, _) => written(),
                (_, Some(current)) => Swap::Changed(current),
                (Outcome::LimitReached, _) => Swap::LimitReached,
                _ => Swap::Gone,
            });
        }
        let swap = self
            .inner
            .backend
            .set_if_value(&target.key, &value, ttl, expected)
            .await?;
        Ok(match swap {
            ValueSwap::Written => written(),
            ValueSwap::Changed(current) => Swap::Changed(current),
            _ => Swap::Gone,
        })
    }

    /// Read-modify-write without lost updates: reads the session, applies `change` to it, and
    /// writes it with [`update_if`](RedisStore::update_if); on a conflict applies `change`
    /// again to the session stored now (from the conflict's reply: no extra read), up to
    /// [`MODIFY_ATTEMPTS`] times. From the second conflict on, it first waits a random pause
    /// (below 1 ms, doubling with each conflict up to 128 ms; feature `redis`) and reads the
    /// session again, so that many writers of one session take turns instead of colliding
    /// again and again. `change` may therefore run more than once: keep it free of
    /// side effects other than on the session.
    ///
    /// Returns `None` when there is no session (missing, or destroyed before a write
    /// succeeded: nothing is written, a logout wins); otherwise what the last `change`
    /// returned and the write's outcome ([`Conditional::Written`], or
    /// [`Conditional::Expired`] when `change` set an expiry that has passed, or
    /// [`Conditional::LimitReached`]; never a conflict).
    ///
    /// Cost without contention: one `GET` and one write (a script), as `get` then `update`.
    ///
    /// # Errors
    /// [`Error::Contended`] after [`MODIFY_ATTEMPTS`] conflicts in a row; the errors of
    /// [`get_versioned`](RedisStore::get_versioned) and [`update_if`](RedisStore::update_if).
    pub async fn modify<R>(
        &self,
        id: &SessionId,
        mut change: impl FnMut(&mut Session) -> R,
    ) -> Result<Option<(R, Conditional)>> {
        let Some(mut current) = self.get_versioned(id).await? else {
            return Ok(None);
        };
        for attempt in 0..MODIFY_ATTEMPTS {
            if attempt > 1 {
                // Collided again: pause, and read what is stored after the pause (the
                // conflict's value is stale by then).
                back_off(attempt - 1).await;
                match self.get_versioned(id).await? {
                    Some(now) => current = now,
                    None => return Ok(None),
                }
            }
            let Versioned {
                mut session,
                version,
            } = current;
            let result = change(&mut session);
            match self.update_if(id, &session, &version).await? {
                Conditional::Conflict(now) => current = now,
                Conditional::Gone => return Ok(None),
                outcome => return Ok(Some((result, outcome))),
            }
        }
        Err(Error::Contended(MODIFY_ATTEMPTS))
    }
}

/// The pause before the retry after `attempt` conflicts: random (full jitter), below
/// 1 ms × 2^(attempt - 1), at most 128 ms.
pub(super) async fn back_off(attempt: usize) {
    #[cfg(feature = "redis")]
    {
        let cap_us = 1_000u64 << (attempt - 1).min(7);
        let mut bytes = [0u8; 8];
        // No randomness: the cap itself (still a pause that grows).
        let wait = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes) % cap_us,
            Err(_) => cap_us,
        };
        tokio::time::sleep(Duration::from_micros(wait)).await;
    }
    #[cfg(not(feature = "redis"))]
    let _ = attempt;
}
