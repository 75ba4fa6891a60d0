//! The session record: named JSON-compatible fields plus an optional expiry.

use std::fmt;
use std::time::SystemTime;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::timefmt;

/// The field that carries the expiry, as express-session writes it: `{"cookie":{"expires":ISO}}`.
pub(crate) const COOKIE: &str = "cookie";
const EXPIRES: &str = "expires";

/// One session: named fields holding JSON-compatible values, and an optional expiry.
///
/// This is the shape tower-sessions (`Record`) and actix-session (a string map) hand over, and the
/// shape connect-redis stores: the serialized form is an object of the fields, with the expiry in
/// `cookie.expires` as an ISO-8601 string, so a session written by express-session reads here
/// and one written here reads in express-session. Any other members of a stored `cookie` object
/// are kept as a field named `cookie`.
///
/// An expiry is either *stored* ([`with_expiry`](Session::with_expiry): in the value and in the
/// key's TTL) or *key-only* ([`with_key_expiry`](Session::with_key_expiry): in the key's TTL
/// alone, so the value is some 48 bytes smaller and a read returns no expiry). The framework
/// adapters use key-only expiries (neither framework reads a stored one back), except under the
/// store's idle timeout, where the stored expiry is the bound sliding reads never pass.
///
/// `Debug` shows the field names and the expiry, never the values. Equality compares the fields
/// and the expiry time, not where the expiry is kept.
#[derive(Clone, Default)]
pub struct Session {
    data: Map<String, Value>,
    expires: Option<SystemTime>,
    /// `false`: `expires` is carried by the key's TTL only and not serialized.
    expiry_stored: bool,
}

impl PartialEq for Session {
    fn eq(&self, other: &Session) -> bool {
        self.data == other.data && self.expires == other.expires
    }
}

impl Session {
    /// An empty session without expiry (the store's `ttl` option then decides its lifetime).
    pub fn new() -> Session {
        Session::default()
    }

    /// A session from its fields.
    pub fn from_map(data: Map<String, Value>) -> Session {
        Session {
            data,
            expires: None,
            expiry_stored: false,
        }
    }

    /// Sets an explicit expiry (it wins over the store's `ttl` option), stored in the value as
    /// `cookie.expires` (express-session's place for it) and in the key's TTL: reads return it.
    #[must_use]
    pub fn with_expiry(mut self, expires: SystemTime) -> Session {
        self.set_expires(Some(expires));
        self
    }

    /// Sets an explicit expiry (it wins over the store's `ttl` option) that only the key's TTL
    /// carries: the value holds the fields alone, and reads return no expiry. Redis removes the
    /// key at `expires` all the same.
    ///
    /// With an [`idle_timeout`](crate::StoreBuilder::idle_timeout) the store stores the expiry
    /// anyway: reads re-arm the TTL past it, so the value must keep it as the absolute bound.
    #[must_use]
    pub fn with_key_expiry(mut self, expires: SystemTime) -> Session {
        self.expires = Some(expires);
        self.expiry_stored = false;
        self
    }

