//! Round trips of the codec pipeline in every configuration.

use std::sync::Arc;

use super::envelope::{self, MARKER};
use super::*;
use crate::error::Error;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

fn sample() -> Session {
    let mut s = Session::new().with_expiry(UNIX_EPOCH + Duration::from_millis(1_900_000_000_123));
    s.insert("user_id", 42).unwrap();
    s.insert("name", "ada").unwrap();
    s.insert("roles", ["admin", "editor", "viewer"]).unwrap();
    s.insert("nested", json!({"a": [1.5, null, true]})).unwrap();
    s
}

fn all() -> Vec<Box<dyn Serializer>> {
    vec![
        Box::new(Json),
        #[cfg(feature = "msgpack")]
        Box::new(MsgPack),
    ]
}

#[test]
fn round_trips_in_every_format() {
    for ser in all() {
        let bytes = ser.encode(&sample()).unwrap();
        assert_eq!(ser.decode(&bytes).unwrap(), sample(), "{}", ser.name());
    }
}

#[test]
fn rejects_non_sessions_without_echoing_them() {
    for ser in all() {
        for bad in [
            &b"\x93\x01\x02"[..],
            b"[1,2]",
            b"42",
            b"{\"secret\":",
            b"\xff\xfe\xfd",
        ] {
            let err = ser.decode(bad).unwrap_err();
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let full = ser.encode(&sample()).unwrap();
        assert!(
            ser.decode(&full[..full.len() - 3]).is_err(),
            "{}",
            ser.name()
        );
    }
}

#[cfg_attr(
    not(all(feature = "compression", feature = "encryption")),
    allow(unused_variables, unused_mut, reason = "options behind features")
)]
pub(super) fn codec(format: Format, compress: bool, encrypt: Option<KeyRingOpt>) -> Codec {
    let ser: Arc<dyn Serializer> = match format {
        #[cfg(feature = "msgpack")]
        Format::MsgPack => Arc::new(MsgPack),
        _ => Arc::new(Json),
    };
    let mut c = Codec::new(ser, format);
    #[cfg(feature = "compression")]
    c.set_compress_above(compress.then_some(16));
    #[cfg(feature = "encryption")]
    c.set_keys(encrypt);
    c
}

#[cfg(feature = "encryption")]
pub(super) type KeyRingOpt = KeyRing;
#[cfg(not(feature = "encryption"))]
pub(super) type KeyRingOpt = ();

pub(super) fn rings() -> Vec<Option<KeyRingOpt>> {
    #[cfg(feature = "encryption")]
    return vec![None, Some(KeyRing::new([9; 32]))];
    #[cfg(not(feature = "encryption"))]
    vec![None]
}

pub(super) fn formats() -> Vec<Format> {
    vec![
        Format::Json,
        #[cfg(feature = "msgpack")]
        Format::MsgPack,
    ]
}

fn big() -> Session {
    let mut s = sample();
    s.insert("history", vec!["page"; 200]).unwrap();
    s
}

/// Every serializer × compression × encryption writes something every other configuration
/// reads (given the key), and plain values stay plain.
#[test]
#[cfg_attr(
    not(feature = "encryption"),
    allow(clippy::clone_on_copy, reason = "no key ring type without the feature")
)]
fn every_combination_round_trips_and_reads_every_other() {
    let mut written = Vec::new();
    for format in formats() {
        for compress in [false, true] {
            for ring in rings() {
                let encrypted = ring.is_some();
                let c = codec(format, compress, ring);
                for session in [sample(), big()] {
                    let bytes = c.encode_session(&session, b"id-1").unwrap();
                    assert_eq!(c.decode(&bytes, b"id-1").unwrap(), session);
                    let enveloped = bytes[0] == MARKER;
                    assert_eq!(
                        enveloped,
                        encrypted
                            || (compress && cfg!(feature = "compression") && session == big()),
                        "{format:?} {compress} {encrypted}"
                    );
                    if !enveloped && format == Format::Json {
                        assert_eq!(bytes, Json.encode(&session).unwrap());
                    }
                    written.push((bytes, session));
                }
            }
        }
    }
    for reader_format in formats() {
        for compress in [false, true] {
            for ring in rings() {
                let reader = codec(reader_format, compress, ring.clone());
                for (bytes, session) in &written {
                    let header = bytes[0] == MARKER && bytes[2] & envelope::ENCRYPTED != 0;
                    match reader.decode(bytes, b"id-1") {
                        Ok(s) => assert_eq!(&s, session),
                        Err(e) => assert!(header && ring.is_none(), "{e}"),
                    }
                }
            }
        }
    }
}

