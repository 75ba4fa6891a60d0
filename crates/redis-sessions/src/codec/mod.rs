//! Session to bytes and back. The only place that touches payload bytes.
//!
//! A [`Serializer`] turns a [`Session`] into bytes: [`Json`] (the default, byte-compatible with
//! connect-redis), [`MsgPack`] (feature `msgpack`), or your own. Around it the store can put an
//! *envelope*: LZ4 compression above a size threshold (feature `compression`) and
//! XChaCha20-Poly1305 encryption with a [`KeyRing`] (feature `encryption`).
//!
//! # Stored values
//!
//! Without compression and encryption a value is the serializer's bytes, exactly as
//! connect-redis writes them. An enveloped value is:
//!
//! | offset | bytes | content |
//! |---|---|---|
//! | 0 | 1 | marker `0x00`: no JSON session (`{`, whitespace) and no MessagePack session (a map, `0x80..=0x8f`, `0xde`, `0xdf`) starts with it |
//! | 1 | 1 | version, `0x01` |
//! | 2 | 1 | flags: bit 0 compressed, bit 1 encrypted, bits 4-5 serializer (`0` JSON, `1` MessagePack, `2` the store's own); other bits are zero |
//! | 3 | 4 | encrypted only: key id, the first 4 bytes of `SHA-256("redis-sessions key id v1\0" ‖ key)` |
//! | 7 | 24 | encrypted only: random XChaCha20 nonce |
//! | 3 or 31 | rest | the body; encrypted: XChaCha20-Poly1305 ciphertext with its 16-byte tag |
//!
//! The body is the serializer's bytes, or when compressed a `u32` little-endian length of them
//! followed by one LZ4 block. Encryption covers the (possibly compressed) body; its associated
//! data is bytes 0..7 followed by the key's suffix after the prefix (the session id, or its hash
//! when ids are hashed), so flipping a flag, or copying a value to another session's key, fails
//! authentication.
//!
//! A session read and written back unchanged keeps its bytes: member order, `null`s and every
//! member of a `cookie` object stay as they were (numbers keep their value; a float's text may
//! be normalized, `1e3` becoming `1000.0`). Only a change of the session's expiry rewrites
//! `cookie.expires`.
//!
//! Under an idle timeout the store writes a key-only expiry (the adapters') as its bound, the
//! reserved top-level member `__exp` (Unix milliseconds, an integer) after the fields, in JSON
//! and MessagePack alike; a custom serializer gets it through [`Session`]'s serde. Readers take
//! it out of the fields in every shape, and still read the bound from `cookie.expires` in
//! values written before it existed.
//!
//! Readers accept every form, whatever the store writes: plain JSON (connect-redis), plain
//! MessagePack (told apart by the first byte), and every envelope. So a store can switch to
//! compression, encryption or another serializer, or rotate keys, without logging anyone out.
//! A value over the size cap is refused before it is parsed, and so is a compressed body whose
//! declared size is over the cap.
//!
//! # Layout
//!
//! - `mod.rs`: the [`Serializer`] trait and the defaults;
//! - `pipeline.rs`: the store's codec (serializer, size cap, compression, encryption);
//! - `envelope.rs`, `compress.rs`, `keyring.rs`: the envelope's header, LZ4, the key ring;
//! - `json.rs`, `msgpack.rs`: the built-in serializers;
//! - `shape.rs`: what the pipeline encodes and decodes (a [`Session`], or a framework's own
//!   shape of one), and `fields.rs`: the session object's serde code, shared by every shape;
//! - `tower.rs`, `actix.rs`: tower-sessions' and actix-session's shapes, decoded and encoded
//!   straight from and into the stored bytes.

#[cfg(feature = "actix")]
pub(crate) mod actix;
#[cfg(test)]
mod bound_tests;
#[cfg(feature = "compression")]
mod compress;
mod envelope;
pub(crate) mod fields;
mod json;
#[cfg(feature = "encryption")]
mod keyring;
#[cfg(test)]
mod loaded_tests;
#[cfg(feature = "msgpack")]
mod msgpack;
mod pipeline;
pub(crate) mod shape;
#[cfg(test)]
mod tests;
#[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
pub(crate) mod tower;

use std::any::TypeId;

pub use json::Json;
#[cfg(feature = "encryption")]
pub use keyring::{KeyRing, KEY_LEN};
#[cfg(feature = "msgpack")]
pub use msgpack::MsgPack;

pub use envelope::StoredForm;
pub(crate) use envelope::{form_of, Format};
pub(crate) use pipeline::Codec;
pub(crate) use shape::{Decoded, Encodable, Loaded, Stamp};

use crate::error::CodecError;
use crate::session::Session;

/// Default cap on a stored value and on a serialized session: 64 KiB.
///
/// Every request that uses a session reads all of it, so a session should hold ids and small
/// state, not documents: 64 KiB is sixteen times the 4 KiB a browser allows a cookie-based
/// session, and reading it on every request already costs far more than the session's
/// lookup. The cap also bounds what a corrupt or hostile value can make a reader allocate.
/// Raise it with [`StoreBuilder::max_value_size`](crate::StoreBuilder::max_value_size).
pub const DEFAULT_MAX_VALUE_SIZE: usize = 64 * 1024;

/// Default compression threshold: serialized sessions from 1 KiB up are compressed.
#[cfg(feature = "compression")]
pub const DEFAULT_COMPRESS_ABOVE: usize = 1024;

/// Turns sessions into bytes and back. Implement it to plug in your own format.
///
/// Errors must not contain session contents (they end up in logs).
pub trait Serializer: Send + Sync + 'static {
    /// Short name of the format, for errors and `Debug`.
    fn name(&self) -> &'static str;
    /// Encodes a session.
    ///
    /// # Errors
    /// The session cannot be represented in this format.
    fn encode(&self, session: &Session) -> Result<Vec<u8>, CodecError>;
    /// Decodes a session.
    ///
    /// # Errors
    /// The bytes are not a session in this format.
    fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError>;
}

/// Which built-in serializer `S` is.
pub(crate) fn format_of<S: Serializer>() -> Format {
    let id = TypeId::of::<S>();
    if id == TypeId::of::<Json>() {
        return Format::Json;
    }
    #[cfg(feature = "msgpack")]
    if id == TypeId::of::<MsgPack>() {
        return Format::MsgPack;
    }
    Format::Custom
}