    /// [`with_expiry`](Session::with_expiry) when `stored`, else
    /// [`with_key_expiry`](Session::with_key_expiry).
    #[cfg(any(
        feature = "tower-sessions-014",
        feature = "tower-sessions-015",
        feature = "actix"
    ))]
    pub(crate) fn with_expiry_kept(self, expires: SystemTime, stored: bool) -> Session {
        match stored {
            true => self.with_expiry(expires),
            false => self.with_key_expiry(expires),
        }
    }

    /// The explicit expiry, if any.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// Whether the explicit expiry is written into the value (see
    /// [`with_key_expiry`](Session::with_key_expiry)); `false` without one.
    pub fn expiry_stored(&self) -> bool {
        self.expires.is_some() && self.expiry_stored
    }

    /// Sets or clears the explicit expiry; one that is set is stored in the value, as with
    /// [`with_expiry`](Session::with_expiry).
    pub fn set_expires(&mut self, expires: Option<SystemTime>) {
        self.expires = expires;
        self.expiry_stored = expires.is_some();
    }

    /// Reads field `key` as `T`. `Ok(None)` when the field is absent.
    ///
    /// # Errors
    /// The field exists but does not deserialize into `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> serde_json::Result<Option<T>> {
        self.data.get(key).map(|v| T::deserialize(v)).transpose()
    }

    /// The raw value of field `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Stores `value` under `key`, returning the previous raw value.
    ///
    /// # Errors
    /// `value` cannot be represented as JSON (for example a map with non-string keys).
    pub fn insert<T: Serialize>(
        &mut self,
        key: &str,
        value: T,
    ) -> serde_json::Result<Option<Value>> {
        let value = serde_json::to_value(value)?;
        Ok(self.data.insert(key.to_owned(), value))
    }

    /// Stores a raw JSON value under `key`.
    pub fn insert_value(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        self.data.insert(key.into(), value)
    }

    /// Removes field `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.data.remove(key)
    }

    /// All fields.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// All fields, mutable.
    pub fn data_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.data
    }

    /// Takes the fields out.
    pub fn into_data(self) -> Map<String, Value> {
        self.data
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// No fields.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("fields", &self.data.keys().collect::<Vec<_>>())
            .field("expires", &self.expires.map(timefmt::format))
            .field("expiry_stored", &self.expiry_stored())
            .finish()
    }
}

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let expires = self.expires.filter(|_| self.expiry_stored);
        serialize_fields(serializer, self.data.iter(), self.data.get(COOKIE), expires)
    }
}

/// Serializes fields as a session object, with a stored expiry in `cookie.expires`: merged
/// into the `cookie` field when that is an object (express-session's own), else a `cookie`
/// field of its own. A `cookie` field that is not an object is written as it is, and the
/// expiry then stays out of the value (the key's TTL still carries it).
pub(crate) fn serialize_fields<'a, S: Serializer>(
    serializer: S,
    fields: impl ExactSizeIterator<Item = (&'a String, &'a Value)>,
    cookie: Option<&Value>,
    expires: Option<SystemTime>,
) -> Result<S::Ok, S::Error> {
    let extra = usize::from(expires.is_some() && cookie.is_none());
    let mut map = serializer.serialize_map(Some(fields.len() + extra))?;
    for (key, value) in fields {
        match (key.as_str(), expires, value) {
            (COOKIE, Some(expires), Value::Object(cookie)) => {
                let mut cookie = cookie.clone();
                cookie.insert(EXPIRES.into(), Value::String(timefmt::format(expires)));
                map.serialize_entry(key, &cookie)?;
            }
            _ => map.serialize_entry(key, value)?,
        }
    }
    if let Some(expires) = expires.filter(|_| extra == 1) {
        map.serialize_entry(COOKIE, &ExpiresOnly(&timefmt::format(expires)))?;
    }
    map.end()
}

/// `{"expires": ISO}` without building a JSON map.
struct ExpiresOnly<'a>(&'a str);

impl Serialize for ExpiresOnly<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(EXPIRES, self.0)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (data, expires) = deserialize_fields::<D, Map<String, Value>>(deserializer)?;
        Ok(Session {
            data,
            expiry_stored: expires.is_some(),
            expires,
        })
    }
}

/// A map of fields that a stored session object decodes into: the session's own, and the
/// framework adapters' shapes, so each is built straight from the stored bytes.
pub(crate) trait Fields: Sized {
    /// How a field's value is held.
    type Value: DeserializeOwned;
    /// An empty map with room for `n` fields.
    fn with_capacity(n: usize) -> Self;
    /// Adds a field.
    fn insert(&mut self, key: String, value: Self::Value);
    /// A `cookie` field that holds more than the expiry, as a field value.
    fn cookie(cookie: Value) -> Self::Value;
}

impl Fields for Map<String, Value> {
    type Value = Value;
    fn with_capacity(_: usize) -> Self {
        Map::new()
    }
    fn insert(&mut self, key: String, value: Value) {
        Map::insert(self, key, value);
    }
    fn cookie(cookie: Value) -> Value {
        cookie
    }
}

