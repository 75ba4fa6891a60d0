//! Session ids: generation, validation and log-safe fingerprints.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// Shortest id accepted (16 characters of base64url = 96 bits; our own ids have 128).
pub const MIN_ID_LEN: usize = 16;
/// Longest id accepted.
pub const MAX_ID_LEN: usize = 128;
/// Random bytes in a generated id: 128 bits, as tower-sessions, Rails and PHP (OWASP asks for
/// at least 64 bits of entropy). 22 characters keep a `sess:` key at 27 bytes, in jemalloc's
/// 32-byte class; the 32 characters of 192 bits put it in the 48-byte one.
const ID_BYTES: usize = 16;

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A validated session id: 16 to 128 characters of the URL-safe alphabet `A-Z a-z 0-9 - _`.
///
/// This is the value the client holds (in its cookie), so it is a secret: `Debug` prints only its
/// [`Fingerprint`], and there is deliberately no `Display`. Use [`SessionId::as_str`] where the
/// raw value is really needed (setting the cookie).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Box<str>);

/// Why a session id was rejected. Never contains the id itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidId {
    /// Too short or too long.
    #[error("length {len} is outside {MIN_ID_LEN}..={MAX_ID_LEN}")]
    Length {
        /// The length that was given.
        len: usize,
    },
    /// A character outside `A-Z a-z 0-9 - _`.
    #[error("character at position {position} is not in the URL-safe alphabet")]
    Character {
        /// Zero-based byte position of the first bad character.
        position: usize,
    },
}

impl SessionId {
    /// Generates a fresh id: 128 bits from the operating system's CSPRNG, as 22 base64url
    /// characters (unpadded). Ids of earlier releases (192 bits, 32 characters) still parse:
    /// any valid length is accepted.
    ///
    /// # Errors
    /// [`RandomError`] if the operating system cannot provide random bytes (it converts into
    /// [`Error::Random`](crate::Error::Random)).
    pub fn generate() -> Result<SessionId, RandomError> {
        let bytes: [u8; ID_BYTES] = random_bytes()?;
        Ok(SessionId(base64url(&bytes).into()))
    }

    /// Validates `id` (length and alphabet) without allocating more than the copy.
    ///
    /// # Errors
    /// [`InvalidId`] naming the length or the position of the first bad character.
    pub fn parse(id: &str) -> Result<SessionId, InvalidId> {
        validate(id)?;
        Ok(SessionId(id.into()))
    }

    /// An id made of base64url output by this crate: valid by construction when it is 16 to
    /// 128 characters long (tower-sessions' 22-character ids).
    #[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
    pub(crate) fn from_base64url(text: String) -> SessionId {
        debug_assert!(validate(&text).is_ok());
        SessionId(text.into_boxed_str())
    }

    /// The raw id, for the cookie. Do not log it; log [`SessionId::fingerprint`] instead.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short keyed hash of the id, safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.fingerprint())
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        SessionId::parse(s)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        validate(&s)?;
        Ok(SessionId(s.into_boxed_str()))
    }
}

/// What a listing returns for a session: the rest of its key after the prefix. That is the
/// session id itself, or its hash when the store hashes ids
/// ([`hash_ids`](crate::StoreBuilder::hash_ids)).
///
/// A separate type from [`SessionId`] (the value a user holds in the cookie) so that a listed
/// hash can never be hashed again by passing it where an id is expected: address listed
/// sessions with [`get_listed`](crate::RedisStore::get_listed),
/// [`ttl_listed`](crate::RedisStore::ttl_listed) and
/// [`destroy_listed`](crate::RedisStore::destroy_listed). Without hashing it is the session id,
/// so it is just as secret: `Debug` prints its fingerprint only, and there is no `Display`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoredId(Box<str>);

impl StoredId {
    /// Validates a stored id given as text (the CLI's arguments, an export's `id`): the same
    /// alphabet and length rules as [`SessionId::parse`].
    ///
    /// # Errors
    /// [`InvalidId`] naming the length or the position of the first bad character.
    pub fn parse(id: &str) -> Result<StoredId, InvalidId> {
        validate(id)?;
        Ok(StoredId(id.into()))
    }

    /// The stored id of a session whose key holds its id unhashed.
    pub(crate) fn unhashed(id: &SessionId) -> StoredId {
        StoredId(id.0.clone())
    }

