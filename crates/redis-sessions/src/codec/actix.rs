//! actix-session's shape of a session: its state, a map of JSON texts, decoded straight from
//! the stored bytes and encoded straight from the state (no `serde_json::Value` in between,
//! except for MessagePack and custom serializers). Each value is stored as the JSON value it
//! is, not as a string nested in JSON, so the CLI, connect-redis and tower-sessions read the
//! same sessions.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use super::fields::{self, deserialize_fields, Fields, COOKIE, CREATED};
use super::shape::{created_at, stamp_kept, Loaded, Stamp, WithExpiry};
use super::{json, Decoded, Encodable};
use crate::error::CodecError;
use crate::session::Session;

/// actix-session's session state: field names to JSON texts.
pub(crate) type State = HashMap<String, String>;

/// actix-session's state and its expiry, as the store writes them.
pub(crate) struct ActixOut<'a> {
    /// The state, borrowed.
    pub(crate) state: &'a State,
    /// Now plus actix's session TTL: the key's TTL.
    pub(crate) expires: SystemTime,
    /// The last [`to_json`](Encodable::to_json) wrote every text as it stands, so a load
    /// reads the state back as it is ([`Encodable::loaded`]).
    verbatim: AtomicBool,
}

impl<'a> ActixOut<'a> {
    pub(crate) fn new(state: &'a State, expires: SystemTime) -> ActixOut<'a> {
        ActixOut {
            state,
            expires,
            verbatim: AtomicBool::new(false),
        }
    }
}

impl Encodable for ActixOut<'_> {
    fn expires(&self) -> Option<SystemTime> {
        Some(self.expires)
    }

    fn user(&self, field: &str) -> Option<String> {
        user_of_text(self.state.get(field)?)
    }

    fn created(&self) -> Option<SystemTime> {
        created_of_text(self.state.get(CREATED)?)
    }

    fn has_field(&self, name: &str) -> bool {
        self.state.contains_key(name)
    }

    /// MessagePack: through a `Session` (each text parsed into a value).
    fn serialize_with<S: Serializer>(
        &self,
        serializer: S,
        stamp: Stamp,
    ) -> Result<S::Ok, S::Error> {
        let session = self.to_session(stamp);
        super::fields::serialize_session(&session, serializer, stamp)
    }