/// Decodes a stored session object into `F`, splitting the expiry out of `cookie.expires`
/// (express-session's place for it). A `cookie` object that holds nothing else is dropped; an
/// unparseable expiry is kept as data (the TTL then follows the `ttl` option); a null one is
/// dropped.
pub(crate) fn deserialize_fields<'de, D: Deserializer<'de>, F: Fields>(
    deserializer: D,
) -> Result<(F, Option<SystemTime>), D::Error> {
    struct FieldsVisitor<F>(std::marker::PhantomData<F>);
    impl<'de, F: Fields> Visitor<'de> for FieldsVisitor<F> {
        type Value = (F, Option<SystemTime>);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a session object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            // JSON gives no size hint: room for a typical session, so small ones never regrow.
            let mut fields = F::with_capacity(access.size_hint().unwrap_or(8).min(64));
            let mut expires = None;
            while let Some(key) = access.next_key::<String>()? {
                if key != COOKIE {
                    fields.insert(key, access.next_value()?);
                    continue;
                }
                let mut cookie: Value = access.next_value()?;
                if let Value::Object(members) = &mut cookie {
                    expires = take_expiry(members);
                    if members.is_empty() {
                        continue;
                    }
                }
                fields.insert(key, F::cookie(cookie));
            }
            Ok((fields, expires))
        }
    }
    deserializer.deserialize_map(FieldsVisitor(std::marker::PhantomData))
}

/// Takes a parseable or null `expires` out of a stored `cookie` object.
fn take_expiry(cookie: &mut Map<String, Value>) -> Option<SystemTime> {
    match cookie.get(EXPIRES)? {
        Value::String(iso) => {
            let t = timefmt::parse(iso)?;
            cookie.remove(EXPIRES);
            Some(t)
        }
        Value::Null => {
            cookie.remove(EXPIRES);
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn typed_access() {
        let mut s = Session::new();
        s.insert("counter", 3u32).unwrap();
        s.insert("user", "ada").unwrap();
        assert_eq!(s.get::<u32>("counter").unwrap(), Some(3));
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        assert_eq!(s.get::<u32>("missing").unwrap(), None);
        assert!(s.get::<u32>("user").is_err());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn key_only_expiry_is_not_serialized() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_298_245_678);
        let mut s = Session::new();
        s.insert("n", 1).unwrap();
        let key_only = s.clone().with_key_expiry(at);
        assert_eq!(serde_json::to_string(&key_only).unwrap(), r#"{"n":1}"#);
        assert!(!key_only.expiry_stored());
        let stored = s.clone().with_expiry(at);
        assert!(stored.expiry_stored());
        assert_eq!(
            key_only, stored,
            "equality ignores where the expiry is kept"
        );
        // A stored cookie object keeps its other members, without an expiry added.
        let mut with_cookie = key_only.clone();
        with_cookie
            .insert("cookie", serde_json::json!({"path": "/"}))
            .unwrap();
        assert_eq!(
            serde_json::to_string(&with_cookie).unwrap(),
            r#"{"cookie":{"path":"/"},"n":1}"#
        );
        let mut cleared = stored;
        cleared.set_expires(None);
        assert!(!cleared.expiry_stored());
    }

    #[test]
    fn expiry_round_trips_through_cookie_expires() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_298_245_678);
        let mut s = Session::new().with_expiry(t);
        s.insert("n", 1).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"n":1,"cookie":{"expires":"2025-11-28T02:50:45.678Z"}}"#
        );
        let back: Session = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn reads_express_session_json_and_keeps_other_cookie_members() {
        let json = r#"{"cookie":{"originalMaxAge":86400000,"expires":"2025-11-28T02:50:45.678Z","httpOnly":true,"path":"/"},"views":4}"#;
        let s: Session = serde_json::from_str(json).unwrap();
        assert_eq!(s.get::<u32>("views").unwrap(), Some(4));
        assert_eq!(
            s.expires(),
            Some(UNIX_EPOCH + Duration::from_millis(1_764_298_245_678))
        );
        let again: serde_json::Value = serde_json::to_value(&s).unwrap();
        let original: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(again, original);
        let null_expiry: Session =
            serde_json::from_str(r#"{"cookie":{"expires":null},"a":1}"#).unwrap();
        assert_eq!(null_expiry.expires(), None);
        assert!(null_expiry.get_value("cookie").is_none());
    }

    #[test]
    fn debug_hides_values() {
        let mut s = Session::new();
        s.insert("token", "hunter2").unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("token") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
