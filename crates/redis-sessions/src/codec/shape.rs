//! What the codec pipeline decodes into and encodes from: a [`Session`], or a framework
//! adapter's own shape of one, built straight from the stored bytes and written straight into
//! them (no `Session` in between, except for a custom serializer).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use super::fields;
use super::json;
use crate::error::CodecError;
use crate::session::{Kept, Session};

/// What a stored value decodes into. A custom serializer's values go through its `Session`.
pub(crate) trait Decoded: DeserializeOwned {
    /// The shape of a session a custom serializer decoded.
    fn from_session(session: Session) -> Self;
    /// The explicit expiry stored in the value, if any.
    fn expires(&self) -> Option<SystemTime>;
    /// The user named by the field `field` (see [`user_of`]).
    fn user(&self, field: &str) -> Option<String>;
    /// The store's creation record (the [`CREATED`](fields::CREATED) field), if any.
    fn created(&self) -> Option<SystemTime>;
    /// Decodes a JSON body (a shape can borrow from the JSON text here).
    fn from_json(body: &[u8]) -> Result<Self, CodecError> {
        json::from_slice(body)
    }
}

/// What the store writes into a value besides the session's own fields: its decisions, never
/// the shape's.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stamp {
    /// The expiry to write into `cookie.expires`, or `None`.
    pub(crate) expires: Option<SystemTime>,
    /// The bound to write as the store's compact member [`BOUND`](fields::BOUND), or `None`.
    pub(crate) bound: Option<SystemTime>,
    /// The creation record (Unix ms) to write as the [`CREATED`](fields::CREATED) field,
    /// replacing the session's own; `None` writes the fields as they are.
    pub(crate) created: Option<u64>,
}

/// What the store writes. Whether the expiry goes into the value is the store's decision
/// (the [`Stamp`]), never the shape's.
pub(crate) trait Encodable {
    /// The explicit expiry (the key's TTL follows it), if any.
    fn expires(&self) -> Option<SystemTime>;
    /// Where the caller keeps the expiry besides the key's TTL: in `cookie.expires`
    /// ([`Session::with_expiry`]), as the store's bound (a [`Session`] read with one), or
    /// nowhere; the framework shapes' is always key-only.
    fn kept(&self) -> Kept {
        Kept::Key
    }
    /// Whether the session has a field named `name`.
    fn has_field(&self, name: &str) -> bool;
    /// The user named by the field `field` (see [`user_of`]).
    fn user(&self, field: &str) -> Option<String>;
    /// The store's creation record (the [`CREATED`](fields::CREATED) field), if any.
    fn created(&self) -> Option<SystemTime>;
    /// Serializes the session object, with the stamp's expiry in `cookie.expires`, its bound
    /// and its creation record.
    fn serialize_with<S: Serializer>(&self, serializer: S, stamp: Stamp)
        -> Result<S::Ok, S::Error>;
    /// The same session as a [`Session`] (for a custom serializer), its expiry kept where the
    /// stamp puts it (`cookie.expires`, the bound, or the key's TTL alone).
    fn to_session(&self, stamp: Stamp) -> Cow<'_, Session>;
    /// The JSON body.
    fn to_json(&self, stamp: Stamp) -> Result<Vec<u8>, CodecError> {
        json::to_vec(&WithExpiry(self, stamp))
    }
    /// The session as a load decodes the JSON body [`to_json`](Encodable::to_json) writes
    /// with `stamp`, in the loaded shape `shape` (a [`Decoded`] type), with its expiry: only
    /// when that is known exactly without writing or parsing the body, else `None`. The
    /// client-side cache installs it after a write instead of decoding the bytes written.
    fn loaded(&self, stamp: Stamp, shape: TypeId) -> Option<Loaded> {
        let _ = (stamp, shape);
        None
    }
}

/// A decoded session of some shape, and its stored expiry.
pub(crate) type Loaded = (Arc<dyn Any + Send + Sync>, Option<SystemTime>);

/// Where a stamp keeps the expiry it writes.
pub(crate) fn stamp_kept(stamp: Stamp) -> Kept {
    match (stamp.expires, stamp.bound) {
        (Some(_), _) => Kept::Cookie,
        (None, Some(_)) => Kept::Bound,
        (None, None) => Kept::Key,
    }
}

/// A creation record as a time.
pub(crate) fn created_at(ms: u64) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

/// The creation record a field value holds, as a time.
pub(crate) fn created_of(value: Option<&serde_json::Value>) -> Option<SystemTime> {
    value.and_then(fields::created_ms).map(created_at)
}

/// The user a session belongs to, from the value of its index field: a string as it is
/// (non-empty), a number as its JSON text (so `42` and `"42"` are one user); any other value
/// names no user.
pub(crate) fn user_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A shape with the stamp to store, as one `Serialize` value.
pub(crate) struct WithExpiry<'a, E: ?Sized>(pub(crate) &'a E, pub(crate) Stamp);

impl<E: Encodable + ?Sized> Serialize for WithExpiry<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with(serializer, self.1)
    }
}

impl Decoded for Session {
    fn from_session(session: Session) -> Self {
        session
    }

    fn expires(&self) -> Option<SystemTime> {
        Session::expires(self)
    }

    fn user(&self, field: &str) -> Option<String> {
        user_of(self.data().get(field)?)
    }

    fn created(&self) -> Option<SystemTime> {
        Session::created(self)
    }
}

impl Encodable for Session {
    fn expires(&self) -> Option<SystemTime> {
        Session::expires(self)
    }

    fn kept(&self) -> Kept {
        Session::kept(self)
    }

    fn has_field(&self, name: &str) -> bool {
        self.data().contains_key(name)
    }

    fn user(&self, field: &str) -> Option<String> {
        user_of(self.data().get(field)?)
    }

    fn created(&self) -> Option<SystemTime> {
        Session::created(self)
    }

    fn serialize_with<S: Serializer>(
        &self,
        serializer: S,
        stamp: Stamp,
    ) -> Result<S::Ok, S::Error> {
        fields::serialize_session(self, serializer, stamp)
    }

    fn to_session(&self, stamp: Stamp) -> Cow<'_, Session> {
        let kept = stamp_kept(stamp);
        match self.expires() {
            Some(at) if kept != self.kept() => Cow::Owned(self.clone().with_expiry_kept(at, kept)),
            _ => Cow::Borrowed(self),
        }
    }
}
