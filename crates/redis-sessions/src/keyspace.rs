//! Session ids to Redis keys and back. The only place that builds key strings.

use crate::id::SessionId;

/// The key layout: `prefix + id`.
///
/// Admin scans match `escape(prefix) + "*"` and then check every returned key again: the key must
/// start with the prefix and the rest must be a valid session id. So a foreign key such as
/// `sess:admin:1` (`:` is not in the id alphabet) is never counted, listed or deleted.
#[derive(Clone, Debug)]
pub struct Keyspace {
    prefix: String,
    /// `SCAN MATCH` pattern with the prefix's glob metacharacters escaped.
    pattern: String,
}

impl Keyspace {
    /// A keyspace under `prefix` (may be empty).
    pub fn new(prefix: impl Into<String>) -> Keyspace {
        let prefix = prefix.into();
        let pattern = format!("{}*", escape_glob(&prefix));
        Keyspace { prefix, pattern }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key of a session.
    pub fn key(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.prefix.len() + id.as_str().len());
        key.push_str(&self.prefix);
        key.push_str(id.as_str());
        key
    }

    /// The `SCAN MATCH` pattern for this keyspace.
    pub fn scan_pattern(&self) -> &str {
        &self.pattern
    }

    /// The session id of a key returned by a scan, or `None` for a key that is not one of ours.
    pub fn id_of(&self, key: &[u8]) -> Option<SessionId> {
        let rest = key.strip_prefix(self.prefix.as_bytes())?;
        let rest = std::str::from_utf8(rest).ok()?;
        SessionId::parse(rest).ok()
    }
}

/// Escapes Redis glob metacharacters (`* ? [ ] \`) so `s` matches only itself.
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_glob_metacharacter() {
        assert_eq!(escape_glob("sess:"), "sess:");
        assert_eq!(escape_glob("a*b:"), "a\\*b:");
        assert_eq!(escape_glob("x?[y]:"), "x\\?\\[y\\]:");
        assert_eq!(escape_glob("back\\slash:"), "back\\\\slash:");
        assert_eq!(Keyspace::new("a*b:").scan_pattern(), "a\\*b:*");
        assert_eq!(Keyspace::new("").scan_pattern(), "*");
    }

    #[test]
    fn id_of_checks_prefix_and_id() {
        let ks = Keyspace::new("sess:");
        let id = SessionId::generate().unwrap();
        assert_eq!(ks.id_of(ks.key(&id).as_bytes()), Some(id));
        assert_eq!(ks.id_of(b"sess:admin:0123456789abcdef"), None);
        assert_eq!(ks.id_of(b"other:0123456789abcdefgh"), None);
        assert_eq!(ks.id_of(b"sess:\xff\xfe0123456789abcdefgh"), None);
        assert_eq!(ks.id_of(b"sess:short"), None);
    }
}
