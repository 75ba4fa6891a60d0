//! The store's codec: the serializer, then the size cap, compression and encryption around it.

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "compression")]
use super::compress;
use super::envelope::{self, envelope as malformed, Format, Header, MARKER};
use super::fields::BOUND;
#[cfg(feature = "msgpack")]
use super::msgpack;
use super::shape::Stamp;
#[cfg(feature = "encryption")]
use super::KeyRing;
use super::{Decoded, Encodable, Json, Serializer, DEFAULT_MAX_VALUE_SIZE};
use crate::error::{CodecError, Error};
#[cfg(any(test, feature = "fuzzing"))]
use crate::session::{Kept, Session};

/// The store's codec: the serializer and the envelope around it.
#[derive(Clone)]
pub(crate) struct Codec {
    serializer: Arc<dyn Serializer>,
    /// Which built-in serializer `serializer` is, if any: plain values in the other built-in
    /// format are then still read.
    format: Format,
    /// Cap on stored values and serialized sessions.
    max_size: usize,
    #[cfg(feature = "compression")]
    compress_above: Option<usize>,
    #[cfg(feature = "encryption")]
    keys: Option<KeyRing>,
    /// Refuse values that are not encrypted (an attacker with write access to Redis could
    /// otherwise plant a plain session).
    #[cfg(feature = "encryption")]
    require_encryption: bool,
}

impl Default for Codec {
    /// JSON, the default size cap, no compression, no encryption.
    fn default() -> Codec {
        Codec::new(Arc::new(Json), Format::Json)
    }
}

impl Codec {
    pub(crate) fn new(serializer: Arc<dyn Serializer>, format: Format) -> Codec {
        Codec {
            serializer,
            format,
            max_size: DEFAULT_MAX_VALUE_SIZE,
            #[cfg(feature = "compression")]
            compress_above: None,
            #[cfg(feature = "encryption")]
            keys: None,
            #[cfg(feature = "encryption")]
            require_encryption: false,
        }
    }

    /// Replaces the serializer; `format` says which built-in one it is.
    pub(crate) fn set_serializer(&mut self, serializer: Arc<dyn Serializer>, format: Format) {
        self.serializer = serializer;
        self.format = format;
    }

    /// Whether values are written as JSON (the body [`Encodable::to_json`] writes).
    pub(crate) fn writes_json(&self) -> bool {
        self.format == Format::Json
    }

    pub(crate) fn set_max_size(&mut self, max: usize) {
        self.max_size = max;
    }

    #[cfg(feature = "compression")]
    pub(crate) fn set_compress_above(&mut self, threshold: Option<usize>) {
        self.compress_above = threshold;
    }

    #[cfg(feature = "encryption")]
    pub(crate) fn set_keys(&mut self, keys: Option<KeyRing>) {
        self.keys = keys;
    }

    #[cfg(feature = "encryption")]
    pub(crate) fn set_require_encryption(&mut self, required: bool) {
        self.require_encryption = required;
    }

    /// Encodes a session into the value to store, with the stamp's expiry and creation record
    /// written into the value (the store decides; see [`Encodable`]); `bound_to` is the key's
    /// suffix (the id or its hash), which an encrypted value is bound to.
    pub(crate) fn encode<E: Encodable>(
        &self,
        session: &E,
        stamp: Stamp,
        bound_to: &[u8],
    ) -> Result<Vec<u8>, Error> {
        if session.has_field(BOUND) {
            return Err(Error::Encode(CodecError::Reserved { field: BOUND }));
        }
        let body = match self.format {
            Format::Json => session.to_json(stamp),
            #[cfg(feature = "msgpack")]
            Format::MsgPack => msgpack::to_vec(&super::shape::WithExpiry(session, stamp)),
            _ => {
                let mut whole = session.to_session(stamp);
                if let Some(created) = stamp.created {
                    whole
                        .to_mut()
                        .insert_value(super::fields::CREATED, created.into());
                }
                self.serializer.encode(&whole)
            }
        }
        .map_err(Error::Encode)?;
        self.check_size(body.len())?;
        #[allow(unused_mut, reason = "options behind features")]
        let mut header = Header {
            compressed: false,
            encrypted: false,
            format: self.format,
        };
        #[cfg(feature = "compression")]
        let body = match self.compress_above {
            Some(threshold) if body.len() >= threshold => match compress::compress(&body) {
                Some(packed) => {
                    header.compressed = true;
                    packed
                }
                None => body,
            },
            _ => body,
        };
        #[cfg(feature = "encryption")]
        if let Some(keys) = &self.keys {
            header.encrypted = true;
            let mut out = Vec::with_capacity(body.len() + 64);
            keys.seal(&header.bytes(), bound_to, &body, &mut out)?;
            self.check_size(out.len())?;
            return Ok(out);
        }
        let _ = bound_to;
        // A custom serializer's output that starts with the marker is wrapped, so it is never
        // mistaken for an envelope.
        if !header.compressed && body.first() != Some(&MARKER) {
            return Ok(body);
        }
        let mut out = Vec::with_capacity(body.len() + envelope::PLAIN_HEADER);
        out.extend_from_slice(&header.bytes());
        out.extend_from_slice(&body);
        self.check_size(out.len())?;
        Ok(out)
    }

