//! The session fields API of both demos: `PUT /api/fields/{name}` sets one top-level field of
//! the signed-in user's session to any JSON value, `GET /api/fields` answers the session's
//! fields as a JSON object. Parallel `PUT`s of one session each change their own field, and
//! the store merges their saves (`merge_concurrent_saves`, on in the demo unless
//! `--merge-concurrent-saves false`), so none is lost; see the README's "Concurrent requests".

use serde_json::Value;

use crate::devices::{IP, SIGNED_IN, USER_AGENT};
use crate::{COUNTER, USER};

/// Longest field name accepted.
pub(crate) const MAX_NAME_LEN: usize = 32;

/// Largest body of a `PUT` accepted (the whole session is still bounded by the store's
/// `max_value_size`).
pub(crate) const MAX_VALUE_LEN: usize = 4096;

/// The fields the demo itself writes: a `PUT` cannot change them (the user field is the one the
/// store indexes sessions by: changing it would sign the session in as someone else).
const RESERVED: [&str; 5] = [USER, COUNTER, USER_AGENT, IP, SIGNED_IN];

/// Why a `PUT` is refused before the session is touched.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not 1 to 32 characters of `[a-z0-9_]`.
    BadName,
    /// One of the demo's own fields.
    Reserved,
    /// Longer than [`MAX_VALUE_LEN`].
    TooLarge,
    /// Not JSON.
    NotJson,
}

impl Refusal {
    /// The HTTP status and the message of the refusal.
    pub(crate) fn answer(&self) -> (u16, String) {
        match self {
            Refusal::BadName => (
                400,
                format!("a field name is 1 to {MAX_NAME_LEN} characters of [a-z0-9_]"),
            ),
            Refusal::Reserved => (400, "this field is the demo's own".to_owned()),
            Refusal::TooLarge => (413, format!("a value is at most {MAX_VALUE_LEN} bytes")),
            Refusal::NotJson => (400, "the body must be one JSON value".to_owned()),
        }
    }
}

/// The field name and value of a `PUT`, checked.
pub(crate) fn parse(name: &str, body: &[u8]) -> Result<Value, Refusal> {
    let name_ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(Refusal::BadName);
    }
    if RESERVED.contains(&name) {
        return Err(Refusal::Reserved);
    }
    if body.len() > MAX_VALUE_LEN {
        return Err(Refusal::TooLarge);
    }
    serde_json::from_slice(body).map_err(|_| Refusal::NotJson)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_values_and_reserved_fields() {
        assert_eq!(parse("f0", b"1"), Ok(json!(1)));
        assert_eq!(parse("a_b_9", br#"{"x":[1,2]}"#), Ok(json!({"x": [1, 2]})));
        assert_eq!(parse(&"a".repeat(32), b"null"), Ok(Value::Null));
        for bad in ["", "A", "a-b", "a b", "é", "a.b", &"a".repeat(33)] {
            assert_eq!(parse(bad, b"1"), Err(Refusal::BadName), "{bad:?}");
        }
        for own in RESERVED {
            assert_eq!(parse(own, b"1"), Err(Refusal::Reserved), "{own}");
        }
        assert_eq!(parse("f", b"{"), Err(Refusal::NotJson));
        assert_eq!(parse("f", b""), Err(Refusal::NotJson));
        let big = format!("\"{}\"", "x".repeat(MAX_VALUE_LEN));
        assert_eq!(parse("f", big.as_bytes()), Err(Refusal::TooLarge));
        assert_eq!(Refusal::TooLarge.answer().0, 413);
    }
}
