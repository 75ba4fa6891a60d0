//! The session object's serde code, shared by every shape: the fields as one object, with the
//! expiry in `cookie.expires` as express-session writes it.
//!
//! Two ways to treat a stored `cookie` object:
//! - kept as it stands ([`Session`], the direct API): member order, a `null` expiry and every
//!   other member survive a read and write-back, and only a changed expiry rewrites
//!   `cookie.expires` (in place);
//! - split (the framework shapes): the expiry is taken out of `cookie`, a `cookie` that held
//!   nothing else is dropped, so the store's own bookkeeping never shows in the application's
//!   session data.
//!
//! The store's own bound (a key-only expiry under an idle timeout) is the reserved top-level
//! member [`BOUND`], Unix milliseconds as a JSON (or MessagePack) integer: never a field of
//! any shape, read before `cookie.expires` and in its place (values written before it existed
//! carry the bound in `cookie.expires`, and still load with it).

use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::shape::Stamp;
use crate::session::{Kept, Session};
use crate::timefmt;

/// The field that carries the expiry, as express-session writes it: `{"cookie":{"expires":ISO}}`.
pub(crate) const COOKIE: &str = "cookie";
const EXPIRES: &str = "expires";

/// The store's record of when a session was created (Unix milliseconds), written under an
/// [`absolute_timeout`](crate::StoreBuilder::absolute_timeout): a reserved top-level field the
/// codec writes and the store reads, never moved once written.
///
/// Why a top-level field and not a member of `cookie`: express-session rebuilds `cookie` from
/// its own `Cookie` object on every save and drops members it does not know, so a Node app
/// sharing the sessions would erase the record; top-level fields it keeps as they are. And the
/// framework shapes must carry it from a load to the next save (tower-sessions' `Record` and
/// actix-session's state map are the only things they hand back), which a field of the data
/// does with no help from the adapters, through every serializer, a custom one included.
pub(crate) const CREATED: &str = "__created";

/// The creation record a field value holds: a non-negative integer (Unix ms).
pub(crate) fn created_ms(value: &Value) -> Option<u64> {
    value.as_u64()
}

/// The store's bound on a session's life, the compact form of its expiry: a reserved top-level
/// member holding Unix milliseconds as an integer, `"__exp":1781245381504` (22 bytes with its
/// comma, against 48 for `,"cookie":{"expires":"2026-12-12T06:43:01.504Z"}`).
///
/// The store writes it for a key-only expiry under an
/// [`idle_timeout`](crate::StoreBuilder::idle_timeout) (the framework adapters', and
/// [`Session::with_key_expiry`]): sliding reads re-arm the key's TTL, so the value must keep
/// the bound a read checks. A [`Session::with_expiry`] session keeps its expiry in
/// `cookie.expires` instead, as express-session does. Why a top-level member: express-session
/// keeps unknown top-level fields and rebuilds `cookie`. Why short: it keeps a typical session
/// value in a smaller allocator size class (see the README's memory figures).
///
/// The name is reserved: it is never one of a session's fields in any shape, and a session
/// that has a field of that name is refused when it is written ([`CodecError::Reserved`]).
/// Anything but an integer from 0 to [`MAX_BOUND_MS`] under the name is refused when read
/// ([`CodecError::Bound`]).
///
/// [`CodecError::Reserved`]: crate::error::CodecError::Reserved
/// [`CodecError::Bound`]: crate::error::CodecError::Bound
pub(crate) const BOUND: &str = "__exp";

/// The largest bound read: the last millisecond of the year 9999, as `cookie.expires` allows.
pub(crate) const MAX_BOUND_MS: u64 = 253_402_300_799_999;

/// The message a decoder's error carries for a bound that is not one; the serializers' error
/// mapping turns it into [`CodecError::Bound`](crate::error::CodecError::Bound).
pub(crate) const BAD_BOUND: &str = "redis-sessions: invalid __exp bound";

/// Whether a decoder's error message is [`BAD_BOUND`]'s.
pub(crate) fn is_bad_bound(message: &str) -> bool {
    message.starts_with(BAD_BOUND)
}

/// The bound a member value holds, as a time.
fn bound_of(value: &Value) -> Option<SystemTime> {
    let ms = value.as_u64().filter(|ms| *ms <= MAX_BOUND_MS)?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))
}

/// A time as a bound's Unix milliseconds (0 before 1970, [`MAX_BOUND_MS`] past the year 9999).
pub(crate) fn bound_ms(at: SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .min(MAX_BOUND_MS)
}

/// The bound a load of a value written with `at` as its [`BOUND`] reads: `at` in whole
/// milliseconds, within what a bound can hold.
#[cfg(any(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
pub(crate) fn stored_bound(at: SystemTime) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(bound_ms(at))
}

