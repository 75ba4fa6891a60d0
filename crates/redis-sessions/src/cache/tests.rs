//! The install rule, on fixed interleavings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Cache, CacheConfig, Cached, Tracker};

fn cached(v: u32) -> Cached {
    Cached {
        value: Arc::new(v),
        key_expires: None,
        refreshed: Instant::now(),
        version: None,
    }
}

fn cache() -> Arc<Cache> {
    Arc::new(Cache::new(CacheConfig::new(100)))
}

fn get(c: &Cache, key: &str) -> Option<u32> {
    c.lookup::<u32>(key, Instant::now(), None)
}

#[test]
fn a_read_installs_when_nothing_changed_the_key() {
    let c = cache();
    c.begin_read("k").install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), Some(1));
}

#[test]
fn an_invalidation_during_a_read_keeps_its_value_out() {
    let c = cache();
    let t = c.begin_read("k");
    c.invalidate("k", true);
    t.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), None);
    assert_eq!(c.stats().invalidations, 1);
    // The marker is gone with the last ticket: the next read installs again.
    c.begin_read("k").install(cached(2), 10, None);
    assert_eq!(get(&c, "k"), Some(2));
}

#[test]
fn a_flush_during_a_read_keeps_its_value_out() {
    let c = cache();
    let t = c.begin_read("k");
    c.flush();
    t.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), None);
}

#[test]
fn a_read_overlapping_a_write_of_this_process_never_installs() {
    // Read first, then write: their order in Redis is unknown, but the key holds the
    // written value after both, so the write installs and the read does not.
    let c = cache();
    let r = c.begin_read("k");
    let w = c.begin_write("k");
    w.install(cached(2), 10, None);
    r.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), Some(2));
    let r = c.begin_read("k");
    let w = c.begin_write("k");
    r.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), None);
    w.install(cached(2), 10, None);
    assert_eq!(get(&c, "k"), Some(2));
    // Write first, then a read while it is in flight.
    let w = c.begin_write("k");
    let r = c.begin_read("k");
    w.install(cached(2), 10, None);
    r.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), Some(2));
}

#[test]
fn a_read_that_ends_after_the_write_never_overwrites_it() {
    let c = cache();
    let w = c.begin_write("k");
    let r = c.begin_read("k");
    w.install(cached(2), 10, None);
    r.install(cached(1), 10, None);
    assert_eq!(
        get(&c, "k"),
        Some(2),
        "the read began while a write was in flight"
    );
}

#[test]
fn two_writes_in_flight_install_nothing() {
    let c = cache();
    let w1 = c.begin_write("k");
    let w2 = c.begin_write("k");
    w2.install(cached(2), 10, None);
    w1.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), None);
}

#[test]
fn a_dropped_write_ticket_drops_the_entry() {
    let c = cache();
    c.begin_read("k").install(cached(1), 10, None);
    drop(c.begin_write("k"));
    assert_eq!(get(&c, "k"), None);
}

#[test]
fn entries_past_their_ttl_or_refresh_interval_are_misses() {
    let c = cache();
    let now = Instant::now();
    let t = c.begin_read("k");
    t.install(
        Cached {
            value: Arc::new(1u32),
            key_expires: Some(now + Duration::from_secs(10)),
            refreshed: now,
            version: None,
        },
        10,
        None,
    );
    let every = Some(Duration::from_secs(5));
    assert_eq!(
        c.lookup::<u32>("k", now + Duration::from_secs(4), every),
        Some(1)
    );
    assert_eq!(
        c.lookup::<u32>("k", now + Duration::from_secs(6), every),
        None
    );
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.entries), (1, 1, 0));
}

#[test]
fn the_tracker_reaches_every_registered_cache_but_the_writer() {
    let tracker = Tracker::new();
    let (a, b) = (cache(), cache());
    tracker.register(&a, "sess:");
    tracker.register(&b, "sess:");
    for c in [&a, &b] {
        c.begin_read("k").install(cached(1), 10, None);
    }
    tracker.wrote("k", Some(&a));
    assert_eq!((get(&a, "k"), get(&b, "k")), (Some(1), None));
    tracker.invalidate(b"k");
    assert_eq!(get(&a, "k"), None);
    b.begin_read("j").install(cached(1), 10, None);
    tracker.flush();
    assert_eq!(get(&b, "j"), None);
}

#[test]
fn the_tracked_prefixes_never_overlap() {
    let tracker = Tracker::new();
    assert_eq!(tracker.prefixes(), (vec![], 0));
    let c = cache();
    tracker.register(&c, "app:sess:");
    tracker.register(&c, "app:sess:");
    assert_eq!(tracker.prefixes(), (vec!["app:sess:".to_owned()], 1));
    tracker.register(&c, "other:");
    tracker.register(&c, "app:");
    assert_eq!(
        tracker.prefixes(),
        (vec!["other:".to_owned(), "app:".to_owned()], 3)
    );
    tracker.register(&c, "app:sess:x");
    assert_eq!(tracker.prefixes().1, 3, "covered: unchanged");
    tracker.register(&c, "");
    assert_eq!(tracker.prefixes(), (vec![String::new()], 4), "every key");
}

#[test]
fn a_wrong_shape_is_a_miss() {
    let c = cache();
    c.begin_read("k").install(cached(1), 10, None);
    assert_eq!(c.lookup::<String>("k", Instant::now(), None), None);
}
