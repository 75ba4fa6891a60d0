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

/// Polls a future once, with a waker that counts its wakes.
fn poll_once<F: std::future::Future + Unpin>(
    f: &mut F,
    wakes: &Arc<std::sync::atomic::AtomicUsize>,
) -> std::task::Poll<F::Output> {
    struct Count(Arc<std::sync::atomic::AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let waker = std::task::Waker::from(Arc::new(Count(Arc::clone(wakes))));
    std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(&waker))
}

fn wakes() -> Arc<std::sync::atomic::AtomicUsize> {
    Arc::new(std::sync::atomic::AtomicUsize::new(0))
}

fn woken(w: &Arc<std::sync::atomic::AtomicUsize>) -> usize {
    w.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_second_write_of_a_key_waits_for_the_first_and_both_install() {
    let c = cache();
    let (w1_wakes, w2_wakes) = (wakes(), wakes());
    let mut t1 = c.turn("k");
    let std::task::Poll::Ready(w1) = poll_once(&mut t1, &w1_wakes) else {
        panic!("the first write of a key goes at once");
    };
    let mut t2 = c.turn("k");
    assert!(
        poll_once(&mut t2, &w2_wakes).is_pending(),
        "waits for the first"
    );
    // Another key is not held up.
    let mut other = c.turn("j");
    assert!(poll_once(&mut other, &wakes()).is_ready());
    // A read meanwhile neither waits nor installs.
    let r = c.begin_read("k");
    w1.install(cached(1), 10, None);
    r.install(cached(0), 10, None);
    assert_eq!(get(&c, "k"), Some(1), "the first write installed");
    assert_eq!(woken(&w2_wakes), 1, "its finish woke the second");
    let std::task::Poll::Ready(w2) = poll_once(&mut t2, &w2_wakes) else {
        panic!("the second write's turn came");
    };
    assert_eq!(get(&c, "k"), None, "a write in flight drops the entry");
    w2.install(cached(2), 10, None);
    assert_eq!(get(&c, "k"), Some(2), "the second installed after it");
    assert!(c.lock().pending.is_empty(), "no marker left");
}

#[test]
fn a_dropped_write_lets_the_next_one_go() {
    let c = cache();
    let mut t1 = c.turn("k");
    let std::task::Poll::Ready(w1) = poll_once(&mut t1, &wakes()) else {
        panic!("the first write goes at once");
    };
    let (w2_wakes, w3_wakes) = (wakes(), wakes());
    let mut t2 = c.turn("k");
    let mut t3 = c.turn("k");
    assert!(poll_once(&mut t2, &w2_wakes).is_pending());
    assert!(poll_once(&mut t3, &w3_wakes).is_pending());
    // The first is cancelled in flight: it installs nothing and the second's turn comes.
    drop(w1);
    assert_eq!((woken(&w2_wakes), woken(&w3_wakes)), (1, 0));
    // The second is cancelled before it polled again: the third's turn comes.
    drop(t2);
    assert_eq!(woken(&w3_wakes), 1);
    let std::task::Poll::Ready(w3) = poll_once(&mut t3, &w3_wakes) else {
        panic!("the third write's turn came");
    };
    w3.install(cached(3), 10, None);
    assert_eq!(get(&c, "k"), Some(3));
    assert!(c.lock().pending.is_empty(), "no marker left");
}

#[test]
fn a_write_dropped_while_waiting_leaves_no_marker() {
    let c = cache();
    let mut t1 = c.turn("k");
    let std::task::Poll::Ready(w1) = poll_once(&mut t1, &wakes()) else {
        panic!("the first write goes at once");
    };
    let mut t2 = c.turn("k");
    assert!(poll_once(&mut t2, &wakes()).is_pending());
    drop(t2);
    w1.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), Some(1));
    assert!(c.lock().pending.is_empty(), "no marker left");
}

#[test]
fn a_write_that_does_not_wait_keeps_one_in_turn_from_installing() {
    // `clear`'s deletes take no turn: their order against the write is unknown.
    let c = cache();
    let mut t = c.turn("k");
    let std::task::Poll::Ready(w) = poll_once(&mut t, &wakes()) else {
        panic!("the write goes at once");
    };
    let delete = c.begin_write("k");
    w.install(cached(1), 10, None);
    drop(delete);
    assert_eq!(get(&c, "k"), None);
}

#[test]
fn an_invalidation_during_a_write_in_turn_keeps_its_value_out() {
    let c = cache();
    let mut t = c.turn("k");
    let std::task::Poll::Ready(w) = poll_once(&mut t, &wakes()) else {
        panic!("the write goes at once");
    };
    c.invalidate("k", true);
    w.install(cached(1), 10, None);
    assert_eq!(get(&c, "k"), None);
}

#[test]
fn a_load_during_a_write_in_turn_waits_for_it_and_takes_its_value() {
    let c = cache();
    let now = Instant::now();
    assert_eq!(
        c.probe::<u32>("k", now, None),
        Err(false),
        "nothing in flight"
    );
    let mut t = c.turn("k");
    let std::task::Poll::Ready(w) = poll_once(&mut t, &wakes()) else {
        panic!("the write goes at once");
    };
    assert_eq!(
        c.probe::<u32>("k", now, None),
        Err(true),
        "a write in flight"
    );
    let load_wakes = wakes();
    let mut load = c.written("k");
    assert!(poll_once(&mut load, &load_wakes).is_pending());
    // Polled again without a wake (a task may be): still waiting.
    assert!(poll_once(&mut load, &load_wakes).is_pending());
    // A second write asks for its turn: the load does not wait for that one.
    let mut t2 = c.turn("k");
    assert!(poll_once(&mut t2, &wakes()).is_pending());
    w.install(cached(1), 10, None);
    assert!(woken(&load_wakes) > 0, "the write's finish woke the load");
    assert!(poll_once(&mut load, &load_wakes).is_ready());
    assert_eq!(c.probe::<u32>("k", now, None), Ok((1, None)));
    drop(t2);
    assert!(c.lock().pending.is_empty(), "no marker left");
}

#[test]
fn a_load_waits_for_nothing_once_another_write_took_the_turn() {
    let c = cache();
    let mut t1 = c.turn("k");
    let std::task::Poll::Ready(w1) = poll_once(&mut t1, &wakes()) else {
        panic!("the write goes at once");
    };
    let mut load = c.written("k");
    assert!(poll_once(&mut load, &wakes()).is_pending());
    let mut t2 = c.turn("k");
    assert!(poll_once(&mut t2, &wakes()).is_pending());
    w1.install(cached(1), 10, None);
    // The second write's turn comes before the load polls again: its value is gone and the
    // load goes on (to Redis) instead of waiting again.
    let std::task::Poll::Ready(w2) = poll_once(&mut t2, &wakes()) else {
        panic!("the second write's turn came");
    };
    assert!(poll_once(&mut load, &wakes()).is_ready());
    assert_eq!(c.probe::<u32>("k", Instant::now(), None), Err(true));
    drop(w2);
}
