//! The envelope's header: what the first bytes of an enveloped value mean.
//!
//! The byte format is documented in the [module docs](super).

use crate::error::CodecError;

/// First byte of every enveloped value. No JSON text starts with it (a JSON session starts with
/// `{` or whitespace) and no MessagePack session does (a map starts with `0x80..=0x8f`, `0xde`
/// or `0xdf`; `0x00` is the integer zero).
pub(crate) const MARKER: u8 = 0x00;
/// The only envelope version so far.
pub(crate) const VERSION: u8 = 1;

/// Flag: the body is LZ4-compressed (a `u32` little-endian length, then an LZ4 block).
pub(crate) const COMPRESSED: u8 = 0b0000_0001;
/// Flag: the body is encrypted (key id, nonce, XChaCha20-Poly1305 ciphertext and tag).
pub(crate) const ENCRYPTED: u8 = 0b0000_0010;
/// Bits 4-5: which serializer wrote the body.
const FORMAT_SHIFT: u8 = 4;
const FORMAT_MASK: u8 = 0b0011_0000;
/// Every bit a version-1 reader understands.
const KNOWN: u8 = COMPRESSED | ENCRYPTED | FORMAT_MASK;

/// Bytes before the body of an unencrypted envelope: marker, version, flags.
pub(crate) const PLAIN_HEADER: usize = 3;
/// Length of a key id.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) const KEY_ID_LEN: usize = 4;
/// Length of an XChaCha20 nonce.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) const NONCE_LEN: usize = 24;
/// Bytes that are authenticated as associated data: marker, version, flags, key id.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) const AUTH_HEADER: usize = PLAIN_HEADER + KEY_ID_LEN;
/// Bytes before the ciphertext of an encrypted envelope.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) const SEALED_HEADER: usize = AUTH_HEADER + NONCE_LEN;
/// Length of the Poly1305 tag at the end of the ciphertext.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) const TAG_LEN: usize = 16;

/// Which serializer wrote a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// [`Json`](super::Json).
    Json = 0,
    /// [`MsgPack`](super) (feature `msgpack`).
    MsgPack = 1,
    /// The store's own (custom) serializer.
    Custom = 2,
}

/// A parsed envelope header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) compressed: bool,
    pub(crate) encrypted: bool,
    pub(crate) format: Format,
}

impl Header {
    /// The flags byte.
    pub(crate) fn flags(self) -> u8 {
        let mut flags = (self.format as u8) << FORMAT_SHIFT;
        if self.compressed {
            flags |= COMPRESSED;
        }
        if self.encrypted {
            flags |= ENCRYPTED;
        }
        flags
    }

    /// Marker, version and flags.
    pub(crate) fn bytes(self) -> [u8; PLAIN_HEADER] {
        [MARKER, VERSION, self.flags()]
    }

    /// Parses the first three bytes of a value that starts with [`MARKER`].
    pub(crate) fn parse(bytes: &[u8]) -> Result<Header, CodecError> {
        let [MARKER, version, flags, ..] = *bytes else {
            return Err(envelope("shorter than its header"));
        };
        if version != VERSION {
            return Err(envelope("unknown version"));
        }
        if flags & !KNOWN != 0 {
            return Err(envelope("unknown flags"));
        }
        let format = match (flags & FORMAT_MASK) >> FORMAT_SHIFT {
            0 => Format::Json,
            1 => Format::MsgPack,
            2 => Format::Custom,
            _ => return Err(envelope("unknown serializer")),
        };
        Ok(Header {
            compressed: flags & COMPRESSED != 0,
            encrypted: flags & ENCRYPTED != 0,
            format,
        })
    }
}

/// What a stored value is, as someone reading Redis sees it (no key needed to tell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredForm {
    /// Plain JSON text, readable as it stands (connect-redis's format).
    Json,
    /// Plain MessagePack: binary, but readable with any MessagePack decoder.
    MsgPack,
    /// An envelope whose body is LZ4-compressed, not encrypted: readable once decompressed.
    Compressed,
    /// An encrypted envelope: unreadable without the key ring.
    Encrypted,
    /// None of the above: not a value this store writes.
    Unknown,
}

/// Tells a stored value's form from its first bytes (the envelope's header, or the first byte
/// of a plain JSON or MessagePack session).
pub(crate) fn form_of(bytes: &[u8]) -> StoredForm {
    match bytes.first() {
        Some(&MARKER) => match Header::parse(bytes) {
            Ok(h) if h.encrypted => StoredForm::Encrypted,
            Ok(h) if h.compressed => StoredForm::Compressed,
            Ok(h) if h.format == Format::Json => StoredForm::Json,
            Ok(h) if h.format == Format::MsgPack => StoredForm::MsgPack,
            _ => StoredForm::Unknown,
        },
        Some(b'{' | b' ' | b'\t' | b'\n' | b'\r') => StoredForm::Json,
        Some(0x80..=0x8f | 0xde | 0xdf) => StoredForm::MsgPack,
        _ => StoredForm::Unknown,
    }
}

/// A malformed-envelope error.
pub(crate) fn envelope(what: &'static str) -> CodecError {
    CodecError::Envelope { what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_unknowns() {
        for format in [Format::Json, Format::MsgPack, Format::Custom] {
            for compressed in [false, true] {
                for encrypted in [false, true] {
                    let h = Header {
                        compressed,
                        encrypted,
                        format,
                    };
                    assert_eq!(Header::parse(&h.bytes()), Ok(h));
                }
            }
        }
        assert!(Header::parse(&[MARKER, 2, 0]).is_err());
        assert!(Header::parse(&[MARKER, 1, 0b0100_0000]).is_err());
        assert!(Header::parse(&[MARKER, 1, 0b0011_0000]).is_err());
        assert!(Header::parse(&[MARKER, 1]).is_err());
        assert!(Header::parse(&[]).is_err());
    }

    #[test]
    fn tells_the_stored_form_from_the_first_bytes() {
        let h = |compressed, encrypted| {
            Header {
                compressed,
                encrypted,
                format: Format::Json,
            }
            .bytes()
        };
        assert_eq!(form_of(br#"{"a":1}"#), StoredForm::Json);
        assert_eq!(form_of(b"\n {}"), StoredForm::Json);
        assert_eq!(form_of(&[0x81, 0xa1, b'a', 1]), StoredForm::MsgPack);
        assert_eq!(form_of(&h(true, false)), StoredForm::Compressed);
        assert_eq!(form_of(&h(false, true)), StoredForm::Encrypted);
        assert_eq!(form_of(&h(true, true)), StoredForm::Encrypted);
        assert_eq!(form_of(&[MARKER, 9, 0]), StoredForm::Unknown);
        assert_eq!(form_of(b"hello"), StoredForm::Unknown);
        assert_eq!(form_of(b""), StoredForm::Unknown);
    }
}