    /// A hash of an id, in base64url: valid by construction.
    pub(crate) fn from_base64url(text: String) -> StoredId {
        debug_assert!(validate(&text).is_ok());
        StoredId(text.into_boxed_str())
    }

    /// The text after the prefix in the session's key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short keyed hash of the stored id, safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.as_str())
    }
}

impl fmt::Debug for StoredId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredId({})", self.fingerprint())
    }
}

impl std::str::FromStr for StoredId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        StoredId::parse(s)
    }
}

/// The operating system's random number generator failed (while generating a session id or
/// a nonce). Keeps the OS error as its source.
#[derive(Debug, thiserror::Error)]
#[error("the OS random number generator failed")]
pub struct RandomError(#[source] getrandom::Error);

/// `N` bytes from the OS CSPRNG: the one place that calls it.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(RandomError)?;
    Ok(bytes)
}

/// A random tower-sessions id (`i128` from 16 random bytes).
#[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
pub(crate) fn random_i128() -> Result<i128, RandomError> {
    Ok(i128::from_le_bytes(random_bytes()?))
}

/// The session id of a tower-sessions `Id`: its text, 22 unpadded base64url characters of the
/// little-endian bytes, as tower-sessions displays it.
#[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
pub(crate) fn tower_session_id(id: i128) -> SessionId {
    SessionId::from_base64url(base64url(&id.to_le_bytes()))
}

/// Checks the length and alphabet of an id.
pub(crate) fn validate(id: &str) -> Result<(), InvalidId> {
    if !(MIN_ID_LEN..=MAX_ID_LEN).contains(&id.len()) {
        return Err(InvalidId::Length { len: id.len() });
    }
    match id
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        Some(position) => Err(InvalidId::Character { position }),
        None => Ok(()),
    }
}

/// Unpadded base64url.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(BASE64URL[index as usize]));
        }
    }
    out
}

/// A short keyed hash of a session id for logs and error messages.
///
/// The key is random per process, so a fingerprint cannot be reversed or precomputed, and it
/// correlates log lines of one process.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u32);

impl Fingerprint {
    /// Fingerprint of any id-like text.
    pub fn of(id: &str) -> Fingerprint {
        static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        let mut hasher = KEY.get_or_init(Default::default).build_hasher();
        hasher.write(id.as_bytes());
        Fingerprint(hasher.finish() as u32)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:08x}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_distinct_and_22_chars() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_eq!(a.as_str().len(), 22);
        assert!(a.as_str().len() >= MIN_ID_LEN);
        assert_ne!(a, b);
        assert!(SessionId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn sixteen_bytes_are_22_unpadded_characters() {
        assert_eq!(base64url(&[0; ID_BYTES]), "A".repeat(22));
        assert_eq!(base64url(&[0xff; ID_BYTES]), format!("{}w", "_".repeat(21)));
        assert_eq!(
            base64url(&[0xff; 24]).len(),
            32,
            "the ids of earlier releases"
        );
    }

    #[test]
    fn ids_of_earlier_releases_still_parse() {
        // 192 bits, 32 characters: what `generate` gave before ids became 128 bits.
        let old = SessionId::parse("ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2").unwrap();
        assert_eq!(old.as_str().len(), 32);
        assert!(SessionId::parse(&"a".repeat(MIN_ID_LEN)).is_ok());
        assert!(SessionId::parse(&"a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn rejects_bad_length_and_alphabet() {
        assert_eq!(SessionId::parse("short"), Err(InvalidId::Length { len: 5 }));
        assert!(matches!(
            SessionId::parse(&"a".repeat(129)),
            Err(InvalidId::Length { len: 129 })
        ));
        assert_eq!(
            SessionId::parse("abcdefghij*klmnopq"),
            Err(InvalidId::Character { position: 10 })
        );
        assert_eq!(
            SessionId::parse("abcdefghijklmnop:q"),
            Err(InvalidId::Character { position: 16 })
        );
        assert!(SessionId::parse("ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2").is_ok());
    }

    #[test]
    fn debug_never_shows_the_id() {
        let id = SessionId::parse("ZpQ5SFm7Nq2h3Xx0Q4bT1Yq9cKx8rVw2").unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains("ZpQ5"), "{shown}");
        assert!(shown.starts_with("SessionId(#"));
        assert_eq!(id.fingerprint(), id.clone().fingerprint());
    }
}
