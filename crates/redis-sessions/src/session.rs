//! The session record: named JSON-compatible fields plus an optional expiry.

use std::fmt;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::codec::fields;
use crate::timefmt;

/// One session: named fields holding JSON-compatible values, and an optional expiry.
///
/// This is the shape tower-sessions (`Record`) and actix-session (a string map) hand over, and the
/// shape connect-redis stores: the serialized form is an object of the fields, with the expiry in
/// `cookie.expires` as an ISO-8601 string, so a session written by express-session reads here
/// and one written here reads in express-session. A stored `cookie` object is kept as the field
/// `cookie`, exactly as it was (its `expires` member included): a session read and written back
/// unchanged keeps its JSON, member order and `null`s included; only a changed expiry rewrites
/// `cookie.expires`.
///
/// An expiry is either *stored* ([`with_expiry`](Session::with_expiry): in the value and in the
/// key's TTL) or *key-only* ([`with_key_expiry`](Session::with_key_expiry): in the key's TTL
/// alone, so the value is some 48 bytes smaller and a read returns no expiry). The framework
/// adapters use key-only expiries (neither framework reads a stored one back). Under the
/// store's idle timeout a key-only expiry is the bound sliding reads never pass, so the store
/// writes it into the value anyway, compactly: the reserved top-level member `__exp` (Unix
/// milliseconds), which is never one of the fields (a session that has a field of that name is
/// refused when it is written). A session read with such a bound returns it as its expiry, and
/// keeps it there when written back.
///
/// `Debug` shows the field names and the expiry, never the values. Equality compares the fields
/// and the expiry time, not where the expiry is kept (a `cookie.expires` member is the expiry).
#[derive(Clone, Default)]
pub struct Session {
    data: Map<String, Value>,
    expires: Option<SystemTime>,
    /// Where `expires` is kept besides the key's TTL.
    kept: Kept,
}

/// Where a session's explicit expiry is kept besides the key's TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Nowhere: the key's TTL only ([`Session::with_key_expiry`]).
    #[default]
    Key,
    /// In `cookie.expires`, express-session's place ([`Session::with_expiry`]).
    Cookie,
    /// In the store's compact bound, the reserved member `__exp` (a session read with one).
    Bound,
}

impl PartialEq for Session {
    fn eq(&self, other: &Session) -> bool {
        self.expires.map(timefmt::millis) == other.expires.map(timefmt::millis)
            && fields::same_fields(&self.data, &other.data)
    }
}

impl Session {
    /// An empty session without expiry (the store's `ttl` option then decides its lifetime).
    pub fn new() -> Session {
        Session::default()
    }

    /// A session from its fields. A `cookie` object's `expires` member, if it is a timestamp,
    /// is the session's (stored) expiry, as when the session is read from the store.
    pub fn from_map(data: Map<String, Value>) -> Session {
        let expires = fields::expiry_of(&data);
        Session::from_parts(data, expires, Kept::Cookie)
    }

    /// A session as decoded: its fields, the expiry they carry and where it was kept.
    pub(crate) fn from_parts(
        data: Map<String, Value>,
        expires: Option<SystemTime>,
        kept: Kept,
    ) -> Session {
        Session {
            data,
            kept: if expires.is_some() { kept } else { Kept::Key },
            expires,
        }
    }

    /// Sets an explicit expiry (it wins over the store's `ttl` option), stored in the value as
    /// `cookie.expires` (express-session's place for it) and in the key's TTL: reads return it.
    #[must_use]
    pub fn with_expiry(self, expires: SystemTime) -> Session {
        self.with_expiry_kept(expires, Kept::Cookie)
    }

    /// Sets an explicit expiry (it wins over the store's `ttl` option) that only the key's TTL
    /// carries: the value holds the fields alone, and reads return no expiry. Redis removes the
    /// key at `expires` all the same.
    ///
    /// With an [`idle_timeout`](crate::StoreBuilder::idle_timeout) the store stores the expiry
    /// anyway: reads re-arm the TTL past it, so the value must keep it as the bound reads
    /// check (set afresh by each write).
    #[must_use]
    pub fn with_key_expiry(mut self, expires: SystemTime) -> Session {
        self.expires = Some(expires);
        self.kept = Kept::Key;
        self
    }

