//! `impl SessionStore` for tower-sessions-core 0.14 (feature `tower-sessions-014`) and 0.15
//! (feature `tower-sessions-015`): one shared code path, two thin trait impls.
//!
//! | tower-sessions call | store call | Redis |
//! |---|---|---|
//! | `create` | [`RedisStore::create_unique`]: a fresh id on a collision | `SET NX PX` |
//! | `save` | [`RedisStore::update`]: only if the session still exists | `SET XX PX` |
//! | `load` | [`RedisStore::load`] | `GET`, or `GETEX PX` with an idle timeout |
//! | `delete` | [`RedisStore::destroy`] | `UNLINK` |
//!
//! **Logout wins.** When `save` finds the session gone (a concurrent logout or expiry), nothing
//! is written, a warning with the session's fingerprint is logged, and `save` returns `Ok`: the
//! request completes normally and the next request with that cookie has no session. (Returning an
//! error would turn a user's harmless double-click on "logout" into a 500 page.)
//!
//! **Corrupt values** load as no session (logged); the user gets a fresh one.
//!
//! **Expiry.** The record's `expiry_date` becomes the key's TTL and is not written into the
//! value ([`Session::with_key_expiry`]): tower-sessions computes the expiry afresh from its
//! `Expiry` setting before every save and never reads a loaded one, so storing it would only
//! cost memory. A loaded `Record`'s `expiry_date` is therefore the time of the load. With the
//! store's idle timeout the expiry is stored (the absolute bound the sliding TTL never passes)
//! and loads return it.
//!
//! Errors become tower-sessions' string errors in one place (`to_tower_error`), after the
//! source is logged; no message carries a session id or contents.

use std::collections::HashMap;
use std::time::SystemTime;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;

use crate::codec::{Decoded, Encodable};
use crate::session::{deserialize_fields, serialize_fields, Fields, COOKIE};
use crate::{Backend, Error, RedisStore, Session, SessionId};

/// The parts of a loaded tower-sessions `Record`, identical in 0.14 and 0.15.
struct Parts {
    id: i128,
    data: HashMap<String, Value>,
    expiry: OffsetDateTime,
}

/// tower-sessions' string errors, one variant per kind, as a version-independent value.
enum TowerError {
    Encode(String),
    Decode(String),
    Backend(String),
}

/// The one place where store errors become tower-sessions errors.
fn to_tower_error(e: Error) -> TowerError {
    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store error");
    match e {
        Error::Encode(_) => TowerError::Encode(e.to_string()),
        Error::Decode { .. } => TowerError::Decode(e.to_string()),
        _ => TowerError::Backend(e.to_string()),
    }
}

fn tower_id_text(id: i128) -> String {
    // tower-sessions' `Id` displays as 22 unpadded base64url characters of its little-endian bytes.
    crate::id::base64url(&id.to_le_bytes())
}

fn session_id(id: i128) -> SessionId {
    // 22 base64url characters: a valid id by construction.
    SessionId::from_base64url(tower_id_text(id))
}

/// A record's fields and expiry, written straight from tower-sessions' `HashMap` (no copy into
/// a [`Session`], except for a custom serializer).
struct Outgoing<'a> {
    data: &'a HashMap<String, Value>,
    expires: SystemTime,
    /// The store's [`expiry_in_value`](RedisStore::expiry_in_value).
    stored: bool,
}

impl<'a> Outgoing<'a> {
    fn new<B: Backend>(
        store: &RedisStore<B>,
        data: &'a HashMap<String, Value>,
        expiry: OffsetDateTime,
    ) -> Self {
        Outgoing {
            data,
            expires: SystemTime::from(expiry),
            stored: store.expiry_in_value(),
        }
    }
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let expires = self.stored.then_some(self.expires);
        serialize_fields(serializer, self.data.iter(), self.data.get(COOKIE), expires)
    }
}

impl Encodable for Outgoing<'_> {
    fn expires(&self) -> Option<SystemTime> {
        Some(self.expires)
    }

    fn expiry_stored(&self) -> bool {
        self.stored
    }

    fn to_session(&self) -> Cow<'_, Session> {
        let data = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Cow::Owned(Session::from_map(data).with_expiry_kept(self.expires, self.stored))
    }
}

async fn create<B: Backend>(
    store: &RedisStore<B>,
    first_id: i128,
    session: &Outgoing<'_>,
) -> Result<i128, TowerError> {
    let mut first = Some(first_id);
    let (id, _outcome) = store
        .create_unique_as(session, || {
            let id = match first.take() {
                Some(id) => id,
                None => random_i128()?,
            };
            Ok((id, session_id(id)))
        })
        .await
        .map_err(to_tower_error)?;
    Ok(id)
}

fn random_i128() -> Result<i128, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(i128::from_le_bytes(bytes))
}