    fn to_session(&self, stamp: Stamp) -> Cow<'_, Session> {
        let data = self
            .state
            .iter()
            .map(|(k, v)| {
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
                (k.clone(), value)
            })
            .collect();
        Cow::Owned(Session::from_map(data).with_expiry_kept(self.expires, stamp_kept(stamp)))
    }

    fn loaded(&self, stamp: Stamp, shape: TypeId) -> Option<Loaded> {
        if shape != TypeId::of::<ActixIn>() {
            return None;
        }
        self.loaded_state(stamp)
    }

    /// Each value's JSON text goes through [`JsonWriter`]: checked and written as `Value` would
    /// write it, without building one. Text that is not JSON is stored as a string.
    fn to_json(&self, stamp: Stamp) -> Result<Vec<u8>, CodecError> {
        self.verbatim.store(false, Ordering::Relaxed);
        if (stamp.expires.is_some() || stamp.bound.is_some()) && self.state.contains_key(COOKIE) {
            // The expiry is merged into the `cookie` field: the `Session` path does that.
            return json::to_vec(&WithExpiry(&*self.to_session(stamp), stamp));
        }
        let mut verbatim = true;
        let size: usize = self.state.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(size + 72);
        out.push(b'{');
        let mut first = true;
        for (key, text) in self.state {
            if stamp.created.is_some() && key == CREATED {
                continue; // replaced by the stamp's, below
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_json_string(&mut out, key)?;
            out.push(b':');
            let before = out.len();
            let mut de = serde_json::Deserializer::from_str(text);
            if de
                .deserialize_any(JsonWriter(&mut out))
                .and_then(|()| de.end())
                .is_err()
            {
                out.truncate(before);
                write_json_string(&mut out, text)?;
            }
            verbatim &= out[before..] == *text.as_bytes();
        }
        if let Some(expires) = stamp.expires {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(br#""cookie":{"expires":""#);
            out.extend_from_slice(crate::timefmt::format(expires).as_bytes());
            out.extend_from_slice(br#""}"#);
        }
        if let Some(bound) = stamp.bound {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(br#""__exp":"#);
            out.extend_from_slice(fields::bound_ms(bound).to_string().as_bytes());
        }
        if let Some(created) = stamp.created {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(br#""__created":"#);
            out.extend_from_slice(created.to_string().as_bytes());
        }
        out.push(b'}');
        self.verbatim.store(verbatim, Ordering::Relaxed);
        Ok(out)
    }
}

impl ActixOut<'_> {
    /// The state as a load reads the JSON body [`to_json`](Encodable::to_json) wrote: each
    /// text as it is when `to_json` wrote them all unchanged, the creation record the stamp
    /// writes, and the stamp's bound in whole milliseconds. Not with a `cookie` field or an
    /// expiry stamped into `cookie.expires`.
    fn loaded_state(&self, stamp: Stamp) -> Option<Loaded> {
        if stamp.expires.is_some()
            || self.state.contains_key(COOKIE)
            || !self.verbatim.load(Ordering::Relaxed)
        {
            return None;
        }
        let mut state = self.state.clone();
        if let Some(created) = stamp.created {
            state.insert(CREATED.to_owned(), created.to_string());
        }
        let expires = stamp.bound.map(fields::stored_bound);
        Some((Arc::new(ActixIn { state, expires }), expires))
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) -> Result<(), CodecError> {
    serde_json::to_writer(out, s).map_err(|_| CodecError::Other {
        format: "json",
        message: "string cannot be written".into(),
    })
}

/// A stored session in actix-session's shape: each field's value as JSON text, written while
/// the value is decoded (no `serde_json::Value` in between).
#[derive(Clone)]
pub(crate) struct ActixIn {
    /// The state, without the store's expiry (its bound, or split out of `cookie`).
    pub(crate) state: State,
    /// The expiry stored in the value, if any.
    pub(crate) expires: Option<SystemTime>,
}

impl<'de> Deserialize<'de> for ActixIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (state, expiry) = deserialize_fields(deserializer)?;
        Ok(ActixIn {
            state,
            expires: expiry.at,
        })
    }
}

impl Decoded for ActixIn {
    fn from_session(session: Session) -> Self {
        ActixIn {
            expires: session.expires(),
            state: to_state(session),
        }
    }

    fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    fn user(&self, field: &str) -> Option<String> {
        user_of_text(self.state.get(field)?)
    }

    fn created(&self) -> Option<SystemTime> {
        created_of_text(self.state.get(CREATED)?)
    }

    /// From JSON each value's text is taken as it stands (checked by the parser, not
    /// rewritten): one allocation per value.
    fn from_json(body: &[u8]) -> Result<Self, CodecError> {
        let RawLoaded(RawState(state), expires) = json::from_slice(body)?;
        Ok(ActixIn { state, expires })
    }
}

/// The user named by a state value's JSON text.
fn user_of_text(text: &str) -> Option<String> {
    super::shape::user_of(&serde_json::from_str(text).ok()?)
}

/// The creation record a state value's JSON text holds.
fn created_of_text(text: &str) -> Option<SystemTime> {
    text.trim().parse::<u64>().ok().map(created_at)
}

/// actix-session's state decoded from JSON, each value's text as it stands in the value.
struct RawState(State);

struct RawLoaded(RawState, Option<SystemTime>);

impl<'de> Deserialize<'de> for RawLoaded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (state, expiry) = deserialize_fields(deserializer)?;
        Ok(RawLoaded(state, expiry.at))
    }
}

