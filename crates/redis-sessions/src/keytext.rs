//! Keys given as text (key files, environment variables): base64 of 32 bytes. Used by the
//! HMAC id hashing and, with the `encryption` feature, by the key ring.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// Length of a key in bytes (256 bits).
pub(crate) const KEY_LEN: usize = 32;

/// Why a key (an encryption key ring, or an HMAC id-hashing key) could not be read from text.
/// Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// No key was given.
    #[error("the key ring is empty: give at least one 32-byte key")]
    Empty,
    /// A key is not valid base64.
    #[error("key {position} is not valid base64 (standard or URL-safe)")]
    Base64 {
        /// 1-based position of the key in the list.
        position: usize,
    },
    /// A key does not decode to 32 bytes.
    #[error(
        "key {position} is {len} bytes; keys are 32 random bytes (e.g. `openssl rand -base64 32`)"
    )]
    Length {
        /// 1-based position of the key in the list.
        position: usize,
        /// Its decoded length.
        len: usize,
    },
}

/// Decodes the key at 1-based `position` of a list: base64, standard or URL-safe, padded or
/// not.
pub(crate) fn decode_key(position: usize, text: &str) -> Result<[u8; KEY_LEN], KeyRingError> {
    let text = text.trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| KeyRingError::Base64 { position })?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyRingError::Length {
        position,
        len: bytes.len(),
    })
}
