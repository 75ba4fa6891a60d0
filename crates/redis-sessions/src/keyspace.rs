//! Session ids to Redis keys and back. The only place that builds key strings.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::id::{base64url, SessionId, StoredId};
use crate::keytext::{decode_key, KeyRingError};

/// How a session id becomes the rest of its key (after the prefix).
///
/// With hashing, the key is `prefix + base64url(hash(id))` (43 characters), so a Redis dump,
/// a replica, a backup or `MONITOR` holds no usable session ids: the fix Rails/Rack shipped
/// for CVE-2019-16782. The cookie still carries the id; the store hashes it on every call.
///
/// Consequences: [`ids`](crate::RedisStore::ids), [`all`](crate::RedisStore::all) and the CLI
/// list the *hashes* (still valid [`SessionId`]s by alphabet, but not cookie values). Revoke a
/// session by the id the user holds (`destroy(&id)` hashes it), or by a listed hash with
/// [`destroy_listed`](crate::RedisStore::destroy_listed). Sessions written without hashing are
/// not found by a hashing store (their keys differ): turning hashing on logs everyone out once.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum IdHashing {
    /// `prefix + id`, as connect-redis (the default).
    #[default]
    Off,
    /// `prefix + base64url(SHA-256(id))`. Enough for ids with ≥ 128 random bits (ours and
    /// tower-sessions' have 128): a hash cannot be turned back into an id.
    Sha256,
    /// `prefix + base64url(HMAC-SHA-256(key, id))`: also hides whether a guessed id exists
    /// from someone who has a dump but not the key.
    HmacSha256([u8; 32]),
}

impl IdHashing {
    /// [`IdHashing::HmacSha256`] with a 32-byte key given as base64 (standard or URL-safe,
    /// padded or not; surrounding whitespace ignored), the form key files and environment
    /// variables hold (`openssl rand -base64 32`).
    ///
    /// # Errors
    /// [`KeyRingError`] when the text is not base64 of 32 bytes (the error never holds the key).
    pub fn hmac_from_base64(key: &str) -> Result<IdHashing, KeyRingError> {
        Ok(IdHashing::HmacSha256(decode_key(1, key.trim())?))
    }

    /// The key suffix (stored id) of `id`: the id itself, or its hash.
    pub fn stored_id(&self, id: &SessionId) -> StoredId {
        match self {
            IdHashing::Off => StoredId::unhashed(id),
            IdHashing::Sha256 => {
                StoredId::from_base64url(base64url(&Sha256::digest(id.as_str().as_bytes())))
            }
            IdHashing::HmacSha256(key) => {
                // HMAC pads keys shorter than the block to the block with zeros (RFC 2104), so
                // this is HMAC-SHA-256 with the 32-byte key, without a fallible constructor.
                let mut block = [0u8; 64];
                block[..32].copy_from_slice(key);
                let mut mac = <Hmac<Sha256> as Mac>::new(&block.into());
                mac.update(id.as_str().as_bytes());
                StoredId::from_base64url(base64url(&mac.finalize().into_bytes()))
            }
        }
    }

    /// The hash naming a user's index: HMAC-SHA-256 under the id-hashing key when there is
    /// one, else SHA-256, of a domain-separated text of the user (never equal to an id's
    /// hash), in base64url.
    pub(crate) fn user_hash(&self, user: &str) -> String {
        const DOMAIN: &[u8] = b"redis-sessions user v1\0";
        match self {
            IdHashing::HmacSha256(key) => {
                let mut block = [0u8; 64];
                block[..32].copy_from_slice(key);
                let mut mac = <Hmac<Sha256> as Mac>::new(&block.into());
                mac.update(DOMAIN);
                mac.update(user.as_bytes());
                base64url(&mac.finalize().into_bytes())
            }
            _ => {
                let mut sha = Sha256::new();
                sha.update(DOMAIN);
                sha.update(user.as_bytes());
                base64url(&sha.finalize())
            }
        }
    }

    /// Whether ids are hashed.
    pub fn is_on(&self) -> bool {
        !matches!(self, IdHashing::Off)
    }
}