impl Fields for RawState {
    type Value = Box<RawValue>;
    const KEEP_COOKIE: bool = false;
    fn with_capacity(n: usize) -> Self {
        RawState(State::with_capacity(n))
    }
    fn insert(&mut self, key: String, value: Box<RawValue>) {
        self.0.insert(key, String::from(Box::<str>::from(value)));
    }
    fn cookie(cookie: Value) -> Box<RawValue> {
        RawValue::from_string(json_text(&cookie)).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

impl Fields for State {
    type Value = JsonText;
    const KEEP_COOKIE: bool = false;
    fn with_capacity(n: usize) -> Self {
        State::with_capacity(n)
    }
    fn insert(&mut self, key: String, value: JsonText) {
        HashMap::insert(self, key, value.0);
    }
    fn cookie(cookie: Value) -> JsonText {
        JsonText(json_text(&cookie))
    }
}

/// A value decoded from any self-describing format (JSON, MessagePack) as JSON text.
pub(crate) struct JsonText(String);

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        deserializer.deserialize_any(JsonWriter(&mut out))?;
        String::from_utf8(out)
            .map(JsonText)
            .map_err(|_| D::Error::custom("value is not UTF-8"))
    }
}

/// Writes the value it visits as JSON: the same text `serde_json::Value` would print.
struct JsonWriter<'a>(&'a mut Vec<u8>);