/// Found by the decode fuzz target: without correctly rounded float parsing a number could
/// change in its last bit when a session is read and written back.
#[test]
fn floats_survive_a_read_write_round_trip() {
    let text = format!(r#"{{"a":1{}}}"#, "0".repeat(57));
    let once = Json.decode(text.as_bytes()).unwrap();
    let twice = Json.decode(&Json.encode(&once).unwrap()).unwrap();
    assert_eq!(once, twice);
}

#[test]
fn size_cap_applies_on_write_and_read() {
    let mut c = codec(Format::Json, false, None);
    c.set_max_size(64);
    let err = c.encode_session(&big(), b"id").unwrap_err();
    assert!(matches!(err, Error::TooLarge { cap: 64, .. }), "{err}");
    assert!(err.to_string().contains("over the store's cap of 64 bytes"));
    let bytes = Json.encode(&big()).unwrap();
    assert_eq!(
        c.decode(&bytes, b"id").unwrap_err(),
        CodecError::TooLarge {
            size: bytes.len(),
            cap: 64
        }
    );
}

/// A custom serializer whose output starts with the marker byte is wrapped, not misread.
#[test]
fn custom_output_starting_with_the_marker_is_wrapped() {
    struct Zero;
    impl Serializer for Zero {
        fn name(&self) -> &'static str {
            "zero"
        }
        fn encode(&self, s: &Session) -> Result<Vec<u8>, CodecError> {
            let mut v = vec![0];
            v.extend(Json.encode(s)?);
            Ok(v)
        }
        fn decode(&self, b: &[u8]) -> Result<Session, CodecError> {
            Json.decode(b.get(1..).unwrap_or_default())
        }
    }
    let c = Codec::new(Arc::new(Zero), format_of::<Zero>());
    let bytes = c.encode_session(&sample(), b"id").unwrap();
    assert_eq!(&bytes[..3], &[MARKER, envelope::VERSION, 0b10_0000]);
    assert_eq!(c.decode(&bytes, b"id").unwrap(), sample());
}

#[test]
fn reads_a_connect_redis_value_with_everything_on() {
    let node = br#"{"cookie":{"originalMaxAge":86400000,"expires":"2030-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"views":1}"#;
    for format in formats() {
        for ring in rings() {
            let c = codec(format, true, ring);
            let s = c.decode(node, b"id").unwrap();
            assert_eq!(s.get::<u64>("views").unwrap(), Some(1));
            assert!(s.expires().is_some());
        }
    }
}

#[cfg(feature = "encryption")]
mod encryption {
    use super::*;

    const OLD: [u8; 32] = [1; 32];
    const NEW: [u8; 32] = [2; 32];