/// The expiry a decoded value carries, and whether it was the store's compact [`BOUND`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// The expiry: the earlier of [`BOUND`] and a parseable `cookie.expires`, if any.
    pub(crate) at: Option<SystemTime>,
    /// The value had a [`BOUND`].
    pub(crate) bound: bool,
}

/// A map of fields that a stored session object decodes into.
pub(crate) trait Fields: Sized {
    /// How a field's value is held.
    type Value: DeserializeOwned;
    /// Keep a `cookie` object as it stands (else split the expiry out of it).
    const KEEP_COOKIE: bool;
    /// An empty map with room for `n` fields.
    fn with_capacity(n: usize) -> Self;
    /// Adds a field.
    fn insert(&mut self, key: String, value: Self::Value);
    /// A `cookie` field, as a field value.
    fn cookie(cookie: Value) -> Self::Value;
}

impl Fields for Map<String, Value> {
    type Value = Value;
    const KEEP_COOKIE: bool = true;
    fn with_capacity(n: usize) -> Self {
        Map::with_capacity(n)
    }
    fn insert(&mut self, key: String, value: Value) {
        Map::insert(self, key, value);
    }
    fn cookie(cookie: Value) -> Value {
        cookie
    }
}

/// Decodes a stored session object into `F`, reading the expiry from the store's [`BOUND`]
/// and from `cookie.expires` (the earlier of the two when a value has both). An unparseable
/// `cookie.expires` is data (the TTL then follows the `ttl` option), a null one no expiry; a
/// [`BOUND`] that is not one is an error ([`BAD_BOUND`]).
pub(crate) fn deserialize_fields<'de, D: Deserializer<'de>, F: Fields>(
    deserializer: D,
) -> Result<(F, Expiry), D::Error> {
    struct FieldsVisitor<F>(PhantomData<F>);
    impl<'de, F: Fields> Visitor<'de> for FieldsVisitor<F> {
        type Value = (F, Expiry);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a session object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            use serde::de::Error as _;
            // JSON gives no size hint: room for a typical session, so small ones never regrow.
            let mut fields = F::with_capacity(access.size_hint().unwrap_or(8).min(64));
            let mut expires = None;
            let mut bound: Option<SystemTime> = None;
            while let Some(key) = access.next_key::<String>()? {
                if key == BOUND {
                    let at = bound_of(&access.next_value::<Value>()?)
                        .ok_or_else(|| A::Error::custom(BAD_BOUND))?;
                    bound = Some(bound.map_or(at, |b| b.min(at)));
                    continue;
                }
                if key != COOKIE {
                    fields.insert(key, access.next_value()?);
                    continue;
                }
                let mut cookie: Value = access.next_value()?;
                if let Value::Object(members) = &mut cookie {
                    if F::KEEP_COOKIE {
                        expires = expiry_in(members);
                    } else {
                        expires = take_expiry(members);
                        if members.is_empty() {
                            continue;
                        }
                    }
                }
                fields.insert(key, F::cookie(cookie));
            }
            let at = match (bound, expires) {
                (Some(b), Some(c)) => Some(b.min(c)),
                (b, c) => b.or(c),
            };
            Ok((
                fields,
                Expiry {
                    at,
                    bound: bound.is_some(),
                },
            ))
        }
    }
    deserializer.deserialize_map(FieldsVisitor(PhantomData))
}

/// The parseable expiry of a `cookie` object.
fn expiry_in(cookie: &Map<String, Value>) -> Option<SystemTime> {
    cookie.get(EXPIRES)?.as_str().and_then(timefmt::parse)
}

/// Takes a parseable or null `expires` out of a `cookie` object.
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

/// Splits the expiry out of a kept `cookie` field (a [`Session`]'s data turned into a framework
/// shape).
#[cfg(any(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
pub(crate) fn split_cookie(data: &mut Map<String, Value>) {
    if let Some(Value::Object(cookie)) = data.get_mut(COOKIE) {
        take_expiry(cookie);
        if cookie.is_empty() {
            data.shift_remove(COOKIE);
        }
    }
}

/// Whether two sessions' fields are the same, not counting where the expiry is kept: a
/// `cookie.expires` member, or a `cookie` that holds nothing else, is the expiry, which
/// [`Session`]'s equality compares on its own.
pub(crate) fn same_fields(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let others = |m: &Map<String, Value>| m.iter().filter(|(k, _)| *k != COOKIE).count();
    let rest = |m: &Map<String, Value>| -> Option<Value> {
        let mut cookie = m.get(COOKIE)?.clone();
        if let Value::Object(members) = &mut cookie {
            members.shift_remove(EXPIRES);
            if members.is_empty() {
                return None;
            }
        }
        Some(cookie)
    };
    others(a) == others(b)
        && a.iter()
            .filter(|(k, _)| *k != COOKIE)
            .all(|(k, v)| b.get(k) == Some(v))
        && rest(a) == rest(b)
}