impl JsonWriter<'_> {
    fn put<E: serde::de::Error>(self, value: impl serde::Serialize) -> Result<(), E> {
        serde_json::to_writer(self.0, &value).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for JsonWriter<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.put(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.put(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.put(v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // As `Value`: a non-finite float (MessagePack has them, JSON has not) becomes null.
        self.put(serde_json::Number::from_f64(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.put(v)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let before = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(JsonWriter(self.0))?.is_none() {
                self.0.truncate(before);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if !first {
                self.0.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *self.0, &key).map_err(A::Error::custom)?;
            self.0.push(b':');
            map.next_value_seed(JsonWriter(self.0))?;
        }
        self.0.push(b'}');
        Ok(())
    }
}

/// A session's fields (without the expiry) as actix-session's state.
pub(crate) fn to_state(session: Session) -> State {
    session
        .into_fields()
        .into_iter()
        .map(|(k, v)| (k, json_text(&v)))
        .collect()
}

/// A value's JSON text. `serde_json::to_string` writes straight into one buffer (`Display`
/// goes through the formatter per token, twice the instructions); a `Value` always serializes.
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn out(state: &State) -> ActixOut<'_> {
        ActixOut::new(state, SystemTime::now() + Duration::from_secs(60))
    }

    #[test]
    fn values_are_stored_as_json_not_nested_strings() {
        let mut state = State::new();
        state.insert("counter".into(), "3".into());
        state.insert("user".into(), "\"ada\"".into());
        state.insert("raw".into(), "not json".into());
        let out = out(&state);
        let json: Value = serde_json::from_slice(&out.to_json(Stamp::default()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"counter": 3, "user": "ada", "raw": "not json"})
        );
        let back = to_state(out.to_session(Stamp::default()).into_owned());
        assert_eq!(back["counter"], "3");
        assert_eq!(back["user"], "\"ada\"");
        assert_eq!(back["raw"], "\"not json\"");
    }

    /// The direct JSON encode writes what the `Session` path writes, for every kind of text
    /// actix can hand over (and some it cannot), with the expiry stored or not.
    #[test]
    fn direct_encode_matches_the_session_path() {
        let texts = [
            "1",
            "-7",
            "18446744073709551615",
            "1.5",
            "1e300",
            "1e400",
            "true",
            "null",
            " 2 ",
            r#""a \"quoted\" \\ line\nbreak \u00e9 \ud83d\ude00""#,
            r#""""#,
            r#"{"z":1,"a":[{"b":{}},[[]],"x"]}"#,
            "[]",
            "[1,]",
            "{",
            "not json",
            "",
            "\"unterminated",
            "1 2",
            "[1e400]",
        ];
        for (with_cookie, with_created) in [(false, false), (true, false), (false, true)] {
            let mut state: State = texts
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("k{i}\u{e9}\""), (*t).to_owned()))
                .collect();
            if with_cookie {
                state.insert(COOKIE.into(), r#"{"path":"/"}"#.into());
            }
            if with_created {
                state.insert(CREATED.into(), "not a record".into());
            }
            let out = out(&state);
            let kept = [
                (None, None),
                (Some(out.expires), None),
                (None, Some(out.expires)),
            ];
            for (stored, bound) in kept {
                for created in [None, Some(1_700_000_000_123)] {
                    let stamp = Stamp {
                        expires: stored,
                        bound,
                        created,
                    };
                    let direct: Value =
                        serde_json::from_slice(&out.to_json(stamp).unwrap()).unwrap();
                    assert_eq!(
                        direct.get(fields::BOUND).and_then(Value::as_u64),
                        bound.map(fields::bound_ms)
                    );
                    let session = out.to_session(stamp);
                    let via_session: Value = serde_json::from_slice(
                        &json::to_vec(&WithExpiry(&*session, stamp)).unwrap(),
                    )
                    .unwrap();
                    assert_eq!(direct, via_session, "{stamp:?} cookie {with_cookie}");
                    assert_eq!(
                        direct.get(COOKIE).is_some(),
                        stored.is_some() || with_cookie
                    );
                    match created {
                        Some(ms) => assert_eq!(direct[CREATED], ms),
                        None if with_created => assert_eq!(direct[CREATED], "not a record"),
                        None => assert!(direct.get(CREATED).is_none()),
                    }
                }
            }
        }
        let empty = State::new();
        let out = out(&empty);
        assert_eq!(out.to_json(Stamp::default()).unwrap(), b"{}");
        let stamp = Stamp {
            expires: Some(out.expires),
            ..Stamp::default()
        };
        let json: Value = serde_json::from_slice(&out.to_json(stamp).unwrap()).unwrap();
        assert!(json[COOKIE]["expires"].is_string());
        let stamp = Stamp {
            created: Some(7),
            ..Stamp::default()
        };
        assert_eq!(out.to_json(stamp).unwrap(), br#"{"__created":7}"#);
        let stamp = Stamp {
            bound: Some(std::time::UNIX_EPOCH + Duration::from_millis(1_781_245_381_504)),
            created: Some(7),
            ..Stamp::default()
        };
        assert_eq!(
            out.to_json(stamp).unwrap(),
            br#"{"__exp":1781245381504,"__created":7}"#
        );
    }

    /// Each field's JSON text parsed back (the direct decode keeps nested objects' member
    /// order as the text has it).
    fn parsed(state: &State) -> HashMap<&str, Value> {
        state
            .iter()
            .map(|(k, v)| (k.as_str(), serde_json::from_str(v).unwrap()))
            .collect()
    }

    /// The direct decode gives the state the `Session` path gives, for JSON and MessagePack.
    #[test]
    fn direct_decode_matches_the_session_path() {
        let docs = [
            r#"{"n":1,"neg":-7,"big":18446744073709551615,"f":1.5,"e":1e300,"t":true,"z":null}"#,
            r#"{"s":"a \"quoted\" \\ line\nbreak \u00e9 \ud83d\ude00","empty":"","u":"\u0001"}"#,
            r#"{"arr":[],"one":[1],"nested":{"a":[{"b":{}},[[]],"x"],"k":{"z":1,"a":2}}}"#,
            r#"{"cookie":{"expires":"2099-01-01T00:00:00.000Z"},"n":1}"#,
            r#"{"cookie":{"expires":"2099-01-01T00:00:00.000Z","path":"/"},"n":1}"#,
            r#"{"cookie":"not an object","n":1}"#,
            r#"{}"#,
        ];
        for doc in docs {
            let direct: ActixIn = json::from_slice(doc.as_bytes()).unwrap();
            let session: Session = serde_json::from_str(doc).unwrap();
            assert_eq!(direct.expires, session.expires(), "{doc}");
            assert_eq!(
                parsed(&direct.state),
                parsed(&to_state(session.clone())),
                "{doc}"
            );
            #[cfg(feature = "msgpack")]
            {
                let packed =
                    rmp_serde::to_vec(&serde_json::from_str::<Value>(doc).unwrap()).unwrap();
                let direct: ActixIn = super::super::msgpack::from_slice(&packed).unwrap();
                assert_eq!(parsed(&direct.state), parsed(&to_state(session)), "{doc}");
            }
        }
        for bad in [&b"[1]"[..], b"{\"a\":", b"{\"a\":[1,}"] {
            assert!(json::from_slice::<ActixIn>(bad).is_err());
        }
    }
}
