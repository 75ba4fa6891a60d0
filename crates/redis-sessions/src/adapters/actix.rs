//! `impl actix_session::storage::SessionStore` (actix-session 0.11, feature `actix`).
//!
//! | actix-session call | store call | Redis |
//! |---|---|---|
//! | `load` | [`RedisStore::load`] | `GET`, or `GETEX PX` with an idle timeout |
//! | `save` (new session) | [`RedisStore::create_unique`] with expiry now + `ttl` | `SET NX PX` |
//! | `update` | [`RedisStore::update`]: only if the session still exists | `SET XX PX` |
//! | `update_ttl` | [`RedisStore::refresh`]: TTL only | `PEXPIRE` |
//! | `delete` | [`RedisStore::destroy`] | `UNLINK` |
//!
//! Differences from actix-session's own `RedisSessionStore`, on purpose:
//! - Keys are `prefix + id` with our 192-bit ids, not 64 unprefixed characters.
//! - Values are one JSON object of the fields (actix hands each field over JSON-encoded as a
//!   string; it is stored as the JSON value itself, not a string nested in JSON), so the CLI,
//!   connect-redis and tower-sessions read the same sessions.
//! - `update` of a session that is gone (a concurrent logout) writes nothing and returns the same
//!   key: "logout wins", logged with the fingerprint; actix's store would create a new session.
//! - A cookie that is not a valid id loads as no session, as does a corrupt value (logged).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use serde_json::Value;

use crate::{Backend, Error, RedisStore, Session, SessionId};

type State = HashMap<String, String>;

/// The one place where store errors become actix-session errors (all three kinds carry an
/// `anyhow::Error`; the kind is chosen by the caller).
fn log_error(e: Error) -> anyhow::Error {
    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store error");
    anyhow::Error::new(e)
}

fn to_duration(ttl: &time::Duration) -> Duration {
    Duration::from_millis(u64::try_from(ttl.whole_milliseconds()).unwrap_or(0))
}

/// actix-session's values are JSON texts: store them as the JSON values they are.
fn to_session(state: State, ttl: Duration) -> Session {
    let data = state
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
            (k, value)
        })
        .collect();
    Session::from_map(data).with_expiry(SystemTime::now() + ttl)
}

fn to_state(session: Session) -> State {
    session
        .into_data()
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
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
        let session = self
            .load(&id)
            .await
            .map_err(|e| LoadError::Other(log_error(e)))?;
        Ok(session.map(to_state))
    }

    async fn save(
        &self,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let session = to_session(session_state, to_duration(ttl));
        let (id, _outcome) = self
            .create_unique(&session, || {
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
        let session = to_session(session_state, to_duration(ttl));
        // `Gone` is "logout wins": logged by the store, nothing written (module docs).
        let _gone_or_written = RedisStore::update(self, &id, &session)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_json_not_nested_strings() {
        let mut state = State::new();
        state.insert("counter".into(), "3".into());
        state.insert("user".into(), "\"ada\"".into());
        state.insert("raw".into(), "not json".into());
        let session = to_session(state, Duration::from_secs(60));
        let json = serde_json::to_value(session.data()).unwrap();
        assert_eq!(json["counter"], 3);
        assert_eq!(json["user"], "ada");
        assert_eq!(json["raw"], "not json");
        let back = to_state(session);
        assert_eq!(back["counter"], "3");
        assert_eq!(back["user"], "\"ada\"");
    }
}