/// Serializes fields as a session object with `expires` as the expiry:
/// - a `cookie` object gets `expires` in place of the one it has, only when that changed;
///   without an expiry, one it held becomes `null` (express-session's "no expiry"); a `cookie`
///   without an `expires` member gets one only when `store` is set;
/// - without a `cookie` field, one holding only the expiry is added when `store` is set;
/// - a `cookie` field that is not an object is written as it is (the key's TTL still carries
///   the expiry);
/// - `bound` is written as the store's [`BOUND`] after the fields (a field of that name is an
///   error: the name is reserved);
/// - `created` (the store's creation record, see [`CREATED`]) replaces a [`CREATED`] field in
///   place (`has_created`: the fields have one), or is added after the others.
#[allow(
    clippy::too_many_arguments,
    reason = "the one place every shape serializes through"
)]
pub(crate) fn serialize_fields<'a, S: Serializer>(
    serializer: S,
    fields: impl ExactSizeIterator<Item = (&'a String, &'a Value)>,
    cookie: Option<&Value>,
    expires: Option<SystemTime>,
    store: bool,
    bound: Option<SystemTime>,
    created: Option<u64>,
    has_created: bool,
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let add = store && expires.is_some() && cookie.is_none();
    let add_created = created.is_some() && !has_created;
    let len =
        fields.len() + usize::from(add) + usize::from(bound.is_some()) + usize::from(add_created);
    let mut map = serializer.serialize_map(Some(len))?;
    for (key, value) in fields {
        match (key.as_str(), value) {
            (BOUND, _) => return Err(S::Error::custom(RESERVED)),
            (COOKIE, Value::Object(members)) => match updated_cookie(members, expires, store) {
                Some(updated) => map.serialize_entry(key, &updated)?,
                None => map.serialize_entry(key, value)?,
            },
            (CREATED, _) if created.is_some() => map.serialize_entry(key, &created)?,
            _ => map.serialize_entry(key, value)?,
        }
    }
    if let Some(expires) = expires.filter(|_| add) {
        map.serialize_entry(COOKIE, &ExpiresOnly(&timefmt::format(expires)))?;
    }
    if let Some(bound) = bound {
        map.serialize_entry(BOUND, &bound_ms(bound))?;
    }
    if let Some(created) = created.filter(|_| add_created) {
        map.serialize_entry(CREATED, &created)?;
    }
    map.end()
}

/// The `cookie` object to write instead of `cookie`, when the expiry it carries must change.
fn updated_cookie(
    cookie: &Map<String, Value>,
    expires: Option<SystemTime>,
    store: bool,
) -> Option<Map<String, Value>> {
    let member = cookie.get(EXPIRES);
    let current = member.and_then(Value::as_str).and_then(timefmt::parse);
    if current.map(timefmt::millis) == expires.map(timefmt::millis) {
        return None;
    }
    let value = match expires {
        Some(at) if store || matches!(member, Some(Value::String(_))) => {
            Value::String(timefmt::format(at))
        }
        None if current.is_some() => Value::Null,
        _ => return None,
    };
    let mut updated = cookie.clone();
    updated.insert(EXPIRES.into(), value);
    Some(updated)
}

/// The message of the error a session with a field named [`BOUND`] gets when written.
pub(crate) const RESERVED: &str = "the field name __exp is reserved for the store's bound";

/// A [`Session`] (kept `cookie`) with the stamp written: its expiry in `cookie.expires` when
/// the stamp or the session asks for it, the stamp's bound and creation record (see
/// [`serialize_fields`]).
pub(crate) fn serialize_session<S: Serializer>(
    session: &Session,
    serializer: S,
    stamp: Stamp,
) -> Result<S::Ok, S::Error> {
    let data = session.data();
    serialize_fields(
        serializer,
        data.iter(),
        data.get(COOKIE),
        session.expires(),
        stamp.expires.is_some() || session.expiry_stored(),
        stamp.bound,
        stamp.created,
        data.contains_key(CREATED),
    )
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

/// The stored form: a [`Session::with_expiry`] expiry in `cookie.expires`, a bound the session
/// was read with as the member `__exp`, a key-only expiry not at all.
impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stamp = Stamp {
            bound: self.expires().filter(|_| self.kept() == Kept::Bound),
            ..Stamp::default()
        };
        serialize_session(self, serializer, stamp)
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (data, expiry) = deserialize_fields::<D, Map<String, Value>>(deserializer)?;
        let kept = if expiry.bound {
            Kept::Bound
        } else {
            Kept::Cookie
        };
        Ok(Session::from_parts(data, expiry.at, kept))
    }
}

/// The expiry a `cookie` field of `data` carries (for [`Session::from_map`]).
pub(crate) fn expiry_of(data: &Map<String, Value>) -> Option<SystemTime> {
    match data.get(COOKIE)? {
        Value::Object(cookie) => expiry_in(cookie),
        _ => None,
    }
}
