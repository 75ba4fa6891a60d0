//! `impl actix_session::storage::SessionStore` (actix-session 0.11, feature `actix`).
//!
//! | actix-session call | store call | Redis |
//! |---|---|---|
//! | `load` | [`RedisStore::load`] | `GET`, or `GETEX PX` with an idle timeout |
//! | `save` (new session) | [`RedisStore::create_unique`] with expiry now + `ttl` | `SET NX PX` |
//! | `update` | only if the session still exists, this request's changes merged onto concurrent ones ([`StoreBuilder::merge_concurrent_saves`](crate::StoreBuilder::merge_concurrent_saves)) | a conditional write (script) |
//! | `update_ttl` | [`RedisStore::refresh`]: TTL only | `PEXPIRE` |
//! | `delete` | [`RedisStore::destroy`] | `UNLINK` |
//!
//! Differences from actix-session's own `RedisSessionStore`, on purpose:
//! - Keys are `prefix + id` with our 128-bit ids (22 characters), not 64 unprefixed characters;
//!   the 32-character ids of earlier releases still load.
//! - Values are one JSON object of the fields (actix hands each field over JSON-encoded as a
//!   string; it is stored as the JSON value itself, not a string nested in JSON), so the CLI,
//!   connect-redis and tower-sessions read the same sessions. That shape in bytes is the
//!   codec's (`codec/actix.rs`); this file only translates types.
//! - `update` of a session that is gone (a concurrent logout) writes nothing and returns the same
//!   key: "logout wins", logged with the fingerprint; actix's store would create a new session.
//! - A cookie that is not a valid id loads as no session, as does a corrupt value (logged).
//! - The expiry lives in the key's TTL only ([`Session::with_key_expiry`](crate::Session::with_key_expiry); actix-session keeps
//!   no expiry in the state), except with the store's idle timeout, where the value keeps it as
//!   the bound sliding reads never pass: actix's session TTL from the last write, so it moves
//!   with every write.

use std::time::{Duration, SystemTime};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};

use crate::codec::actix::{ActixIn, ActixOut, State};
use crate::{Backend, Error, RedisStore, SessionId};

/// The one place where store errors become actix-session errors (all three kinds carry an
/// `anyhow::Error`; the kind is chosen by the caller).
fn log_error(e: Error) -> anyhow::Error {
    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store error");
    anyhow::Error::new(e)
}

fn to_duration(ttl: &time::Duration) -> Duration {
    Duration::from_millis(u64::try_from(ttl.whole_milliseconds()).unwrap_or(0))
}

fn outgoing<'a>(state: &'a State, ttl: &time::Duration) -> ActixOut<'a> {
    ActixOut::new(state, SystemTime::now() + to_duration(ttl))
}

fn parse_key(key: &SessionKey) -> Option<SessionId> {
    SessionId::parse(key.as_ref()).ok()
}

fn to_key(id: &SessionId) -> Result<SessionKey, anyhow::Error> {
    SessionKey::try_from(id.as_str().to_owned()).map_err(|e| anyhow::anyhow!("{e}"))
}

impl<B: Backend> SessionStore for RedisStore<B> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let Some(id) = parse_key(session_key) else {
            return Ok(None);
        };
        let loaded = self
            .load_based::<ActixIn>(&id, |l| &l.state)
            .await
            .map_err(|e| LoadError::Other(log_error(e)))?;
        Ok(loaded.map(|l| l.state))
    }

    async fn save(
        &self,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let session = outgoing(&session_state, ttl);
        let (id, _outcome) = self
            .create_unique_as(&session, || {
                let id = SessionId::generate()?;
                Ok((id.clone(), id))
            })
            .await
            .map_err(|e| SaveError::Other(log_error(e)))?;
        to_key(&id).map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let Some(id) = parse_key(&session_key) else {
            // Not one of our ids: it was never stored, so there is nothing to update.
            return Ok(session_key);
        };
        let session = outgoing(&session_state, ttl);
        // `Gone` is "logout wins": logged by the store, nothing written (module docs).
        let _gone_or_written = self
            .save_merged(&id, &session, &session_state)
            .await
            .map_err(|e| UpdateError::Other(log_error(e)))?;
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        if let Some(id) = parse_key(session_key) {
            let _outcome = self
                .refresh(&id, to_duration(ttl))
                .await
                .map_err(log_error)?;
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        if let Some(id) = parse_key(session_key) {
            self.destroy(&id).await.map_err(log_error)?;
        }
        Ok(())
    }
}