    #[test]
    fn rotation_reads_old_keys_and_writes_with_the_first() {
        let old = codec(Format::Json, false, Some(KeyRing::new(OLD)));
        let rotated = codec(
            Format::Json,
            false,
            Some(KeyRing::from_keys([NEW, OLD]).unwrap()),
        );
        let by_old = old.encode_session(&sample(), b"id").unwrap();
        assert_eq!(rotated.decode(&by_old, b"id").unwrap(), sample());
        let by_new = rotated.encode_session(&sample(), b"id").unwrap();
        let new_id = KeyRing::new(NEW).key_ids()[0].to_be_bytes();
        assert_eq!(&by_new[3..7], &new_id);
        // A store that only has the old key cannot read the new value.
        assert_eq!(
            old.decode(&by_new, b"id").unwrap_err(),
            CodecError::UnknownKey {
                key_id: u32::from_be_bytes(new_id)
            }
        );
        // Once the old key is dropped, old values are unreadable (they expire by TTL).
        let only_new = codec(Format::Json, false, Some(KeyRing::new(NEW)));
        assert!(matches!(
            only_new.decode(&by_old, b"id"),
            Err(CodecError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_value_moved_to_another_key_fails() {
        let c = codec(Format::Json, true, Some(KeyRing::new(NEW)));
        let bytes = c.encode_session(&big(), b"alice").unwrap();
        assert_eq!(
            c.decode(&bytes, b"mallory").unwrap_err(),
            CodecError::Unauthenticated
        );
    }

    #[test]
    fn every_tampered_byte_fails_cleanly() {
        let c = codec(Format::Json, true, Some(KeyRing::new(NEW)));
        for session in [sample(), big()] {
            let bytes = c.encode_session(&session, b"id").unwrap();
            for i in 0..bytes.len() {
                for bit in [0x01, 0x80] {
                    let mut t = bytes.clone();
                    t[i] ^= bit;
                    assert!(c.decode(&t, b"id").is_err(), "byte {i} bit {bit}");
                }
            }
            for len in 0..bytes.len() {
                assert!(
                    c.decode(&bytes[..len], b"id").is_err(),
                    "truncated to {len}"
                );
            }
        }
    }

    #[test]
    fn required_encryption_refuses_plain_values() {
        let mut c = codec(Format::Json, false, Some(KeyRing::new(NEW)));
        c.set_require_encryption(true);
        let plain = Json.encode(&sample()).unwrap();
        assert_eq!(
            c.decode(&plain, b"id").unwrap_err(),
            CodecError::NotEncrypted
        );
        let sealed = c.encode_session(&sample(), b"id").unwrap();
        assert_eq!(c.decode(&sealed, b"id").unwrap(), sample());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let c = codec(Format::Json, false, Some(KeyRing::new([0xab; 32])));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("171") && !shown.contains("ab, ab"),
            "{shown}"
        );
    }
}

/// A value read and written back unchanged keeps its bytes, through the pipeline (the CLI's
/// `import` and `get` + `set` take this path).
#[test]
fn an_unchanged_session_keeps_its_bytes() {
    let c = codec(Format::Json, false, None);
    for text in [
        &br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#[..],
        br#"{"z":{"b":1,"a":2},"cookie":{"expires":"2030-01-01T00:00:00.000Z","path":"/","domain":"x"},"a":null}"#,
    ] {
        let session = c.decode(text, b"id").unwrap();
        assert_eq!(c.encode_session(&session, b"id").unwrap(), text);
    }
}

/// The store's creation record in every format: added after the fields, replacing a field of
/// that name that is not a record in place, read back by `Session::created`, and kept by a
/// write that passes none.
#[test]
fn the_creation_record_round_trips_in_every_format() {
    let at = UNIX_EPOCH + Duration::from_millis(1_800_000_000_456);
    let stamp = Stamp {
        expires: sample().expires(),
        bound: None,
        created: Some(1_800_000_000_456),
    };
    let mut codecs: Vec<_> = formats()
        .into_iter()
        .map(|f| (f, codec(f, false, None)))
        .collect();
    codecs.push((Format::Custom, Codec::new(Arc::new(Json), Format::Custom)));
    for (format, codec) in codecs {
        let bytes = codec.encode(&sample(), stamp, b"id").unwrap();
        let back = codec.decode(&bytes, b"id").unwrap();
        assert_eq!(back.created(), Some(at), "{format:?}");
        assert_eq!(back.get::<i64>("user_id").unwrap(), Some(42), "{format:?}");
        let kept = codec.encode(&back, Stamp::default(), b"id").unwrap();
        assert_eq!(kept, bytes, "{format:?}: rewritten unchanged");
        let mut bogus = sample();
        bogus.insert("__created", "not a record").unwrap();
        assert_eq!(bogus.created(), None);
        let bytes = codec.encode(&bogus, stamp, b"id").unwrap();
        let back = codec.decode(&bytes, b"id").unwrap();
        assert_eq!(back.created(), Some(at), "{format:?}");
        let place = |s: &Session| s.data().keys().position(|k| k == "__created");
        assert_eq!(place(&back), place(&bogus), "{format:?}: replaced in place");
    }
    let json = codec(Format::Json, false, None)
        .encode(&Session::new(), stamp, b"id")
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&json).unwrap(),
        r#"{"__created":1800000000456}"#
    );
}