    /// The session with the explicit expiry `expires`, kept as `kept` says.
    pub(crate) fn with_expiry_kept(mut self, expires: SystemTime, kept: Kept) -> Session {
        self.expires = Some(expires);
        self.kept = kept;
        self
    }

    /// Where the explicit expiry is kept besides the key's TTL ([`Kept::Key`] without one).
    pub(crate) fn kept(&self) -> Kept {
        match self.expires {
            Some(_) => self.kept,
            None => Kept::Key,
        }
    }

    /// The explicit expiry, if any.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// Whether the explicit expiry is written into the value as `cookie.expires`
    /// ([`with_expiry`](Session::with_expiry)); `false` without one, for a key-only one and for
    /// the store's compact bound (see [`with_key_expiry`](Session::with_key_expiry)).
    pub fn expiry_stored(&self) -> bool {
        self.kept() == Kept::Cookie
    }

    /// Sets or clears the explicit expiry. One that is set is stored in the value, as with
    /// [`with_expiry`](Session::with_expiry), except in a session read with the store's compact
    /// bound (`__exp`), where the new expiry replaces the bound in the same place.
    pub fn set_expires(&mut self, expires: Option<SystemTime>) {
        if self.kept() != Kept::Bound {
            self.kept = Kept::Cookie;
        }
        self.expires = expires;
    }

    /// When the store first wrote this session, under an
    /// [`absolute_timeout`](crate::StoreBuilder::absolute_timeout): the store's record, the
    /// reserved field `__created` (Unix milliseconds), written once at the session's first
    /// write and never moved (a session read and written back keeps it). `None` for a session
    /// that has no record (never written under an absolute timeout).
    pub fn created(&self) -> Option<SystemTime> {
        crate::codec::shape::created_of(self.data.get(fields::CREATED))
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

    /// Takes the fields out (a `cookie` object as it was stored, `expires` included).
    pub fn into_data(self) -> Map<String, Value> {
        self.data
    }

    /// The fields without the expiry: the expiry taken out of a `cookie` object, and a
    /// `cookie` that held nothing else dropped (the framework shapes' view).
    #[cfg(any(
        feature = "tower-sessions-014",
        feature = "tower-sessions-015",
        feature = "actix"
    ))]
    pub(crate) fn into_fields(self) -> Map<String, Value> {
        let mut data = self.data;
        fields::split_cookie(&mut data);
        data
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
            .field("kept", &self.kept())
            .finish()
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
            r#"{"n":1,"cookie":{"path":"/"}}"#
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
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
        let null_expiry: Session =
            serde_json::from_str(r#"{"cookie":{"expires":null},"a":1}"#).unwrap();
        assert_eq!(null_expiry.expires(), None);
        assert_eq!(
            serde_json::to_string(&null_expiry).unwrap(),
            r#"{"cookie":{"expires":null},"a":1}"#
        );
    }

    /// A session read and written back unchanged keeps its JSON: member order, nulls, every
    /// cookie member and the expiry's text. Changing the expiry rewrites `expires` in place.
    #[test]
    fn unchanged_sessions_keep_their_json() {
        for text in [
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#,
            r#"{"z":1,"cookie":{"originalMaxAge":86400000,"expires":"2030-01-01T00:00:00.000Z","secure":false},"a":[3,null,{"y":1,"b":2}]}"#,
            r#"{"b":2,"a":1,"big":18446744073709551615,"neg":-9223372036854775808,"f":0.1}"#,
            r#"{"cookie":{"expires":"not a date","path":"/"}}"#,
            r#"{"cookie":"not an object","n":1}"#,
        ] {
            let s: Session = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), text);
        }
        let text =
            r#"{"cookie":{"originalMaxAge":1,"expires":"2030-01-01T00:00:00Z","path":"/"},"n":1}"#;
        let s: Session = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            text,
            "the expiry's own text"
        );
        let later = s.with_expiry(UNIX_EPOCH + Duration::from_millis(1_900_000_000_123));
        assert_eq!(
            serde_json::to_string(&later).unwrap(),
            r#"{"cookie":{"originalMaxAge":1,"expires":"2030-03-17T17:46:40.123Z","path":"/"},"n":1}"#
        );
        let mut cleared = later;
        cleared.set_expires(None);
        assert_eq!(
            serde_json::to_string(&cleared).unwrap(),
            r#"{"cookie":{"originalMaxAge":1,"expires":null,"path":"/"},"n":1}"#
        );
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
