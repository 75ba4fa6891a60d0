use super::Serializer;
use crate::error::CodecError;
use crate::session::Session;

/// MessagePack: the same map of fields as [`Json`](super::Json), smaller and faster to parse.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgPack;

const FORMAT: &str = "msgpack";

impl Serializer for MsgPack {
    fn name(&self) -> &'static str {
        FORMAT
    }

    fn encode(&self, session: &Session) -> Result<Vec<u8>, CodecError> {
        to_vec(session)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError> {
        from_slice(bytes)
    }
}

/// Encodes any shape of a session (see [`Encodable`](super::Encodable)) as MessagePack.
pub(crate) fn to_vec<T: serde::Serialize + ?Sized>(session: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec(session).map_err(|_| CodecError::Other {
        format: FORMAT,
        message: "session cannot be encoded".into(),
    })
}

/// Decodes a MessagePack session into any shape of it (see [`Decoded`](super::Decoded)).
pub(crate) fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    use rmp_serde::decode::Error as E;
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let decoded: T = serde::Deserialize::deserialize(&mut de).map_err(|e| match e {
        E::InvalidMarkerRead(_) | E::InvalidDataRead(_) => CodecError::Truncated { format: FORMAT },
        E::Syntax(message) if super::fields::is_bad_bound(&message) => {
            CodecError::Bound { format: FORMAT }
        }
        E::TypeMismatch(_) | E::Syntax(_) => CodecError::NotASession {
            format: FORMAT,
            what: "not a map of fields",
        },
        _ => CodecError::Syntax {
            format: FORMAT,
            line: 0,
            column: 0,
        },
    })?;
    if de.position() as usize != bytes.len() {
        return Err(CodecError::Syntax {
            format: FORMAT,
            line: 0,
            column: de.position() as usize,
        });
    }
    Ok(decoded)
}
