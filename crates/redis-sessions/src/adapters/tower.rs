//! `impl SessionStore` for tower-sessions-core 0.14 (feature `tower-sessions-014`) and 0.15
//! (feature `tower-sessions-015`): one shared code path, two thin trait impls.
//!
//! | tower-sessions call | store call | Redis |
//! |---|---|---|
//! | `create` | [`RedisStore::create_unique`]: a fresh id on a collision | `SET NX PX` |
//! | `save` | only if the session still exists, this request's changes merged onto concurrent ones ([`StoreBuilder::merge_concurrent_saves`](crate::StoreBuilder::merge_concurrent_saves)) | a conditional write (script) |
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
//! value ([`Session::with_key_expiry`](crate::Session::with_key_expiry)): tower-sessions computes the expiry afresh from its
//! `Expiry` setting before every save and never reads a loaded one, so storing it would only
//! cost memory. A loaded `Record`'s `expiry_date` is therefore the time of the load. With the
//! store's idle timeout the expiry is stored (the bound the sliding TTL never passes, set afresh
//! by each save from tower-sessions' `Expiry`) and loads return it.
//!
//! **Ids** are tower-sessions' own: 128 random bits, 22 base64url characters (the size of the
//! store's own ids, from [`SessionId::generate`](crate::SessionId::generate)).
//!
//! Errors become tower-sessions' string errors in one place (`to_tower_error`), after the
//! source is logged; no message carries a session id or contents. The shape of a record in
//! bytes is the codec's (`codec/tower.rs`); this file only translates types.

use time::OffsetDateTime;

use crate::codec::tower::{TowerIn, TowerOut};
use crate::id::{random_i128, tower_session_id};
use crate::{Backend, Error, RedisStore};

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
        // A session over `max_value_size` cannot be encoded within the limit: not Redis's
        // failure, so not a backend error (which an app would answer with "try again").
        Error::Encode(_) | Error::TooLarge { .. } => TowerError::Encode(e.to_string()),
        Error::Decode { .. } => TowerError::Decode(e.to_string()),
        _ => TowerError::Backend(e.to_string()),
    }
}

fn outgoing(
    data: &std::collections::HashMap<String, serde_json::Value>,
    expiry: OffsetDateTime,
) -> TowerOut<'_> {
    TowerOut {
        data,
        expires: expiry.into(),
    }
}

/// Creates the record under its id, or a fresh one on a collision.
async fn create<B: Backend>(
    store: &RedisStore<B>,
    first_id: i128,
    session: &TowerOut<'_>,
) -> Result<i128, TowerError> {
    let mut first = Some(first_id);
    let (id, _outcome) = store
        .create_unique_as(session, || {
            let id = match first.take() {
                Some(id) => id,
                None => random_i128()?,
            };
            Ok((id, tower_session_id(id)))
        })
        .await
        .map_err(to_tower_error)?;
    Ok(id)
}

async fn save<B: Backend>(
    store: &RedisStore<B>,
    id: i128,
    session: &TowerOut<'_>,
) -> Result<(), TowerError> {
    // `Gone` is "logout wins": logged by the store, nothing written, not an error (see above).
    let _gone_or_written = store
        .save_merged(&tower_session_id(id), session, session.data)
        .await
        .map_err(to_tower_error)?;
    Ok(())
}

/// The record's data and expiry. Without a stored expiry (the usual case: see the module docs)
/// the load time stands in; tower-sessions recomputes the expiry before every save and never
/// reads this one.
async fn load<B: Backend>(
    store: &RedisStore<B>,
    id: i128,
) -> Result<
    Option<(
        std::collections::HashMap<String, serde_json::Value>,
        OffsetDateTime,
    )>,
    TowerError,
> {
    let loaded = store
        .load_based::<TowerIn>(&tower_session_id(id), |l| &l.data)
        .await
        .map_err(to_tower_error)?;
    Ok(loaded.map(|l| {
        let expiry = l
            .expires
            .map_or_else(OffsetDateTime::now_utc, OffsetDateTime::from);
        (l.data, expiry)
    }))
}

async fn delete<B: Backend>(store: &RedisStore<B>, id: i128) -> Result<(), TowerError> {
    store
        .destroy(&tower_session_id(id))
        .await
        .map_err(to_tower_error)?;
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
                let session = outgoing(&record.data, record.expiry_date);
                record.id = $core::session::Id(create(self, record.id.0, &session).await?);
                Ok(())
            }

            async fn save(
                &self,
                record: &$core::session::Record,
            ) -> $core::session_store::Result<()> {
                let session = outgoing(&record.data, record.expiry_date);
                Ok(save(self, record.id.0, &session).await?)
            }

            async fn load(
                &self,
                id: &$core::session::Id,
            ) -> $core::session_store::Result<Option<$core::session::Record>> {
                Ok(load(self, id.0)
                    .await?
                    .map(|(data, expiry_date)| $core::session::Record {
                        id: *id,
                        data,
                        expiry_date,
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
    use crate::SessionId;

    #[test]
    fn tower_ids_map_to_valid_session_ids() {
        for id in [0i128, 1, -1, i128::MAX, i128::MIN, 0x0123_4567_89ab_cdef] {
            let sid = tower_session_id(id);
            assert_eq!(sid.as_str().len(), 22);
            assert!(SessionId::parse(sid.as_str()).is_ok());
            #[cfg(feature = "tower-sessions-015")]
            assert_eq!(sid.as_str(), core015::session::Id(id).to_string());
            #[cfg(feature = "tower-sessions-014")]
            assert_eq!(sid.as_str(), core014::session::Id(id).to_string());
        }
    }
}
