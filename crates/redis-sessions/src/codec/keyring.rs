//! Encryption keys: encrypt with the first, decrypt with any.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use super::envelope::{KEY_ID_LEN, NONCE_LEN};
use crate::error::{CodecError, Error};
use crate::id::random_bytes;
use crate::keytext::{decode_key, KeyRingError};

/// Length of an encryption key in bytes (256 bits).
pub const KEY_LEN: usize = crate::keytext::KEY_LEN;

/// The encryption keys of a store: values are encrypted with the first (current) key and
/// decrypted with whichever key their envelope names, so keys rotate without logging anyone out.
///
/// Each key is named in the envelope by a 4-byte key id derived from the key itself (a SHA-256
/// of it), so the order of the old keys does not matter and removing one needs no renumbering.
///
/// `Debug` shows the key ids only, never key material. Cloning is cheap (an `Arc`).
///
/// ```
/// use redis_sessions::KeyRing;
/// # fn main() -> Result<(), redis_sessions::KeyRingError> {
/// // Rotation: put the new key first and keep the old one until the old sessions expired.
/// let ring = KeyRing::from_base64_list(
///     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
/// )?;
/// assert_eq!(ring.len(), 2);
/// assert!(!format!("{ring:?}").contains("AAAA"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KeyRing {
    /// Never empty; the first key encrypts.
    keys: Arc<[RingKey]>,
}

struct RingKey {
    id: [u8; KEY_ID_LEN],
    /// Holds the key; it zeroizes it on drop.
    cipher: XChaCha20Poly1305,
}

impl KeyRing {
    /// A ring with one key, which encrypts and decrypts.
    pub fn new(current: [u8; KEY_LEN]) -> KeyRing {
        KeyRing {
            keys: Arc::from(vec![RingKey::new(&current)]),
        }
    }

    /// A ring from keys, the first being the current one (a key given twice is kept once).
    ///
    /// # Errors
    /// [`KeyRingError::Empty`] when `keys` is empty.
    pub fn from_keys(
        keys: impl IntoIterator<Item = [u8; KEY_LEN]>,
    ) -> Result<KeyRing, KeyRingError> {
        let mut ring: Vec<RingKey> = Vec::new();
        for key in keys {
            let key = RingKey::new(&key);
            if !ring.iter().any(|k| k.id == key.id) {
                ring.push(key);
            }
        }
        if ring.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing {
            keys: Arc::from(ring),
        })
    }

    /// A ring from base64 keys (standard or URL-safe, padded or not) separated by commas,
    /// whitespace or newlines, the first being the current one: the format of `SESSION_KEYS`
    /// and of key files.
    ///
    /// # Errors
    /// [`KeyRingError`] naming the position of the bad key, never its value.
    pub fn from_base64_list(list: &str) -> Result<KeyRing, KeyRingError> {
        let keys = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(n, text)| decode_key(n + 1, text))
            .collect::<Result<Vec<_>, _>>()?;
        KeyRing::from_keys(keys)
    }

    /// A fresh random key from the OS CSPRNG, as standard base64 (for key files and env vars).
    ///
    /// # Errors
    /// [`Error::Random`] when the OS cannot provide random bytes.
    pub fn generate_base64_key() -> Result<String, Error> {
        let key: [u8; KEY_LEN] = random_bytes()?;
        Ok(base64::engine::general_purpose::STANDARD.encode(key))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always `false`: a ring has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, current first (not secret: short hashes of the keys).
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| u32::from_be_bytes(k.id)).collect()
    }

    /// Encrypts `body` with the current key; returns key id, nonce, ciphertext and tag appended
    /// to `out`. `header` is the envelope's authenticated header without the key id.
    pub(crate) fn seal(
        &self,
        header: &[u8],
        bound_to: &[u8],
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let Some(key) = self.keys.first() else {
            return Err(Error::Encode(CodecError::UnknownKey { key_id: 0 }));
        };
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        out.extend_from_slice(header);
        out.extend_from_slice(&key.id);
        let aad = associated_data(out, bound_to);
        let ciphertext = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Encode(CodecError::Unauthenticated))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(())
    }

    /// Decrypts a ciphertext whose authenticated header (with key id) is `header`.
    pub(crate) fn open(
        &self,
        header: &[u8],
        nonce: &[u8],
        bound_to: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CodecError> {
        let id = header
            .get(header.len().saturating_sub(KEY_ID_LEN)..)
            .and_then(|id| <[u8; KEY_ID_LEN]>::try_from(id).ok())
            .ok_or(CodecError::Envelope { what: "no key id" })?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(CodecError::UnknownKey {
                key_id: u32::from_be_bytes(id),
            })?;
        if nonce.len() != NONCE_LEN {
            return Err(CodecError::Envelope {
                what: "bad nonce length",
            });
        }
        let aad = associated_data(header, bound_to);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| CodecError::Unauthenticated)
    }
}

impl RingKey {
    fn new(key: &[u8; KEY_LEN]) -> RingKey {
        let digest = Sha256::new()
            .chain_update(b"redis-sessions key id v1\0")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        RingKey {
            id,
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }
}

/// Associated data: the authenticated header, then what the value is bound to (the key suffix:
/// the session id or its hash), so a value copied to another session's key fails.
fn associated_data(header: &[u8], bound_to: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + bound_to.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(bound_to);
    aad
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self
            .key_ids()
            .iter()
            .map(|id| format!("{id:08x}"))
            .collect();
        f.debug_struct("KeyRing")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_names_bad_keys_by_position() {
        let a = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([2u8; 32]);
        let ring = KeyRing::from_base64_list(&format!(" {a},\n{b}\n,{a} ")).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.key_ids()[0], KeyRing::new([1u8; 32]).key_ids()[0]);
        assert_eq!(
            KeyRing::from_base64_list(" , ").unwrap_err(),
            KeyRingError::Empty
        );
        assert_eq!(
            KeyRing::from_base64_list(&format!("{a},not*base64")).unwrap_err(),
            KeyRingError::Base64 { position: 2 }
        );
        assert_eq!(
            KeyRing::from_base64_list("AAAA").unwrap_err(),
            KeyRingError::Length {
                position: 1,
                len: 3
            }
        );
        let generated = KeyRing::generate_base64_key().unwrap();
        assert!(KeyRing::from_base64_list(&generated).is_ok());
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let ring = KeyRing::new([0x41; 32]);
        let shown = format!("{ring:?}");
        assert!(shown.starts_with("KeyRing { key_ids: ["), "{shown}");
        assert!(
            !shown.contains("65, 65") && !shown.contains("QUFB"),
            "{shown}"
        );
    }
}