    fn check_size(&self, size: usize) -> Result<(), Error> {
        if size > self.max_size {
            return Err(Error::TooLarge {
                size,
                cap: self.max_size,
            });
        }
        Ok(())
    }

    /// A [`Session`] with its own expiry rule, for callers outside the store (fuzzing, tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode_session(
        &self,
        session: &Session,
        bound_to: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let at = session.expires();
        let stamp = Stamp {
            expires: at.filter(|_| session.kept() == Kept::Cookie),
            bound: at.filter(|_| session.kept() == Kept::Bound),
            created: None,
        };
        self.encode(session, stamp, bound_to)
    }

    /// Decodes a stored value of any form; `bound_to` as in [`Codec::encode`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn decode(&self, bytes: &[u8], bound_to: &[u8]) -> Result<Session, CodecError> {
        self.decode_into(bytes, bound_to)
    }

    /// [`Codec::decode`] into another shape of a session (see [`Decoded`]).
    pub(crate) fn decode_into<T: Decoded>(
        &self,
        bytes: &[u8],
        bound_to: &[u8],
    ) -> Result<T, CodecError> {
        if bytes.len() > self.max_size {
            return Err(CodecError::TooLarge {
                size: bytes.len(),
                cap: self.max_size,
            });
        }
        if bytes.first() != Some(&MARKER) {
            #[cfg(feature = "encryption")]
            if self.require_encryption {
                return Err(CodecError::NotEncrypted);
            }
            return self.decode_plain(bytes);
        }
        let header = Header::parse(bytes)?;
        let rest = bytes.get(envelope::PLAIN_HEADER..).unwrap_or_default();
        let opened;
        let body = if header.encrypted {
            opened = self.open(bytes, bound_to)?;
            &opened[..]
        } else {
            #[cfg(feature = "encryption")]
            if self.require_encryption {
                return Err(CodecError::NotEncrypted);
            }
            rest
        };
        let inflated;
        let body = if header.compressed {
            inflated = self.inflate(body)?;
            &inflated[..]
        } else {
            body
        };
        self.decode_as(header.format, body)
    }

    #[cfg(feature = "encryption")]
    fn open(&self, bytes: &[u8], bound_to: &[u8]) -> Result<Vec<u8>, CodecError> {
        use envelope::{AUTH_HEADER, SEALED_HEADER, TAG_LEN};
        let keys = self.keys.as_ref().ok_or(CodecError::UnknownKey {
            key_id: bytes
                .get(envelope::PLAIN_HEADER..AUTH_HEADER)
                .and_then(|id| <[u8; 4]>::try_from(id).ok())
                .map_or(0, u32::from_be_bytes),
        })?;
        if bytes.len() < SEALED_HEADER + TAG_LEN {
            return Err(malformed(
                "encrypted value is shorter than its header and tag",
            ));
        }
        let (header, rest) = bytes.split_at(AUTH_HEADER);
        let (nonce, ciphertext) = rest.split_at(SEALED_HEADER - AUTH_HEADER);
        keys.open(header, nonce, bound_to, ciphertext)
    }

    #[cfg(not(feature = "encryption"))]
    fn open(&self, _bytes: &[u8], _bound_to: &[u8]) -> Result<Vec<u8>, CodecError> {
        Err(malformed(
            "value is encrypted, and this build has no `encryption` feature",
        ))
    }

    #[cfg(feature = "compression")]
    fn inflate(&self, body: &[u8]) -> Result<Vec<u8>, CodecError> {
        compress::decompress(body, self.max_size)
    }

    #[cfg(not(feature = "compression"))]
    fn inflate(&self, _body: &[u8]) -> Result<Vec<u8>, CodecError> {
        Err(malformed(
            "value is compressed, and this build has no `compression` feature",
        ))
    }

    /// A value without envelope: JSON and MessagePack are told apart by the first byte, so a
    /// store that switched serializers still reads values the other one wrote.
    fn decode_plain<T: Decoded>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        match bytes.first() {
            _ if self.format == Format::Custom => self.decode_as(Format::Custom, bytes),
            Some(b'{' | b' ' | b'\t' | b'\n' | b'\r') => self.decode_as(Format::Json, bytes),
            Some(0x80..=0x8f | 0xde | 0xdf) if cfg!(feature = "msgpack") => {
                self.decode_as(Format::MsgPack, bytes)
            }
            _ => self.decode_as(Format::Custom, bytes),
        }
    }

    fn decode_as<T: Decoded>(&self, format: Format, body: &[u8]) -> Result<T, CodecError> {
        match format {
            Format::Json => T::from_json(body),
            #[cfg(feature = "msgpack")]
            Format::MsgPack => msgpack::from_slice(body),
            #[cfg(not(feature = "msgpack"))]
            Format::MsgPack => Err(malformed(
                "value is MessagePack, and this build has no `msgpack` feature",
            )),
            Format::Custom => self.serializer.decode(body).map(T::from_session),
        }
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Codec");
        d.field("serializer", &self.serializer.name())
            .field("max_size", &self.max_size);
        #[cfg(feature = "compression")]
        d.field("compress_above", &self.compress_above);
        #[cfg(feature = "encryption")]
        d.field("keys", &self.keys)
            .field("require_encryption", &self.require_encryption);
        d.finish()
    }
}
