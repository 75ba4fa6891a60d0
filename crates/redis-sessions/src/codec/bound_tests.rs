//! The store's compact expiry bound (`__exp`): written compactly, read in every configuration,
//! never one of a session's fields, the old form (`cookie.expires`) still read, a corrupt one
//! refused with a typed error.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::fields::{BOUND, MAX_BOUND_MS};
use super::tests::{codec, formats, rings};
use super::*;
use crate::error::Error;
use crate::session::Kept;

const MS: u64 = 1_781_245_381_504;

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(MS)
}

/// The benchmark's session (bench/server): what `/login` and one `/inc` leave.
fn bench_session() -> Session {
    let mut s = Session::new();
    s.insert("name", "Ada Lovelace").unwrap();
    s.insert("user_id", 4242).unwrap();
    s.insert("roles", ["admin", "editor", "viewer"]).unwrap();
    s.insert("counter", 1).unwrap();
    s
}

fn bound_stamp() -> Stamp {
    Stamp {
        bound: Some(at()),
        ..Stamp::default()
    }
}

/// Every codec configuration, a custom serializer's (through `Session`'s serde) included.
fn every_codec() -> Vec<(String, Codec)> {
    let mut out = Vec::new();
    for format in formats() {
        for compress in [false, true] {
            for ring in rings() {
                let name = format!("{format:?} compress {compress} encrypt {}", ring.is_some());
                out.push((name, codec(format, compress, ring)));
            }
        }
    }
    out.push(("custom".into(), Codec::new(Arc::new(Json), Format::Custom)));
    out
}

/// The bound is the member `"__exp":<Unix ms>` after the fields: 22 bytes on the benchmark's
/// session, whose 86-byte value so stays at 108 bytes, in Redis's 112-byte allocation class
/// (the old `cookie.expires` form took 134, in the 160 class).
#[test]
fn the_bound_is_a_compact_member() {
    let c = codec(Format::Json, false, None);
    let session = bench_session().with_key_expiry(at());
    let plain = c.encode(&session, Stamp::default(), b"id").unwrap();
    let bound = c.encode(&session, bound_stamp(), b"id").unwrap();
    assert_eq!(plain.len(), 86);
    assert_eq!(bound.len(), 108, "{}", String::from_utf8_lossy(&bound));
    assert!(bound.ends_with(br#","__exp":1781245381504}"#));
    let old = c
        .encode(
            &session,
            Stamp {
                expires: Some(at()),
                ..Stamp::default()
            },
            b"id",
        )
        .unwrap();
    assert_eq!(old.len(), 134, "the old form, for the record");
}

/// Every serializer, compression and encryption: the bound reads back as the expiry, kept as
/// the bound, and never as a field; a session read with one and written back keeps its bytes.
#[test]
fn the_bound_round_trips_in_every_configuration_and_is_never_a_field() {
    let session = bench_session().with_key_expiry(at());
    for (name, c) in every_codec() {
        let bytes = c.encode(&session, bound_stamp(), b"id").unwrap();
        let back = c.decode(&bytes, b"id").unwrap();
        assert_eq!(back.expires(), Some(at()), "{name}");
        assert_eq!(back.kept(), Kept::Bound, "{name}");
        assert!(!back.expiry_stored(), "{name}: not in cookie.expires");
        assert!(back.get_value(BOUND).is_none(), "{name}");
        assert_eq!(back.data(), session.data(), "{name}");
        if !name.contains("encrypt true") {
            assert_eq!(c.encode_session(&back, b"id").unwrap(), bytes, "{name}");
        }
        let again = c
            .decode(&c.encode_session(&back, b"id").unwrap(), b"id")
            .unwrap();
        assert_eq!(again.kept(), Kept::Bound, "{name}");
        #[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
        {
            let tower: tower::TowerIn = c.decode_into(&bytes, b"id").unwrap();
            assert_eq!(tower.expires, Some(at()), "{name}");
            assert!(!tower.data.contains_key(BOUND), "{name}");
            assert_eq!(tower.data.len(), 4, "{name}");
        }
        #[cfg(feature = "actix")]
        {
            let actix: actix::ActixIn = c.decode_into(&bytes, b"id").unwrap();
            assert_eq!(actix.expires, Some(at()), "{name}");
            assert!(!actix.state.contains_key(BOUND), "{name}");
            assert_eq!(actix.state.len(), 4, "{name}");
        }
    }
}

/// The framework shapes write the bound straight from their own data, in every format.
#[cfg(all(
    any(feature = "tower-sessions-014", feature = "tower-sessions-015"),
    feature = "actix"
))]
#[test]
fn the_framework_shapes_write_the_bound() {
    let data: std::collections::HashMap<String, Value> =
        bench_session().into_data().into_iter().collect();
    let state: actix::State = data
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    for (name, c) in every_codec() {
        let tower = tower::TowerOut {
            data: &data,
            expires: at(),
        };
        let actix = actix::ActixOut::new(&state, at());
        for bytes in [
            c.encode(&tower, bound_stamp(), b"id").unwrap(),
            c.encode(&actix, bound_stamp(), b"id").unwrap(),
        ] {
            let back: tower::TowerIn = c.decode_into(&bytes, b"id").unwrap();
            assert_eq!(back.expires, Some(at()), "{name}");
            assert_eq!(back.data, data, "{name}");
            let plain = c.encode(&tower, Stamp::default(), b"id").unwrap();
            let back: actix::ActixIn = c.decode_into(&plain, b"id").unwrap();
            assert_eq!(back.expires, None, "{name}: no bound without the stamp");
        }
    }
}

