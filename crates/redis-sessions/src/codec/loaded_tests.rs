//! A written session in memory ([`Encodable::loaded`]) is exactly what a load of the bytes
//! written decodes: the client-side cache installs it after a save instead of decoding.

use std::any::TypeId;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::tests::{codec, rings};
use super::*;

fn at() -> SystemTime {
    // Not on a whole millisecond: the stored bound is.
    UNIX_EPOCH + Duration::from_nanos(1_781_245_381_504_123_456)
}

/// The stamps a store writes for the adapters: nothing, the bound (idle timeout), a
/// creation record (absolute timeout), both.
fn stamps() -> Vec<Stamp> {
    let bound = Some(at());
    let created = Some(1_781_000_000_000);
    vec![
        Stamp::default(),
        Stamp {
            bound,
            ..Stamp::default()
        },
        Stamp {
            created,
            ..Stamp::default()
        },
        Stamp {
            bound,
            created,
            ..Stamp::default()
        },
    ]
}

/// Values whose JSON text takes care: floats, escapes, unicode, nesting, big integers, a
/// creation record of the session's own.
fn data() -> HashMap<String, Value> {
    let mut data: HashMap<String, Value> = [
        (
            "name",
            json!("Ada \"Countess\" Lovelace\n\u{e9}\u{1f600}\\"),
        ),
        ("user_id", json!(4242)),
        ("roles", json!(["admin", "editor", "viewer"])),
        ("counter", json!(-7)),
        ("ratio", json!(0.1)),
        ("whole", json!(1000.0)),
        ("tiny", json!(5e-324)),
        ("big", json!(u64::MAX)),
        ("nested", json!({"b": [1, {"c": null}], "a": true, "": ""})),
        ("__created", json!(1_700_000_000_000u64)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    data.insert("empty".to_owned(), json!({}));
    data
}

#[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
#[test]
fn a_tower_record_in_memory_is_what_a_load_of_it_reads() {
    use super::tower::{TowerIn, TowerOut};
    let data = data();
    let out = TowerOut {
        data: &data,
        expires: at(),
    };
    for ring in rings() {
        for compress in [false, true] {
            let c = codec(Format::Json, compress, ring.clone());
            for stamp in stamps() {
                let bytes = c.encode(&out, stamp, b"id").unwrap();
                let read: TowerIn = c.decode_into(&bytes, b"id").unwrap();
                let (value, expires) = out.loaded(stamp, TypeId::of::<TowerIn>()).expect("exact");
                let value = value.downcast_ref::<TowerIn>().unwrap();
                assert_eq!(value.data, read.data, "{stamp:?}");
                assert_eq!((value.expires, expires), (read.expires, read.expires));
            }
        }
    }
    // Another shape, or a `cookie` field (its expiry is split out on reading): none.
    assert!(out
        .loaded(Stamp::default(), TypeId::of::<crate::Session>())
        .is_none());
    let mut with_cookie = data.clone();
    with_cookie.insert("cookie".to_owned(), json!({"expires": null, "path": "/"}));
    let out = TowerOut {
        data: &with_cookie,
        expires: at(),
    };
    assert!(out
        .loaded(Stamp::default(), TypeId::of::<TowerIn>())
        .is_none());
}

#[cfg(feature = "actix")]
#[test]
fn an_actix_state_in_memory_is_what_a_load_of_it_reads() {
    use super::actix::{ActixIn, ActixOut, State};
    // actix-session's texts are `serde_json::to_string`'s.
    let state: State = data()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap()))
        .collect();
    let out = ActixOut::new(&state, at());
    for ring in rings() {
        for compress in [false, true] {
            let c = codec(Format::Json, compress, ring.clone());
            for stamp in stamps() {
                let bytes = c.encode(&out, stamp, b"id").unwrap();
                let read: ActixIn = c.decode_into(&bytes, b"id").unwrap();
                let (value, expires) = out.loaded(stamp, TypeId::of::<ActixIn>()).expect("exact");
                let value = value.downcast_ref::<ActixIn>().unwrap();
                assert_eq!(value.state, read.state, "{stamp:?}");
                assert_eq!((value.expires, expires), (read.expires, read.expires));
            }
        }
    }
    // A text the store writes otherwise than it stands (spaces, another float form, not
    // JSON at all), or a `cookie` field: none, and the load reads what was written.
    for text in [" 5", "1e3", "{\"a\": 1}", "not json", "\"\\u0041\""] {
        let mut odd = state.clone();
        odd.insert("odd".to_owned(), text.to_owned());
        let out = ActixOut::new(&odd, at());
        let c = codec(Format::Json, false, None);
        let bytes = c.encode(&out, Stamp::default(), b"id").unwrap();
        assert!(
            out.loaded(Stamp::default(), TypeId::of::<ActixIn>())
                .is_none(),
            "{text}"
        );
        let read: ActixIn = c.decode_into(&bytes, b"id").unwrap();
        assert_ne!(read.state["odd"], text);
    }
    // Nothing known before the state was written.
    assert!(ActixOut::new(&state, at())
        .loaded(Stamp::default(), TypeId::of::<ActixIn>())
        .is_none());
    let mut with_cookie = state.clone();
    with_cookie.insert("cookie".to_owned(), "{\"path\":\"/\"}".to_owned());
    let out = ActixOut::new(&with_cookie, at());
    let stamp = Stamp {
        bound: Some(at()),
        ..Stamp::default()
    };
    let _bytes = codec(Format::Json, false, None)
        .encode(&out, stamp, b"id")
        .unwrap();
    assert!(out
        .loaded(Stamp::default(), TypeId::of::<ActixIn>())
        .is_none());
}
