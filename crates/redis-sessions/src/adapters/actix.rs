//! `impl actix_session::storage::SessionStore` (actix-session 0.11, feature `actix`).
//!
//! | actix-session call | store call | Redis |
//! |---|---|---|
//! | `load` | [`RedisStore::load`] | `GET`, or `GETEX PX` with an idle timeout |
//! | `save` (new session) | [`RedisStore::create_unique`] with expiry now + `ttl` | `SET NX PX` |
//! | `update` | [`RedisStore::update`]: only if the session still exists | `SET XX PX` |
//! | `update_ttl` | [`RedisStore::refresh`]: TTL only | `PEXPIRE` |
//! | `delete` | [`RedisStore::destroy`] | `UNLINK` |
//!
//! Differences from actix-session's own `RedisSessionStore`, on purpose:
//! - Keys are `prefix + id` with our 192-bit ids, not 64 unprefixed characters.
//! - Values are one JSON object of the fields (actix hands each field over JSON-encoded as a
//!   string; it is stored as the JSON value itself, not a string nested in JSON), so the CLI,
//!   connect-redis and tower-sessions read the same sessions.
//! - `update` of a session that is gone (a concurrent logout) writes nothing and returns the same
//!   key: "logout wins", logged with the fingerprint; actix's store would create a new session.
//! - A cookie that is not a valid id loads as no session, as does a corrupt value (logged).
//! - The expiry lives in the key's TTL only ([`Session::with_key_expiry`]; actix-session keeps
//!   no expiry in the state), except with the store's idle timeout, where the value keeps it as
//!   the absolute bound (actix's session TTL) that sliding reads never pass.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use std::borrow::Cow;
use std::fmt;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::codec::{Decoded, Encodable};
use crate::error::CodecError;
use crate::session::{deserialize_fields, Fields, COOKIE};
use crate::{Backend, Error, RedisStore, Session, SessionId};

type State = HashMap<String, String>;

/// The one place where store errors become actix-session errors (all three kinds carry an
/// `anyhow::Error`; the kind is chosen by the caller).
fn log_error(e: Error) -> anyhow::Error {
    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store error");
    anyhow::Error::new(e)
}

fn to_duration(ttl: &time::Duration) -> Duration {
    Duration::from_millis(u64::try_from(ttl.whole_milliseconds()).unwrap_or(0))
}

/// actix-session's state and its expiry, written straight from the state (no `Session` in
/// between, except for MessagePack and custom serializers): each value is JSON text, stored as
/// the JSON value it is, not as a string.
struct Outgoing<'a> {
    state: &'a State,
    expires: SystemTime,
    /// The store's [`expiry_in_value`](RedisStore::expiry_in_value).
    stored: bool,
}

impl<'a> Outgoing<'a> {
    fn new<B: Backend>(store: &RedisStore<B>, state: &'a State, ttl: Duration) -> Self {
        Outgoing {
            state,
            expires: SystemTime::now() + ttl,
            stored: store.expiry_in_value(),
        }
    }
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_session().serialize(serializer)
    }
}

impl Encodable for Outgoing<'_> {
    fn expires(&self) -> Option<SystemTime> {
        Some(self.expires)
    }

    fn expiry_stored(&self) -> bool {
        self.stored
    }

    fn to_session(&self) -> Cow<'_, Session> {
        let data = self
            .state
            .iter()
            .map(|(k, v)| {
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
                (k.clone(), value)
            })
            .collect();
        Cow::Owned(Session::from_map(data).with_expiry_kept(self.expires, self.stored))
    }

    /// Each value's JSON text goes through [`JsonWriter`]: checked and written as `Value` would
    /// write it, without building one. Text that is not JSON is stored as a string.
    fn to_json(&self) -> Result<Vec<u8>, CodecError> {
        if self.stored && self.state.contains_key(COOKIE) {
            // The expiry is merged into the `cookie` field: the `Session` path does that.
            return crate::codec::json_to_vec(&*self.to_session());
        }
        let size: usize = self.state.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(size + 48);
        out.push(b'{');
        for (i, (key, text)) in self.state.iter().enumerate() {
            if i > 0 {
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
        }
        if self.stored {
            if !self.state.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""cookie":{"expires":""#);
            out.extend_from_slice(crate::timefmt::format(self.expires).as_bytes());
            out.extend_from_slice(br#""}"#);
        }
        out.push(b'}');
        Ok(out)
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
struct Loaded {
    state: State,
    expires: Option<SystemTime>,
}

impl<'de> Deserialize<'de> for Loaded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (state, expires) = deserialize_fields(deserializer)?;
        Ok(Loaded { state, expires })
    }
}

impl Decoded for Loaded {
    fn from_session(session: Session) -> Self {
        Loaded {
            expires: session.expires(),
            state: to_state(session),
        }
    }

    fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// From JSON each value's text is taken as it stands (checked by the parser, not
    /// rewritten): one allocation per value.
    fn from_json(body: &[u8]) -> Result<Self, CodecError> {
        let RawLoaded(RawState(state), expires) = crate::codec::json_from_slice(body)?;
        Ok(Loaded { state, expires })
    }
}

/// actix-session's state decoded from JSON, each value's text as it stands in the value.
struct RawState(State);

struct RawLoaded(RawState, Option<SystemTime>);

impl<'de> Deserialize<'de> for RawLoaded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (state, expires) = deserialize_fields(deserializer)?;
        Ok(RawLoaded(state, expires))
    }
}