impl fmt::Debug for IdHashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdHashing::Off => "Off",
            IdHashing::Sha256 => "Sha256",
            IdHashing::HmacSha256(_) => "HmacSha256(<key>)",
        })
    }
}

/// The key layout: `prefix + id`, or `prefix + hash(id)` with [`IdHashing`].
///
/// Admin scans match `escape(prefix) + "*"` and then check every returned key again: the key must
/// start with the prefix and the rest must be a valid session id. So a foreign key such as
/// `sess:admin:1` (`:` is not in the id alphabet) is never counted, listed or deleted.
#[derive(Clone, Debug)]
pub struct Keyspace {
    prefix: String,
    /// `SCAN MATCH` pattern with the prefix's glob metacharacters escaped.
    pattern: String,
    hashing: IdHashing,
}

impl Keyspace {
    /// A keyspace under `prefix` (may be empty).
    pub fn new(prefix: impl Into<String>) -> Keyspace {
        let prefix = prefix.into();
        let pattern = format!("{}*", escape_glob(&prefix));
        Keyspace {
            prefix,
            pattern,
            hashing: IdHashing::Off,
        }
    }

    /// The same keyspace with ids hashed into keys.
    pub fn with_hashing(mut self, hashing: IdHashing) -> Keyspace {
        self.hashing = hashing;
        self
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How ids are turned into keys.
    pub fn hashing(&self) -> &IdHashing {
        &self.hashing
    }

    /// The Redis key of a session, by the id the client holds (hashed when hashing is on).
    pub fn key(&self, id: &SessionId) -> String {
        match self.hashing {
            IdHashing::Off => self.key_with_suffix(id.as_str()),
            _ => self.stored_key(&self.hashing.stored_id(id)),
        }
    }

    /// The Redis key of a stored id, as [`Keyspace::id_of`] and the listings return it: never
    /// hashed again.
    pub fn stored_key(&self, stored: &StoredId) -> String {
        self.key_with_suffix(stored.as_str())
    }

    /// The stored id of a session id under this keyspace's hashing.
    pub fn stored_id(&self, id: &SessionId) -> StoredId {
        self.hashing.stored_id(id)
    }

    fn key_with_suffix(&self, suffix: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + suffix.len());
        key.push_str(&self.prefix);
        key.push_str(suffix);
        key
    }

    /// A scratch key under the prefix for [`RedisStore::check`](crate::RedisStore::check)'s
    /// permission test: `prefix + "doctor:" + nonce`. `:` is not in the id alphabet, so
    /// listings, counts and `clear` never take it for a session.
    pub(crate) fn scratch_key(&self, nonce: &str) -> String {
        self.key_with_suffix(&format!("doctor:{nonce}"))
    }

    /// The part of one of our keys after the prefix: what an encrypted value is bound to.
    pub(crate) fn suffix<'k>(&self, key: &'k str) -> &'k [u8] {
        key.as_bytes().get(self.prefix.len()..).unwrap_or_default()
    }

    /// The key of a user's session index: `prefix + "~user~" + hash(user)`. `~` is not in the
    /// id alphabet, so no session has this key and session scans skip it; the user's name
    /// never appears in it (see [`IdHashing`] for the hash).
    pub fn index_key(&self, user: &str) -> String {
        let hash = self.hashing.user_hash(user);
        let mut key = String::with_capacity(self.prefix.len() + INDEX_MARKER.len() + hash.len());
        key.push_str(&self.prefix);
        key.push_str(INDEX_MARKER);
        key.push_str(&hash);
        key
    }

    /// Whether a key returned by a scan is one of this keyspace's user indexes.
    pub fn is_index_key(&self, key: &[u8]) -> bool {
        key.strip_prefix(self.prefix.as_bytes())
            .and_then(|rest| rest.strip_prefix(INDEX_MARKER.as_bytes()))
            .is_some_and(|hash| {
                hash.len() == 43
                    && hash
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            })
    }

    /// The `SCAN MATCH` pattern for this keyspace.
    pub fn scan_pattern(&self) -> &str {
        &self.pattern
    }

    /// The stored id of a key returned by a scan (the session id, or its hash when hashing is
    /// on), or `None` for a key that is not one of ours.
    pub fn id_of(&self, key: &[u8]) -> Option<StoredId> {
        let rest = key.strip_prefix(self.prefix.as_bytes())?;
        let rest = std::str::from_utf8(rest).ok()?;
        StoredId::parse(rest).ok()
    }
}