/// Values the previous release wrote carry the bound in `cookie.expires`: they still load
/// with it, and the framework shapes see no `cookie` field.
#[test]
fn the_old_form_still_loads_with_its_bound() {
    let old =
        br#"{"name":"Ada Lovelace","counter":1,"cookie":{"expires":"2026-06-12T06:23:01.504Z"}}"#;
    for (name, c) in every_codec() {
        let session = c.decode(old, b"id").unwrap();
        assert_eq!(session.expires(), Some(at()), "{name}");
        assert_eq!(session.kept(), Kept::Cookie, "{name}");
        #[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
        {
            let tower: tower::TowerIn = c.decode_into(old, b"id").unwrap();
            assert_eq!(tower.expires, Some(at()), "{name}");
            assert_eq!(tower.data.len(), 2, "{name}: no cookie field");
        }
        #[cfg(feature = "actix")]
        {
            let actix: actix::ActixIn = c.decode_into(old, b"id").unwrap();
            assert_eq!(actix.expires, Some(at()), "{name}");
            assert_eq!(actix.state.len(), 2, "{name}: no cookie field");
        }
    }
    // A value with both (a Node app that shares the sessions rewrote `cookie`): the earlier.
    let later = r#""cookie":{"expires":"2030-01-01T00:00:00.000Z"}"#;
    let both = format!(r#"{{{later},"__exp":{MS},"n":1}}"#);
    let earlier = format!(
        r#"{{"cookie":{{"expires":"2026-06-12T06:23:01.504Z"}},"__exp":{}}}"#,
        MS + 1000
    );
    let c = codec(Format::Json, false, None);
    assert_eq!(
        c.decode(both.as_bytes(), b"id").unwrap().expires(),
        Some(at())
    );
    assert_eq!(
        c.decode(earlier.as_bytes(), b"id").unwrap().expires(),
        Some(at())
    );
}

/// A bound that is not a Unix time in milliseconds is a typed error, in JSON and MessagePack,
/// in every shape and through the envelope; never a panic, never read as data.
#[test]
fn a_corrupt_bound_is_a_typed_error() {
    let bad = [
        json!({"__exp": "2026-06-12T06:23:01.504Z", "n": 1}),
        json!({"__exp": -1}),
        json!({"__exp": 1.5}),
        json!({"__exp": null}),
        json!({"__exp": {"ms": 1}}),
        json!({"n": 1, "__exp": MAX_BOUND_MS + 1}),
        json!({"__exp": u64::MAX}),
    ];
    let mut texts: Vec<(&str, Vec<u8>)> = bad
        .iter()
        .map(|v| ("json", serde_json::to_vec(v).unwrap()))
        .collect();
    texts.push(("json", br#"{"__exp":100000000000000000000000}"#.to_vec()));
    #[cfg(feature = "msgpack")]
    texts.extend(
        bad.iter()
            .map(|v| ("msgpack", rmp_serde::to_vec(v).unwrap())),
    );
    let c = codec(Format::Json, false, None);
    for (format, bytes) in &texts {
        let want = CodecError::Bound { format };
        assert_eq!(c.decode(bytes, b"id").unwrap_err(), want, "{bytes:?}");
        #[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
        assert_eq!(
            c.decode_into::<tower::TowerIn>(bytes, b"id").err(),
            Some(want.clone())
        );
        #[cfg(feature = "actix")]
        assert_eq!(
            c.decode_into::<actix::ActixIn>(bytes, b"id").err(),
            Some(want.clone())
        );
        if *format == "json" {
            assert!(
                serde_json::from_slice::<Session>(bytes).is_err(),
                "{bytes:?}"
            );
        }
    }
    // The largest bound and zero are bounds.
    let edge = format!(r#"{{"__exp":{MAX_BOUND_MS}}}"#);
    assert!(c
        .decode(edge.as_bytes(), b"id")
        .unwrap()
        .expires()
        .is_some());
    assert_eq!(
        c.decode(br#"{"__exp":0}"#, b"id").unwrap().expires(),
        Some(UNIX_EPOCH)
    );
    #[cfg(all(feature = "encryption", feature = "compression"))]
    {
        let sealed = codec(Format::Json, true, Some(KeyRing::new([9; 32])));
        let session = Session::from_parts(
            serde_json::from_value(json!({"n": "x".repeat(64)})).unwrap(),
            None,
            Kept::Key,
        );
        let mut bytes = sealed.encode(&session, Stamp::default(), b"id").unwrap();
        assert!(sealed.decode(&bytes, b"id").is_ok());
        // A sealed value whose body holds a bad bound (written by a buggy writer that had the
        // key): the same typed error after opening and inflating.
        let mut corrupt = Session::new();
        corrupt.insert("n", "x".repeat(64)).unwrap();
        corrupt.insert("__exp", "soon").unwrap();
        let body = serde_json::to_vec(corrupt.data()).unwrap();
        let raw = Codec::new(Arc::new(Raw(body)), Format::Custom);
        let mut raw = raw;
        raw.set_keys(Some(KeyRing::new([9; 32])));
        bytes = raw
            .encode(&Session::new(), Stamp::default(), b"id")
            .unwrap();
        assert_eq!(
            sealed.decode(&bytes, b"id").unwrap_err(),
            CodecError::Bound { format: "json" }
        );
    }
}

/// A serializer that writes fixed bytes, standing in for a buggy writer.
#[cfg(all(feature = "encryption", feature = "compression"))]
struct Raw(Vec<u8>);

#[cfg(all(feature = "encryption", feature = "compression"))]
impl Serializer for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn encode(&self, _: &Session) -> Result<Vec<u8>, CodecError> {
        Ok(self.0.clone())
    }
    fn decode(&self, bytes: &[u8]) -> Result<Session, CodecError> {
        Json.decode(bytes)
    }
}

/// `__exp` is reserved: a session, a tower record or an actix state with a field of that name
/// is refused when written, with an error that names it, in every configuration (and by
/// `Session`'s own `Serialize`).
#[test]
fn a_field_named_like_the_bound_is_refused_on_write() {
    let mut session = bench_session();
    session.insert("__exp", 5).unwrap();
    for (name, c) in every_codec() {
        for stamp in [Stamp::default(), bound_stamp()] {
            let err = c.encode(&session, stamp, b"id").unwrap_err();
            assert!(
                matches!(&err, Error::Encode(CodecError::Reserved { field: "__exp" })),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("rename the field"), "{err}");
            #[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
            {
                let data = session.data().clone().into_iter().collect();
                let out = tower::TowerOut {
                    data: &data,
                    expires: at(),
                };
                assert!(matches!(
                    c.encode(&out, stamp, b"id"),
                    Err(Error::Encode(CodecError::Reserved { .. }))
                ));
            }
            #[cfg(feature = "actix")]
            {
                let state = [("__exp".to_owned(), "5".to_owned())].into_iter().collect();
                let out = actix::ActixOut::new(&state, at());
                assert!(matches!(
                    c.encode(&out, stamp, b"id"),
                    Err(Error::Encode(CodecError::Reserved { .. }))
                ));
            }
        }
    }
    assert!(serde_json::to_string(&session).is_err());
}

/// `Session`'s own serde keeps the bound where it was read (the CLI's export and import, a
/// custom serializer), and a new expiry set on such a session replaces the bound.
#[test]
fn a_session_read_with_a_bound_keeps_it() {
    let text = format!(r#"{{"n":1,"__exp":{MS}}}"#);
    let mut s: Session = serde_json::from_str(&text).unwrap();
    assert_eq!(s.kept(), Kept::Bound);
    assert_eq!(serde_json::to_string(&s).unwrap(), text);
    s.set_expires(Some(at() + Duration::from_secs(1)));
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        format!(r#"{{"n":1,"__exp":{}}}"#, MS + 1000)
    );
    let cookie = s.clone().with_expiry(at());
    assert_eq!(
        serde_json::to_string(&cookie).unwrap(),
        r#"{"n":1,"cookie":{"expires":"2026-06-12T06:23:01.504Z"}}"#
    );
    let key_only = s.with_key_expiry(at());
    assert_eq!(serde_json::to_string(&key_only).unwrap(), r#"{"n":1}"#);
}
