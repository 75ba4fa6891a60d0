//! Session to bytes and back. The only place that touches payload bytes.
//!
//! A [`Serializer`] turns a [`Session`] into bytes: [`Json`] (the default, byte-compatible with
//! connect-redis), [`MsgPack`] (feature `msgpack`), or your own.

mod json;
#[cfg(feature = "msgpack")]
mod msgpack;

use std::fmt;
use std::sync::Arc;

pub use json::Json;
#[cfg(feature = "msgpack")]
pub use msgpack::MsgPack;

use crate::error::CodecError;
use crate::session::Session;

/// Turns sessions into bytes and back. Implement it to plug in your own format.
///
/// Errors must not contain session contents (they end up in logs).
pub trait Serializer: Send + Sync + 'static {
    /// Short name of the format, for errors and `Debug`.
    fn name(&self) -> &'static str;
    /// Encodes a session.
    ///
    /// # Errors
    /// The session cannot be represented in this format.
    fn encode(&self, session: &Session) -> Result<Vec<u8>, CodecError>;
    /// Decodes a session.
    ///
    /// # Errors
    /// The bytes are not a session in this format.
    fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError>;
}

/// The store's codec: the serializer (and, later, an envelope around it).
#[derive(Clone)]
pub(crate) struct Codec {
    serializer: Arc<dyn Serializer>,
}

impl Codec {
    pub(crate) fn new(serializer: Arc<dyn Serializer>) -> Codec {
        Codec { serializer }
    }

    pub(crate) fn encode(&self, session: &Session) -> Result<Vec<u8>, CodecError> {
        self.serializer.encode(session)
    }

    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError> {
        self.serializer.decode(bytes)
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("serializer", &self.serializer.name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample() -> Session {
        let mut s =
            Session::new().with_expiry(UNIX_EPOCH + Duration::from_millis(1_900_000_000_123));
        s.insert("user_id", 42).unwrap();
        s.insert("name", "ada").unwrap();
        s.insert("roles", ["admin", "editor", "viewer"]).unwrap();
        s.insert("nested", json!({"a": [1.5, null, true]})).unwrap();
        s
    }

    fn all() -> Vec<Box<dyn Serializer>> {
        vec![
            Box::new(Json),
            #[cfg(feature = "msgpack")]
            Box::new(MsgPack),
        ]
    }

    #[test]
    fn round_trips_in_every_format() {
        for ser in all() {
            let bytes = ser.encode(&sample()).unwrap();
            assert_eq!(ser.decode(&bytes).unwrap(), sample(), "{}", ser.name());
        }
    }

    #[test]
    fn rejects_non_sessions_without_echoing_them() {
        for ser in all() {
            for bad in [
                &b"\x93\x01\x02"[..],
                b"[1,2]",
                b"42",
                b"{\"secret\":",
                b"\xff\xfe\xfd",
            ] {
                let err = ser.decode(bad).unwrap_err();
                assert!(!err.to_string().contains("secret"), "{err}");
            }
            let full = ser.encode(&sample()).unwrap();
            assert!(
                ser.decode(&full[..full.len() - 3]).is_err(),
                "{}",
                ser.name()
            );
        }
    }
}