impl Fields for RawState {
    type Value = Box<RawValue>;
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

fn to_state(session: Session) -> State {
    session
        .into_data()
        .into_iter()
        .map(|(k, v)| (k, json_text(&v)))
        .collect()
}

/// A value's JSON text. `serde_json::to_string` writes straight into one buffer (`Display`
/// goes through the formatter per token, twice the instructions); a `Value` always serializes.
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

fn parse_key(key: &SessionKey) -> Option<SessionId> {
    SessionId::parse(key.as_ref()).ok()
}

fn to_key(id: &SessionId) -> Result<SessionKey, anyhow::Error> {
    SessionKey::try_from(id.as_str().to_owned()).map_err(|e| anyhow::anyhow!("{e}"))
}

impl<B: Backend> SessionStore for RedisStore<B> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let Some(id) = parse_key(session_key) else {
            return Ok(None);
        };
        let loaded = self
            .load_as::<Loaded>(&id)
            .await
            .map_err(|e| LoadError::Other(log_error(e)))?;
        Ok(loaded.map(|l| l.state))
    }

    async fn save(
        &self,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let session = Outgoing::new(self, &session_state, to_duration(ttl));
        let (id, _outcome) = self
            .create_unique_as(&session, || {
                let id = SessionId::generate()?;
                Ok((id.clone(), id))
            })
            .await
            .map_err(|e| SaveError::Other(log_error(e)))?;
        to_key(&id).map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let Some(id) = parse_key(&session_key) else {
            // Not one of our ids: it was never stored, so there is nothing to update.
            return Ok(session_key);
        };
        let session = Outgoing::new(self, &session_state, to_duration(ttl));
        // `Gone` is "logout wins": logged by the store, nothing written (module docs).
        let _gone_or_written = RedisStore::update_as(self, &id, &session)
            .await
            .map_err(|e| UpdateError::Other(log_error(e)))?;
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        if let Some(id) = parse_key(session_key) {
            let _outcome = self
                .refresh(&id, to_duration(ttl))
                .await
                .map_err(log_error)?;
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        if let Some(id) = parse_key(session_key) {
            self.destroy(&id).await.map_err(log_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_store() -> RedisStore<crate::MemoryBackend> {
        RedisStore::new(crate::MemoryBackend::new())
    }

    fn sliding_store() -> RedisStore<crate::MemoryBackend> {
        RedisStore::builder(crate::MemoryBackend::new())
            .idle_timeout(Duration::from_secs(30))
            .build()
    }

    #[test]
    fn values_are_stored_as_json_not_nested_strings() {
        let mut state = State::new();
        state.insert("counter".into(), "3".into());
        state.insert("user".into(), "\"ada\"".into());
        state.insert("raw".into(), "not json".into());
        let store = plain_store();
        let out = Outgoing::new(&store, &state, Duration::from_secs(60));
        let json: Value = serde_json::from_slice(&out.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"counter": 3, "user": "ada", "raw": "not json"})
        );
        let back = to_state(out.to_session().into_owned());
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
        for store in [plain_store(), sliding_store()] {
            for with_cookie in [false, true] {
                let mut state: State = texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("k{i}\u{e9}\""), (*t).to_owned()))
                    .collect();
                if with_cookie {
                    state.insert(COOKIE.into(), r#"{"path":"/"}"#.into());
                }
                let out = Outgoing::new(&store, &state, Duration::from_secs(60));
                let direct: Value = serde_json::from_slice(&out.to_json().unwrap()).unwrap();
                let via_session: Value =
                    serde_json::from_slice(&crate::codec::json_to_vec(&*out.to_session()).unwrap())
                        .unwrap();
                assert_eq!(
                    direct, via_session,
                    "stored {} cookie {with_cookie}",
                    out.stored
                );
                assert_eq!(direct.get(COOKIE).is_some(), out.stored || with_cookie);
            }
        }
        let empty = State::new();
        let store = sliding_store();
        let out = Outgoing::new(&store, &empty, Duration::from_secs(60));
        let json: Value = serde_json::from_slice(&out.to_json().unwrap()).unwrap();
        assert!(json[COOKIE]["expires"].is_string());
    }

    /// Each field's JSON text parsed back (the direct decode keeps nested objects' member
    /// order, the `Session` path sorts them).
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
            let direct: Loaded = crate::codec::json_from_slice(doc.as_bytes()).unwrap();
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
                let direct: Loaded = crate::codec::msgpack_from_slice(&packed).unwrap();
                assert_eq!(parsed(&direct.state), parsed(&to_state(session)), "{doc}");
            }
        }
        for bad in [&b"[1]"[..], b"{\"a\":", b"{\"a\":[1,}"] {
            assert!(crate::codec::json_from_slice::<Loaded>(bad).is_err());
        }
    }

    #[test]
    fn the_expiry_is_stored_only_under_an_idle_timeout() {
        let state = State::new();
        let plain = plain_store();
        let out = Outgoing::new(&plain, &state, Duration::from_secs(60));
        assert!(!out.expiry_stored());
        assert_eq!(out.to_json().unwrap(), b"{}");
        assert!(!out.to_session().expiry_stored());
        let sliding = sliding_store();
        let out = Outgoing::new(&sliding, &state, Duration::from_secs(60));
        assert!(out.expiry_stored());
        assert!(out.to_session().expiry_stored());
    }
}
