use serde_json::error::Category;

use super::Serializer;
use crate::error::CodecError;
use crate::session::Session;

/// JSON, as connect-redis writes it: the session's fields as one object (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl Serializer for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode(&self, session: &Session) -> Result<Vec<u8>, CodecError> {
        to_vec(session)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError> {
        from_slice(bytes)
    }
}

/// Encodes any shape of a session (see [`Encodable`](super::Encodable)) as JSON.
pub(crate) fn to_vec<T: serde::Serialize + ?Sized>(session: &T) -> Result<Vec<u8>, CodecError> {
    serde_json::to_vec(session).map_err(|e| map_error(&e))
}

/// Decodes a JSON session into any shape of it (see [`Decoded`](super::Decoded)).
pub(crate) fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| map_error(&e))
}

fn map_error(e: &serde_json::Error) -> CodecError {
    const FORMAT: &str = "json";
    match e.classify() {
        Category::Eof => CodecError::Truncated { format: FORMAT },
        Category::Syntax | Category::Io => CodecError::Syntax {
            format: FORMAT,
            line: e.line(),
            column: e.column(),
        },
        Category::Data if super::fields::is_bad_bound(&e.to_string()) => {
            CodecError::Bound { format: FORMAT }
        }
        Category::Data => CodecError::NotASession {
            format: FORMAT,
            what: "not an object of fields",
        },
    }
}
