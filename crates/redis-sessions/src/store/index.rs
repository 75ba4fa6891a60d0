//! Per-user sessions: list, count and end the sessions of one user through that user's index
//! (O(that user's sessions), never a scan). The index is written by the one write path
//! (`write.rs`); here it is read, and stale members are removed when found.
//!
//! A member is stale when its session is gone (expired, destroyed by id), names another user
//! or none (its user field changed: the new user's index has it from that write on), or is
//! not a stored id at all. Members are never pruned by their recorded times: a session kept
//! alive by sliding reads stays listed however long ago it was written.
//!
//! A revoke reads each session, checks its user, and deletes it only while it still holds
//! the value it checked ([`Backend::delete_indexed`] compares SHA-1s): a session rewritten
//! in between (moved to another user, say) is read and judged again, in a bounded number of
//! rounds, then [`Error::Contended`](crate::Error::Contended).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::observe::Op;
use super::write::{now_ms, Write};
use super::{Outcome, RedisStore, Target, INDEX_PENDING};
use crate::backend::index::{last_used_ms, value_sha1, IndexMember};
use crate::backend::{Backend, KeyTtl};
use crate::error::BackendErrorKind;
use crate::error::{Error, Result};
use crate::id::StoredId;
use crate::session::Session;

/// One of a user's sessions, as [`RedisStore::user_sessions`] lists it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UserSession {
    /// The session's stored id (the id, or its hash when ids are hashed): pass it to
    /// [`RedisStore::revoke_user_session`] or [`RedisStore::get_listed`].
    pub id: StoredId,
    /// The session's data.
    pub session: Session,
    /// Its remaining time to live.
    pub ttl: KeyTtl,
    /// When it was created: the store's record under an
    /// [`absolute_timeout`](super::StoreBuilder::absolute_timeout) (the one the timeout counts
    /// from, [`Session::created`]), else when it was first written with this user (recorded
    /// once in the index, never moved).
    pub created: SystemTime,
    /// When it was last used: its last write, or under an idle timeout the last read that
    /// re-armed its TTL, whichever is later.
    pub last_used: SystemTime,
}

/// How many times a revoke reads and judges a user's sessions again when they changed under
/// it, before [`Error::Contended`]. Only writes racing the revoke (a session rewritten between
/// its read and its conditional delete, or new logins of the user) need another round.
pub const REVOKE_ROUNDS: usize = 16;

/// A member checked against its session. The SHA-1 is that of the value read: a revoke
/// deletes the session only while it still holds that value.
enum Checked {
    Live(StoredId, Session, IndexMember, String),
    /// Gone, another user's, or not a stored id: remove it from the index.
    Stale(String),
    /// The value does not decode: not listed; left in place (and ended by a revoke).
    Corrupt(StoredId, String),
    /// Missing or another user's, but written less than [`INDEX_PENDING`] ago on a backend
    /// that writes in steps: maybe a write between its steps. Not listed; left in place.
    Pending,
}

