//! "What Redis holds": the current session as someone with access to Redis sees it, so the
//! page shows what the store does (hashed keys, encryption, the TTL and its limits).

use std::time::Duration;

use redis_sessions::{Backend, KeyTtl, RedisStore, SessionId, StoredForm};

/// The session limits the store runs with, for the panel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub idle: Duration,
    pub absolute: Option<Duration>,
}

/// The current session's key and value as stored.
pub(crate) struct Holds {
    /// The key as stored (the id's hash when ids are hashed).
    pub key: String,
    /// Remaining time to live; `None` when the key has no expiry.
    pub ttl: Option<Duration>,
    pub limits: Limits,
    /// Size of the stored value in bytes.
    pub size: usize,
    /// The value as an onlooker reads it: the JSON text, or what it is and how big.
    pub shown: String,
}

/// The panel for session `id`; `None` when Redis holds nothing under its key.
///
/// # Errors
/// The store fails.
pub(crate) async fn of<B: Backend>(
    store: &RedisStore<B>,
    id: &SessionId,
    limits: Limits,
) -> redis_sessions::Result<Option<Holds>> {
    let Some(raw) = store.raw(id).await? else {
        return Ok(None);
    };
    let size = raw.value.len();
    let shown = match raw.form() {
        StoredForm::Json => String::from_utf8_lossy(&raw.value).into_owned(),
        StoredForm::MsgPack => {
            format!("MessagePack, {size} bytes (any MessagePack decoder reads it)")
        }
        StoredForm::Compressed => {
            format!("LZ4-compressed, {size} bytes (readable once decompressed)")
        }
        StoredForm::Encrypted => format!("encrypted, {size} bytes"),
        _ => format!("unrecognised, {size} bytes"),
    };
    let ttl = match raw.ttl {
        KeyTtl::Expires(ttl) => Some(ttl),
        _ => None,
    };
    Ok(Some(Holds {
        key: raw.key,
        ttl,
        limits,
        size,
        shown,
    }))
}
