//! The record of `export`, `import` and `show --json`: one JSON object per line,
//! `{"id": string, "ttl_ms": number or null, "value": session}`.

use std::time::Duration;

use redis_sessions::{KeyTtl, Session, StoredId};
use serde::{Deserialize, Serialize};

/// A session written out.
#[derive(Debug, Serialize)]
pub(crate) struct Out<'a> {
    /// The session id.
    pub(crate) id: &'a str,
    /// Remaining time to live in milliseconds; `None` (null) for a session without expiry.
    pub(crate) ttl_ms: Option<u64>,
    /// The session as it is stored (its `Serialize` gives the stored JSON form).
    pub(crate) value: &'a Session,
}

impl<'a> Out<'a> {
    /// The record of a session and its TTL (`ttl` must not be [`KeyTtl::Missing`]).
    pub(crate) fn new(id: &'a StoredId, ttl: KeyTtl, value: &'a Session) -> Out<'a> {
        Out {
            id: id.as_str(),
            ttl_ms: ttl_ms(ttl),
            value,
        }
    }
}

/// A session read back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct In {
    /// The session id (validated by the importer).
    pub(crate) id: String,
    /// Remaining time to live in milliseconds; absent or null for no expiry.
    #[serde(default)]
    pub(crate) ttl_ms: Option<u64>,
    /// The session.
    pub(crate) value: Session,
}

/// A TTL in milliseconds, `None` for no expiry (and for a missing key).
pub(crate) fn ttl_ms(ttl: KeyTtl) -> Option<u64> {
    match ttl {
        KeyTtl::Expires(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        KeyTtl::Persistent | KeyTtl::Missing => None,
    }
}

/// A short human form of a TTL: `1d 2h 3m 4s`, `850ms`, `no expiry`.
pub(crate) fn human_ttl(ttl: KeyTtl) -> String {
    let d = match ttl {
        KeyTtl::Expires(d) => d,
        KeyTtl::Persistent => return "no expiry".to_owned(),
        KeyTtl::Missing => return "missing".to_owned(),
    };
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_ttls() {
        let s = |secs| human_ttl(KeyTtl::Expires(Duration::from_secs(secs)));
        assert_eq!(s(59), "59s");
        assert_eq!(s(3600), "1h 0m 0s");
        assert_eq!(s(90_061), "1d 1h 1m 1s");
        assert_eq!(
            human_ttl(KeyTtl::Expires(Duration::from_millis(850))),
            "850ms"
        );
        assert_eq!(human_ttl(KeyTtl::Persistent), "no expiry");
    }

    #[test]
    fn records_round_trip_and_reject_strangers() {
        let line = r#"{"id":"0123456789abcdefghij","ttl_ms":1500,"value":{"n":1}}"#;
        let record: In = serde_json::from_str(line).unwrap();
        assert_eq!(record.ttl_ms, Some(1500));
        assert_eq!(record.value.get::<i64>("n").unwrap(), Some(1));
        let no_ttl: In = serde_json::from_str(r#"{"id":"x","ttl_ms":null,"value":{}}"#).unwrap();
        assert_eq!(no_ttl.ttl_ms, None);
        assert!(serde_json::from_str::<In>(r#"{"id":"x","value":[]}"#).is_err());
        assert!(serde_json::from_str::<In>(r#"{"id":"x","value":{},"extra":1}"#).is_err());
    }
}
