//! [`RedisStore::raw`]: a session exactly as Redis holds it (key, bytes, TTL), for pages and
//! tools that show what the store does. Not a read path: nothing is decoded, slid or deleted.

use std::fmt;

use super::RedisStore;
use crate::backend::{Backend, KeyTtl};
use crate::codec::{form_of, StoredForm};
use crate::error::Result;
use crate::id::SessionId;

/// A session's key and value as stored, with the key's remaining TTL.
///
/// Its `Debug` shows the form, size and TTL only: never the key (it is the session id when ids
/// are not hashed) nor the value.
#[derive(Clone)]
#[non_exhaustive]
pub struct RawSession {
    /// The key as stored: the prefix and the id, or the id's hash when ids are hashed.
    pub key: String,
    /// The value's bytes, as anyone with access to Redis reads them.
    pub value: Vec<u8>,
    /// The key's remaining time to live.
    pub ttl: KeyTtl,
}

impl RawSession {
    /// What the value is to an onlooker: readable JSON, MessagePack, compressed, or encrypted.
    pub fn form(&self) -> StoredForm {
        form_of(&self.value)
    }
}

impl fmt::Debug for RawSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSession")
            .field("form", &self.form())
            .field("bytes", &self.value.len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> RedisStore<B> {
    /// The session `id` as Redis holds it (`GET` and `PTTL`, two commands): its key, its
    /// stored bytes and its TTL; `None` when there is no value. Nothing is decoded and the TTL
    /// is not slid, so this is for showing what the store wrote, not for reading a session.
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend) (a key of another Redis type included).
    pub async fn raw(&self, id: &SessionId) -> Result<Option<RawSession>> {
        let key = self.inner.keyspace.key(id);
        let Some(value) = self.inner.backend.get(&key).await? else {
            return Ok(None);
        };
        let ttl = self.inner.backend.pttl(&key).await?;
        Ok(Some(RawSession { key, value, ttl }))
    }
}
