//! The session record: named JSON-compatible fields plus an optional expiry.

use std::fmt;
use std::time::SystemTime;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::timefmt;

/// The field that carries the expiry, as express-session writes it: `{"cookie":{"expires":ISO}}`.
const COOKIE: &str = "cookie";
const EXPIRES: &str = "expires";

/// One session: named fields holding JSON-compatible values, and an optional expiry.
///
/// This is the shape tower-sessions (`Record`) and actix-session (a string map) hand over, and the
/// shape connect-redis stores: the serialized form is an object of the fields, with the expiry in
/// `cookie.expires` as an ISO-8601 string, so a session written by express-session reads here
/// and one written here reads in express-session. Any other members of a stored `cookie` object
/// are kept as a field named `cookie`.
///
/// `Debug` shows the field names and the expiry, never the values.
#[derive(Clone, Default, PartialEq)]
pub struct Session {
    data: Map<String, Value>,
    expires: Option<SystemTime>,
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
        }
    }

    /// Sets an explicit expiry (it wins over the store's `ttl` option).
    #[must_use]
    pub fn with_expiry(mut self, expires: SystemTime) -> Session {
        self.expires = Some(expires);
        self
    }

    /// The explicit expiry, if any.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// Sets or clears the explicit expiry.
    pub fn set_expires(&mut self, expires: Option<SystemTime>) {
        self.expires = expires;
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
            .finish()
    }
}

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stored_cookie = self.data.get(COOKIE).and_then(Value::as_object);
        let extra = usize::from(self.expires.is_some() && stored_cookie.is_none());
        let mut map = serializer.serialize_map(Some(self.data.len() + extra))?;
        for (key, value) in &self.data {
            match (key.as_str(), self.expires, stored_cookie) {
                (COOKIE, Some(expires), Some(cookie)) => {
                    let mut cookie = cookie.clone();
                    cookie.insert(EXPIRES.into(), Value::String(timefmt::format(expires)));
                    map.serialize_entry(key, &cookie)?;
                }
                _ => map.serialize_entry(key, value)?,
            }
        }
        if extra == 1 {
            if let Some(expires) = self.expires {
                map.serialize_entry(COOKIE, &ExpiresOnly(&timefmt::format(expires)))?;
            }
        }
        map.end()
    }
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
        struct SessionVisitor;
        impl<'de> Visitor<'de> for SessionVisitor {
            type Value = Session;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Session, A::Error> {
                let mut data = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    data.insert(key, value);
                }
                Ok(Session::from_stored(data))
            }
        }
        deserializer.deserialize_map(SessionVisitor)
    }
}

impl Session {
    /// Splits `cookie.expires` out of a stored object.
    fn from_stored(mut data: Map<String, Value>) -> Session {
        let mut expires = None;
        let mut drop_cookie = false;
        if let Some(Value::Object(cookie)) = data.get_mut(COOKIE) {
            match cookie.get(EXPIRES) {
                Some(Value::String(iso)) => {
                    // An unparseable expiry is kept as data; the TTL then follows the `ttl` option.
                    if let Some(t) = timefmt::parse(iso) {
                        expires = Some(t);
                        cookie.remove(EXPIRES);
                    }
                }
                Some(Value::Null) => {
                    cookie.remove(EXPIRES);
                }
                _ => {}
            }
            drop_cookie = cookie.is_empty();
        }
        if drop_cookie {
            data.remove(COOKIE);
        }
        Session { data, expires }
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