async fn save<B: Backend>(
    store: &RedisStore<B>,
    id: i128,
    session: &Outgoing<'_>,
) -> Result<(), TowerError> {
    let id = session_id(id);
    // `Gone` is "logout wins": logged by the store, nothing written, not an error (see above).
    let _gone_or_written = store
        .update_as(&id, session)
        .await
        .map_err(to_tower_error)?;
    Ok(())
}

/// A stored session in tower-sessions' shape, decoded straight into its `HashMap`.
struct Loaded {
    data: HashMap<String, Value>,
    expires: Option<SystemTime>,
}

impl Fields for HashMap<String, Value> {
    type Value = Value;
    fn with_capacity(n: usize) -> Self {
        HashMap::with_capacity(n)
    }
    fn insert(&mut self, key: String, value: Value) {
        HashMap::insert(self, key, value);
    }
    fn cookie(cookie: Value) -> Value {
        cookie
    }
}

impl<'de> Deserialize<'de> for Loaded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (data, expires) = deserialize_fields(deserializer)?;
        Ok(Loaded { data, expires })
    }
}

impl Decoded for Loaded {
    fn from_session(session: Session) -> Self {
        Loaded {
            expires: session.expires(),
            data: session.into_data().into_iter().collect(),
        }
    }

    fn expires(&self) -> Option<SystemTime> {
        self.expires
    }
}

async fn load<B: Backend>(store: &RedisStore<B>, id: i128) -> Result<Option<Parts>, TowerError> {
    let sid = session_id(id);
    let Some(loaded) = store
        .load_as::<Loaded>(&sid)
        .await
        .map_err(to_tower_error)?
    else {
        return Ok(None);
    };
    // Without a stored expiry (the usual case: see the module docs) the load time stands in;
    // tower-sessions recomputes the expiry before every save and never reads this one.
    let expiry = loaded
        .expires
        .map_or_else(OffsetDateTime::now_utc, OffsetDateTime::from);
    Ok(Some(Parts {
        id,
        data: loaded.data,
        expiry,
    }))
}

async fn delete<B: Backend>(store: &RedisStore<B>, id: i128) -> Result<(), TowerError> {
    let sid = session_id(id);
    store.destroy(&sid).await.map_err(to_tower_error)?;
    Ok(())
}

/// The two thin impls: only the crate path differs.
macro_rules! impl_session_store {
    ($core:ident) => {
        impl From<TowerError> for $core::session_store::Error {
            fn from(e: TowerError) -> Self {
                match e {
                    TowerError::Encode(m) => Self::Encode(m),
                    TowerError::Decode(m) => Self::Decode(m),
                    TowerError::Backend(m) => Self::Backend(m),
                }
            }
        }

        #[async_trait::async_trait]
        impl<B: Backend> $core::SessionStore for RedisStore<B> {
            async fn create(
                &self,
                record: &mut $core::session::Record,
            ) -> $core::session_store::Result<()> {
                let session = Outgoing::new(self, &record.data, record.expiry_date);
                record.id = $core::session::Id(create(self, record.id.0, &session).await?);
                Ok(())
            }

            async fn save(
                &self,
                record: &$core::session::Record,
            ) -> $core::session_store::Result<()> {
                let session = Outgoing::new(self, &record.data, record.expiry_date);
                Ok(save(self, record.id.0, &session).await?)
            }

            async fn load(
                &self,
                id: &$core::session::Id,
            ) -> $core::session_store::Result<Option<$core::session::Record>> {
                Ok(load(self, id.0).await?.map(|p| $core::session::Record {
                    id: $core::session::Id(p.id),
                    data: p.data,
                    expiry_date: p.expiry,
                }))
            }

            async fn delete(&self, id: &$core::session::Id) -> $core::session_store::Result<()> {
                Ok(delete(self, id.0).await?)
            }
        }
    };
}

#[cfg(feature = "tower-sessions-014")]
use tower_sessions_core_014 as core014;
#[cfg(feature = "tower-sessions-014")]
impl_session_store!(core014);

#[cfg(feature = "tower-sessions-015")]
use tower_sessions_core_015 as core015;
#[cfg(feature = "tower-sessions-015")]
impl_session_store!(core015);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tower_ids_map_to_valid_session_ids() {
        for id in [0i128, 1, -1, i128::MAX, i128::MIN, 0x0123_4567_89ab_cdef] {
            let text = tower_id_text(id);
            assert_eq!(text.len(), 22);
            assert!(SessionId::parse(session_id(id).as_str()).is_ok());
            #[cfg(feature = "tower-sessions-015")]
            assert_eq!(text, core015::session::Id(id).to_string());
            #[cfg(feature = "tower-sessions-014")]
            assert_eq!(text, core014::session::Id(id).to_string());
        }
    }
}