/// What follows the prefix in a user index's key (`~` is outside the id alphabet).
pub const INDEX_MARKER: &str = "~user~";

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
        assert_eq!(ks.id_of(ks.key(&id).as_bytes()), Some(ks.stored_id(&id)));
        assert_eq!(ks.id_of(b"sess:admin:0123456789abcdef"), None);
        assert_eq!(ks.id_of(b"other:0123456789abcdefgh"), None);
        assert_eq!(ks.id_of(b"sess:\xff\xfe0123456789abcdefgh"), None);
        assert_eq!(ks.id_of(b"sess:short"), None);
    }

    #[test]
    fn hashed_keys_hide_the_id_and_list_as_hashes() {
        let id = SessionId::parse("ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2").unwrap();
        let sha = Keyspace::new("sess:").with_hashing(IdHashing::Sha256);
        let key = sha.key(&id);
        // base64url(SHA-256("ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2")), checked with
        // `printf %s ID | openssl dgst -sha256 -binary | basenc --base64url`.
        assert_eq!(key, "sess:i3puyzi4v7zLLqRenlpGL9rs5QbKRnZwM7FuINr9G0A");
        assert!(!key.contains(id.as_str()));
        let listed = sha.id_of(key.as_bytes()).unwrap();
        assert_eq!(sha.stored_key(&listed), key);
        assert_eq!(sha.stored_id(&id), listed);

        let a = Keyspace::new("sess:").with_hashing(IdHashing::HmacSha256([7; 32]));
        let b = Keyspace::new("sess:").with_hashing(IdHashing::HmacSha256([8; 32]));
        assert_ne!(a.key(&id), b.key(&id));
        assert_ne!(a.key(&id), key);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(id.as_str().as_bytes());
        assert_eq!(
            a.key(&id),
            format!("sess:{}", base64url(&mac.finalize().into_bytes()))
        );
        assert_eq!(format!("{:?}", a.hashing()), "HmacSha256(<key>)");
        assert_eq!(Keyspace::new("p:").key(&id), format!("p:{}", id.as_str()));
    }

    #[test]
    fn index_keys_hide_the_user_and_are_never_sessions() {
        let ks = Keyspace::new("sess:");
        let key = ks.index_key("alice@example.com");
        assert!(key.starts_with("sess:~user~"), "{key}");
        assert!(!key.contains("alice"));
        assert!(ks.is_index_key(key.as_bytes()));
        assert_eq!(ks.id_of(key.as_bytes()), None);
        assert!(!ks.is_index_key(b"sess:~user~short"));
        assert!(!ks.is_index_key(b"other:~user~0123456789012345678901234567890123456789012"));
        let id = SessionId::generate().unwrap();
        assert!(!ks.is_index_key(ks.key(&id).as_bytes()));
        // The same user, another key: HMAC under the id-hashing key.
        let keyed = Keyspace::new("sess:").with_hashing(IdHashing::HmacSha256([7; 32]));
        assert_ne!(keyed.index_key("alice@example.com"), key);
        assert!(keyed.is_index_key(keyed.index_key("alice@example.com").as_bytes()));
        // Domain-separated from an id's hash.
        let sha = Keyspace::new("sess:").with_hashing(IdHashing::Sha256);
        assert_ne!(
            sha.index_key(id.as_str()).rsplit('~').next(),
            Some(sha.stored_id(&id).as_str())
        );
    }

    #[test]
    fn hmac_hashing_from_base64() {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        let hashing = IdHashing::hmac_from_base64(&format!(" {text}\n")).unwrap();
        assert!(matches!(hashing, IdHashing::HmacSha256(k) if k == [3u8; 32]));
        let short = base64::engine::general_purpose::STANDARD.encode([3u8; 16]);
        assert!(matches!(
            IdHashing::hmac_from_base64(&short),
            Err(KeyRingError::Length { len: 16, .. })
        ));
        assert!(IdHashing::hmac_from_base64("not base64!").is_err());
    }
}
