//! Entry points of the fuzz targets in `fuzz/`, replayed by the test suite over the committed
//! corpus. Not part of the API (feature `fuzzing`, which only the fuzz crate and the tests
//! enable): they exist so fuzzing and tests run the same code.
//!
//! Each function must return normally for every input; a panic is a bug.

use std::sync::Arc;

#[cfg(feature = "encryption")]
use crate::codec::KeyRing;
use crate::codec::{format_of, Codec, Json};
use crate::id::SessionId;
use crate::keyspace::{escape_glob, IdHashing, Keyspace};

/// The key the fuzzing codecs encrypt with (`[0x42; 32]`), so a corpus can hold valid
/// ciphertexts.
pub const FUZZ_KEY: [u8; 32] = [0x42; 32];
/// What the fuzzing codecs bind encrypted values to.
pub const FUZZ_BOUND_TO: &[u8] = b"fuzz-session-id-0123456789";

fn codecs() -> Vec<Codec> {
    let mut out = vec![Codec::new(Arc::new(Json), format_of::<Json>())];
    #[cfg(feature = "msgpack")]
    out.push(Codec::new(
        Arc::new(crate::codec::MsgPack),
        format_of::<crate::codec::MsgPack>(),
    ));
    #[allow(unused_mut, reason = "options behind features")]
    let mut armored = Codec::new(Arc::new(Json), format_of::<Json>());
    armored.set_max_size(4096);
    #[cfg(feature = "compression")]
    armored.set_compress_above(Some(16));
    #[cfg(feature = "encryption")]
    armored.set_keys(KeyRing::from_keys([[0x17; 32], FUZZ_KEY]).ok());
    out.push(armored);
    out
}

/// A fuzzing codec's encoding of `bytes` decoded as JSON, for building seeds: every envelope
/// form this build supports (`None` when the JSON is not a session).
pub fn seal_for_corpus(json: &[u8]) -> Option<Vec<Vec<u8>>> {
    let session = crate::codec::Serializer::decode(&Json, json).ok()?;
    let mut out = Vec::new();
    for codec in codecs() {
        out.push(codec.encode_session(&session, FUZZ_BOUND_TO).ok()?);
    }
    Some(out)
}

/// The decoder: every codec configuration (plain JSON, MessagePack, and compression plus
/// encryption) on arbitrary bytes. A value that decodes must encode again and decode to the
/// same session.
#[allow(
    clippy::panic,
    reason = "a broken round trip is the bug the fuzzer looks for"
)]
pub fn decode(bytes: &[u8]) {
    for codec in codecs() {
        let Ok(session) = codec.decode(bytes, FUZZ_BOUND_TO) else {
            continue;
        };
        let Ok(again) = codec.encode_session(&session, FUZZ_BOUND_TO) else {
            continue; // re-encoded in another format, it may be over the cap
        };
        match codec.decode(&again, FUZZ_BOUND_TO) {
            Ok(back) if back == session => {}
            Ok(_) => panic!("round trip changed the session"),
            Err(e) => panic!("re-encoded session does not decode: {e}"),
        }
        // Bound to another key, an encrypted value must not open.
        #[cfg(feature = "encryption")]
        if again.first() == Some(&0)
            && again.get(2).is_some_and(|flags| flags & 2 != 0)
            && codec.decode(&again, b"another-key-000000").is_ok()
        {
            panic!("a value moved to another key decrypted");
        }
    }
}

/// Ids and keys: id validation, scan-key parsing (plain and hashed keyspaces), glob escaping
/// and key-ring parsing on arbitrary bytes.
#[allow(
    clippy::panic,
    reason = "a broken invariant is the bug the fuzzer looks for"
)]
pub fn parse_key(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(id) = SessionId::parse(&text) {
        if id.as_str() != text {
            panic!("parse changed the id");
        }
    }
    for prefix in ["sess:", "", "a*b?[c]\\:"] {
        for hashing in [IdHashing::Off, IdHashing::Sha256] {
            let ks = Keyspace::new(prefix).with_hashing(hashing);
            if let Some(id) = ks.id_of(bytes) {
                if ks.stored_key(&id).as_bytes() != bytes {
                    panic!("id_of and stored_key disagree");
                }
                let Ok(session_id) = SessionId::parse(id.as_str()) else {
                    panic!("a stored id is not a valid id");
                };
                let key = ks.key(&session_id);
                if ks.id_of(key.as_bytes()) != Some(ks.stored_id(&session_id)) {
                    panic!("a built key does not parse back to its stored id");
                }
            }
        }
    }
    let escaped = escape_glob(&text);
    if escaped.len() < text.len() {
        panic!("escaping shortened the text");
    }
    #[cfg(feature = "encryption")]
    let _ = KeyRing::from_base64_list(&text);
}
