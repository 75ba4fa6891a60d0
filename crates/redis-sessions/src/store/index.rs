//! Per-user sessions: list, count and end the sessions of one user through that user's index
//! (O(that user's sessions), never a scan). The index is written by the one write path
//! (`write.rs`); here it is read, and stale members are removed when found.
//!
//! A member is stale when its session is gone (expired, destroyed by id), names another user
//! or none (its user field changed: the new user's index has it from that write on), or is
//! not a stored id at all. Members are never pruned by their recorded times: a session kept
//! alive by sliding reads stays listed however long ago it was written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::write::{now_ms, Write};
use super::{RedisStore, Target};
use crate::backend::index::{last_used_ms, parse_member_times};
use crate::backend::{Backend, KeyTtl};
use crate::error::Result;
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
    /// When it was first written with this user (recorded once, never moved).
    pub created: SystemTime,
    /// When it was last used: its last write, or under an idle timeout the last read that
    /// re-armed its TTL, whichever is later.
    pub last_used: SystemTime,
}

/// A member checked against its session.
enum Checked {
    Live(StoredId, Session, (u64, u64)),
    /// Gone, another user's, or not a stored id: remove it from the index.
    Stale(String),
    /// The value does not decode: not listed; left in place (and ended by a revoke).
    Corrupt(StoredId),
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
        let (index, checked) = self.check_members(user).await?;
        let now = now_ms();
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for item in checked {
            let (id, session, (created, written)) = match item {
                Checked::Live(id, session, times) => (id, session, times),
                Checked::Stale(member) => {
                    stale.push(member);
                    continue;
                }
                Checked::Corrupt(_) => continue,
            };
            let ttl = self.ttl_listed(&id).await?;
            if ttl == KeyTtl::Missing {
                stale.push(id.as_str().to_owned());
                continue;
            }
            let used = last_used_ms(written, ttl, self.inner.idle_timeout, now);
            out.push(UserSession {
                id,
                session,
                ttl,
                created: at_ms(created),
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
        let (index, checked) = self.check_members(user).await?;
        let mut live = 0;
        let mut stale = Vec::new();
        for item in checked {
            match item {
                Checked::Live(..) => live += 1,
                Checked::Stale(member) => stale.push(member),
                Checked::Corrupt(_) => {}
            }
        }
        self.drop_stale(&index, &stale).await?;
        Ok(live)
    }

    /// Ends one of a user's sessions by its listed id; `false` when it is not a live session
    /// of this user (so a user can never end another user's session through it).
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend).
    pub async fn revoke_user_session(&self, user: &str, id: &StoredId) -> Result<bool> {
        let Some(index) = self.index_key_of(user) else {
            return Ok(false);
        };
        let members = self.inner.backend.index_members(&index).await?;
        if !members.iter().any(|(m, _)| m == id.as_str()) {
            return Ok(false);
        }
        let target = self.listed(id);
        match self.read::<Session>(&target, None).await {
            Ok(Some(session)) if self.user_of(&session).as_deref() == Some(user) => {}
            Ok(_) => {
                self.drop_stale(&index, &[id.as_str().to_owned()]).await?;
                return Ok(false);
            }
            // Indexed under this user and unreadable: no one's usable session.
            Err(e) if e.is_decode() => {}
            Err(e) => return Err(e),
        }
        let outcome = self
            .write::<Session>(&target, Write::DestroyIndexed(&index))
            .await?;
        Ok(outcome == super::Outcome::Deleted)
    }

    /// Ends every session of a user except `except` (the current one: its listed id, e.g.
    /// `store.keyspace().stored_id(&current)`), returning how many ended. Sessions whose
    /// value does not decode are ended too. The index is read again after each round until
    /// it holds no other session, so a session written with this user before that last read
    /// is ended; in-flight updates of ended sessions find them gone and write nothing
    /// ("logout wins").
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend).
    pub async fn revoke_user_sessions(&self, user: &str, except: Option<&StoredId>) -> Result<u64> {
        // A bound on the rounds: only writes racing the revoke (a `set` recreating an ended
        // session) can make another round find sessions again.
        const ROUNDS: usize = 16;
        let mut ended = 0;
        for _ in 0..ROUNDS {
            let (index, checked) = self.check_members(user).await?;
            let mut stale = Vec::new();
            let mut round = 0;
            for item in checked {
                let id = match item {
                    Checked::Live(id, ..) | Checked::Corrupt(id) => id,
                    Checked::Stale(member) => {
                        stale.push(member);
                        continue;
                    }
                };
                if Some(&id) == except {
                    continue;
                }
                round += 1;
                let target = self.listed(&id);
                let outcome = self
                    .write::<Session>(&target, Write::DestroyIndexed(&index))
                    .await?;
                ended += u64::from(outcome == super::Outcome::Deleted);
            }
            self.drop_stale(&index, &stale).await?;
            if round == 0 {
                break;
            }
        }
        Ok(ended)
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
            match (StoredId::parse(&member), parse_member_times(&value)) {
                (Ok(id), Some(times)) => valid.push((id, times)),
                _ => checked.push(Checked::Stale(member)),
            }
        }
        let now = SystemTime::now();
        for batch in valid.chunks(self.inner.scan_count as usize) {
            let keys: Vec<String> = batch
                .iter()
                .map(|(id, _)| self.inner.keyspace.stored_key(id))
                .collect();
            let values = self.inner.backend.mget(&keys).await?;
            for (((id, times), key), value) in batch.iter().zip(keys).zip(values) {
                let Some(bytes) = value.filter(|v| !v.is_empty()) else {
                    checked.push(Checked::Stale(id.as_str().to_owned()));
                    continue;
                };
                let target = Target {
                    key,
                    id: id.as_str(),
                };
                match self.decode::<Session>(&target, &bytes) {
                    Ok(session) if session.expires().is_some_and(|t| t <= now) => {
                        // Past its explicit expiry: a read deletes it; not listed.
                        checked.push(Checked::Stale(id.as_str().to_owned()));
                    }
                    Ok(session) if self.user_of(&session).as_deref() == Some(user) => {
                        checked.push(Checked::Live(id.clone(), session, *times));
                    }
                    Ok(_) => checked.push(Checked::Stale(id.as_str().to_owned())),
                    Err(_) => checked.push(Checked::Corrupt(id.clone())),
                }
            }
        }
        Ok((index, checked))
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