impl<B: Backend> RedisStore<B> {
    /// A user's sessions, most recently used first (needs
    /// [`index_by`](super::StoreBuilder::index_by); without it the list is empty). Stale
    /// index members found on the way are removed; a value that does not decode is logged
    /// (with its fingerprint) and left out.
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend).
    pub async fn user_sessions(&self, user: &str) -> Result<Vec<UserSession>> {
        self.observed_many(Op::UserSessions, self.user_sessions_unobserved(user))
            .await
    }

    async fn user_sessions_unobserved(&self, user: &str) -> Result<Vec<UserSession>> {
        let (index, checked) = self.check_members(user).await?;
        let now = now_ms();
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for item in checked {
            let (id, session, member) = match item {
                Checked::Live(id, session, member, _) => (id, session, member),
                Checked::Stale(member) => {
                    stale.push(member);
                    continue;
                }
                Checked::Corrupt(..) | Checked::Pending => continue,
            };
            let ttl = self.ttl_listed(&id).await?;
            if ttl == KeyTtl::Missing {
                stale.push(id.as_str().to_owned());
                continue;
            }
            let used = last_used_ms(member.written_ms, ttl, self.inner.idle_timeout, now);
            let created = session.created().unwrap_or(at_ms(member.created_ms));
            out.push(UserSession {
                id,
                session,
                ttl,
                created,
                last_used: at_ms(used),
            });
        }
        self.drop_stale(&index, &stale).await?;
        out.sort_by_key(|s| std::cmp::Reverse(s.last_used));
        Ok(out)
    }

    /// How many sessions a user has (those [`user_sessions`](RedisStore::user_sessions)
    /// lists).
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend).
    pub async fn user_session_count(&self, user: &str) -> Result<usize> {
        self.observed_many(
            Op::UserSessionCount,
            self.user_session_count_unobserved(user),
        )
        .await
    }

    async fn user_session_count_unobserved(&self, user: &str) -> Result<usize> {
        let (index, checked) = self.check_members(user).await?;
        let mut live = 0;
        let mut stale = Vec::new();
        for item in checked {
            match item {
                Checked::Live(..) => live += 1,
                Checked::Stale(member) => stale.push(member),
                Checked::Corrupt(..) | Checked::Pending => {}
            }
        }
        self.drop_stale(&index, &stale).await?;
        Ok(live)
    }

    /// Ends one of a user's sessions by its listed id; `false` when it is not a live session
    /// of this user (so a user can never end another user's session through it, even one
    /// that moved to another user after it was listed).
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend); [`Error::Contended`](crate::Error::Contended)
    /// when the session was rewritten between each of [`REVOKE_ROUNDS`](crate::REVOKE_ROUNDS) reads and its delete.
    pub async fn revoke_user_session(&self, user: &str, id: &StoredId) -> Result<bool> {
        self.observed_many(
            Op::RevokeUserSession,
            self.revoke_user_session_unobserved(user, id),
        )
        .await
    }

    async fn revoke_user_session_unobserved(&self, user: &str, id: &StoredId) -> Result<bool> {
        let Some(index) = self.index_key_of(user) else {
            return Ok(false);
        };
        let members = self.inner.backend.index_members(&index).await?;
        let Some((_, value)) = members.iter().find(|(m, _)| m == id.as_str()) else {
            return Ok(false);
        };
        let pending = IndexMember::parse(value).is_some_and(|m| self.pending(&m, now_ms()));
        let target = self.listed(id);
        for _ in 0..REVOKE_ROUNDS {
            let Some(sha1) = self.owned_value(user, &target).await? else {
                if !pending {
                    self.drop_stale(&index, &[id.as_str().to_owned()]).await?;
                }
                return Ok(false);
            };
            let destroy = Write::DestroyIndexed {
                index: &index,
                sha1: &sha1,
            };
            match self.write::<Session>(&target, destroy).await? {
                Outcome::Deleted => {
                    super::observe::revoked("revoke_one", 1);
                    return Ok(true);
                }
                Outcome::Changed => continue,
                _ => return Ok(false),
            }
        }
        Err(Error::Contended(REVOKE_ROUNDS))
    }

    /// Ends every session of a user except `except` (the current one: its listed id, e.g.
    /// `store.keyspace().stored_id(&current)`), returning how many ended. Sessions whose
    /// value does not decode are ended too. The index is read again after each round until
    /// it holds no other session, so a session written with this user before that last read
    /// is ended; in-flight updates of ended sessions find them gone and write nothing
    /// ("logout wins"). A session moved to another user after it was read is left alone
    /// (each delete is conditional on the value the revoke checked).
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend); [`Error::Contended`](crate::Error::Contended)
    /// when [`REVOKE_ROUNDS`](crate::REVOKE_ROUNDS) rounds each still found sessions to end (writes of this user
    /// kept racing the revoke): some sessions may still be live, none was skipped silently.
    pub async fn revoke_user_sessions(&self, user: &str, except: Option<&StoredId>) -> Result<u64> {
        self.observed_many(
            Op::RevokeUserSessions,
            self.revoke_user_sessions_unobserved(user, except),
        )
        .await
    }

    async fn revoke_user_sessions_unobserved(
        &self,
        user: &str,
        except: Option<&StoredId>,
    ) -> Result<u64> {
        let mut ended = 0;
        for _ in 0..REVOKE_ROUNDS {
            let (index, checked) = self.check_members(user).await?;
            let mut stale = Vec::new();
            let mut round = 0;
            for item in checked {
                let (id, sha1) = match item {
                    Checked::Live(id, _, _, sha1) | Checked::Corrupt(id, sha1) => (id, sha1),
                    Checked::Stale(member) => {
                        stale.push(member);
                        continue;
                    }
                    Checked::Pending => continue,
                };
                if Some(&id) == except {
                    continue;
                }
                round += 1;
                let destroy = Write::DestroyIndexed {
                    index: &index,
                    sha1: &sha1,
                };
                let outcome = self.write::<Session>(&self.listed(&id), destroy).await?;
                if outcome == Outcome::Deleted {
                    ended += 1;
                    super::observe::revoked("revoke_all", 1);
                }
            }
            self.drop_stale(&index, &stale).await?;
            if round == 0 {
                return Ok(ended);
            }
        }
        Err(Error::Contended(REVOKE_ROUNDS))
    }

    /// The SHA-1 of a session's value when it is a live session of `user` or does not decode
    /// (indexed under this user and unreadable: no one's usable session); `None` when it is
    /// gone, past its expiry, or someone else's.
    async fn owned_value(&self, user: &str, target: &Target<'_>) -> Result<Option<String>> {
        let bytes = match self.inner.backend.get(&target.key).await {
            Ok(Some(bytes)) if !bytes.is_empty() => bytes,
            Ok(_) => return Ok(None),
            // A foreign key of another type is nobody's session.
            Err(e) if e.kind() == BackendErrorKind::WrongType => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let owned = match self.decode::<Session>(target, &bytes) {
            Ok(session) => {
                self.user_of(&session).as_deref() == Some(user)
                    && session.expires().is_none_or(|t| t > SystemTime::now())
                    && !self.past_absolute(session.created())
            }
            Err(_) => true,
        };
        Ok(owned.then(|| value_sha1(&bytes)))
    }

    fn index_key_of(&self, user: &str) -> Option<String> {
        self.inner.index_by.as_ref()?;
        Some(self.inner.keyspace.index_key(user))
    }

    /// The user's index members, each checked against its session (values fetched with
    /// `MGET` in batches of `scan_count`).
    async fn check_members(&self, user: &str) -> Result<(String, Vec<Checked>)> {
        let Some(index) = self.index_key_of(user) else {
            return Ok((String::new(), Vec::new()));
        };
        let members = self.inner.backend.index_members(&index).await?;
        let mut checked = Vec::with_capacity(members.len());
        let mut valid = Vec::with_capacity(members.len());
        for (member, value) in members {
            match (StoredId::parse(&member), IndexMember::parse(&value)) {
                (Ok(id), Some(parsed)) => valid.push((id, parsed)),
                _ => checked.push(Checked::Stale(member)),
            }
        }
        let now = SystemTime::now();
        let now_ms = now_ms();
        for batch in valid.chunks(self.inner.scan_count as usize) {
            let keys: Vec<String> = batch
                .iter()
                .map(|(id, _)| self.inner.keyspace.stored_key(id))
                .collect();
            let values = self.inner.backend.mget(&keys).await?;
            for (((id, member), key), value) in batch.iter().zip(keys).zip(values) {
                let Some(bytes) = value.filter(|v| !v.is_empty()) else {
                    checked.push(match self.pending(member, now_ms) {
                        true => Checked::Pending,
                        false => Checked::Stale(id.as_str().to_owned()),
                    });
                    continue;
                };
                let target = Target {
                    key,
                    id: id.as_str(),
                };
                match self.decode::<Session>(&target, &bytes) {
                    Ok(session)
                        if session.expires().is_some_and(|t| t <= now)
                            || self.past_absolute(session.created()) =>
                    {
                        // Past its explicit expiry or absolute timeout: a read deletes it;
                        // not listed.
                        checked.push(Checked::Stale(id.as_str().to_owned()));
                    }
                    Ok(session) if self.user_of(&session).as_deref() == Some(user) => {
                        let sha1 = value_sha1(&bytes);
                        checked.push(Checked::Live(id.clone(), session, member.clone(), sha1));
                    }
                    Ok(_) if self.pending(member, now_ms) => checked.push(Checked::Pending),
                    Ok(_) => checked.push(Checked::Stale(id.as_str().to_owned())),
                    Err(_) => checked.push(Checked::Corrupt(id.clone(), value_sha1(&bytes))),
                }
            }
        }
        Ok((index, checked))
    }

    /// Whether a member that looks stale may be a write between its steps (see
    /// [`INDEX_PENDING`]): only on a backend that writes the index in steps.
    fn pending(&self, member: &IndexMember, now_ms: u64) -> bool {
        self.inner.backend.index_in_steps()
            && member.written_ms + INDEX_PENDING.as_millis() as u64 > now_ms
    }

    async fn drop_stale(&self, index: &str, stale: &[String]) -> Result<()> {
        if stale.is_empty() {
            return Ok(());
        }
        let _removed = self.inner.backend.index_remove(index, stale).await?;
        Ok(())
    }
}

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
