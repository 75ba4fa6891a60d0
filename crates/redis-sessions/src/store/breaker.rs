//! Fail-fast (a circuit breaker) around the store's backend calls.
//!
//! After [`FailFast::after_failures`] consecutive timeouts or connection failures (errors of
//! kind [`Timeout`](BackendErrorKind::Timeout) or [`Unavailable`](BackendErrorKind::Unavailable);
//! a refusal, `READONLY`, `NOPERM` or a corrupt value is an answer and resets the count), the
//! breaker **opens**: every call fails at once with a
//! [`FailingFast`](BackendErrorKind::FailingFast) error for [`FailFast::cooldown`]. The first
//! call after the cooldown is the **probe** (the state is then `probing`, and concurrent calls
//! still fail fast): if Redis answers it, the breaker closes; if it times out or the
//! connection fails again, another cooldown starts. A probe whose caller gave up (its future
//! was dropped) lets the next call probe at once.
//!
//! The state machine takes the time as an argument, so its tests drive a clock of their own.
//! A healthy call costs two atomic loads (no lock).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{BackendError, BackendErrorKind};

/// Fail-fast settings ([`StoreBuilder::fail_fast`](crate::StoreBuilder::fail_fast)); on by
/// default with [`FailFast::DEFAULT_FAILURES`] and [`FailFast::DEFAULT_COOLDOWN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailFast {
    failures: u32,
    cooldown: Duration,
}

impl FailFast {
    /// Consecutive timeouts or connection failures that open the breaker by default.
    pub const DEFAULT_FAILURES: u32 = 5;
    /// How long an open breaker fails calls at once before it lets one probe through, by
    /// default.
    pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(1);

    /// The defaults: open after 5 consecutive failures, probe after 1 s.
    pub fn new() -> FailFast {
        FailFast {
            failures: Self::DEFAULT_FAILURES,
            cooldown: Self::DEFAULT_COOLDOWN,
        }
    }

    /// Opens after `failures` consecutive timeouts or connection failures (at least 1).
    pub fn after_failures(mut self, failures: u32) -> FailFast {
        self.failures = failures.max(1);
        self
    }

    /// How long calls fail at once before one probe is let through.
    pub fn cooldown(mut self, cooldown: Duration) -> FailFast {
        self.cooldown = cooldown;
        self
    }
}

impl Default for FailFast {
    fn default() -> Self {
        FailFast::new()
    }
}

/// Where the breaker is ([`RedisStore::fail_fast_state`](crate::RedisStore::fail_fast_state)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailFastState {
    /// Calls go to Redis.
    Closed,
    /// Calls fail at once until the cooldown ends.
    Open,
    /// One probe call is in flight; the others fail at once.
    Probing,
}

impl FailFastState {
    /// The value of the `redis_sessions.fail_fast.state` gauge: 0 closed, 1 open, 2 probing.
    pub fn gauge(self) -> f64 {
        match self {
            FailFastState::Closed => 0.0,
            FailFastState::Open => 1.0,
            FailFastState::Probing => 2.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    Closed,
    /// `since`: when the outage began (for the log line on close).
    Open {
        until: Instant,
        since: Instant,
    },
    Probing {
        since: Instant,
    },
}

/// What the breaker let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A normal call (closed).
    Call,
    /// The one probe.
    Probe,
}

/// What a call's result says about Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Redis answered (a success, or an error that only a live server gives).
    Answered,
    /// A timeout or a connection failure.
    Failed,
}

impl Verdict {
    pub(crate) fn of<T>(result: &Result<T, BackendError>) -> Verdict {
        match result {
            Err(e)
                if matches!(
                    e.kind(),
                    BackendErrorKind::Timeout | BackendErrorKind::Unavailable
                ) =>
            {
                Verdict::Failed
            }
            _ => Verdict::Answered,
        }
    }
}

/// Why a call was failed at once.
#[derive(Debug, thiserror::Error)]
#[error("failing fast after {failures} consecutive timeouts or connection failures ({})",
    match .probe_in {
        Some(d) => format!("next probe in {} ms", d.as_millis()),
        None => "a probe is in flight".to_owned(),
    })]
pub(crate) struct Rejected {
    failures: u32,
    probe_in: Option<Duration>,
}

/// The breaker's state machine.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: FailFast,
    /// Fast path: `false` while closed, so a healthy call takes no lock.
    tripped: AtomicBool,
    /// Consecutive failures while closed.
    failures: AtomicU32,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(config: FailFast) -> Breaker {
        Breaker {
            config,
            tripped: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            state: Mutex::new(State::Closed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn state(&self) -> FailFastState {
        if !self.tripped.load(Ordering::Acquire) {
            return FailFastState::Closed;
        }
        match *self.lock() {
            State::Closed => FailFastState::Closed,
            State::Open { .. } => FailFastState::Open,
            State::Probing { .. } => FailFastState::Probing,
        }
    }

    /// Lets a call through at `now`, or fails it at once.
    pub(crate) fn admit(&self, now: Instant) -> Result<Admission, BackendError> {
        if !self.tripped.load(Ordering::Acquire) {
            return Ok(Admission::Call);
        }
        let mut state = self.lock();
        let probe_in = match *state {
            State::Closed => return Ok(Admission::Call),
            State::Open { until, since } if now >= until => {
                *state = State::Probing { since };
                changed(FailFastState::Probing);
                return Ok(Admission::Probe);
            }
            State::Open { until, .. } => Some(until - now),
            State::Probing { .. } => None,
        };
        drop(state);
        #[cfg(feature = "metrics")]
        metrics::counter!(super::metric::FAIL_FAST_REJECTED).increment(1);
        Err(BackendError::new(
            BackendErrorKind::FailingFast,
            Rejected {
                failures: self.config.failures,
                probe_in,
            },
        ))
    }

    /// Records the result of a call that `admit` let through.
    pub(crate) fn record(&self, admission: Admission, verdict: Verdict, now: Instant) {
        match (admission, verdict) {
            (Admission::Call, Verdict::Answered) => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            (Admission::Call, Verdict::Failed) => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if failures < self.config.failures {
                    return;
                }
                let mut state = self.lock();
                if matches!(*state, State::Closed) {
                    *state = State::Open {
                        until: now + self.config.cooldown,
                        since: now,
                    };
                    self.tripped.store(true, Ordering::Release);
                    tracing::warn!(
                        failures,
                        cooldown_ms = u64::try_from(self.config.cooldown.as_millis()).unwrap_or(u64::MAX),
                        "redis is not answering: failing fast (calls fail at once; one probe per cooldown)"
                    );
                    #[cfg(feature = "metrics")]
                    metrics::counter!(super::metric::FAIL_FAST_OPENED).increment(1);
                    changed(FailFastState::Open);
                }
            }
            (Admission::Probe, Verdict::Answered) => {
                let mut state = self.lock();
                if let State::Probing { since } = *state {
                    *state = State::Closed;
                    self.failures.store(0, Ordering::Relaxed);
                    self.tripped.store(false, Ordering::Release);
                    tracing::info!(
                        failing_fast_ms =
                            u64::try_from(now.saturating_duration_since(since).as_millis())
                                .unwrap_or(u64::MAX),
                        "redis answers again: fail-fast closed"
                    );
                    changed(FailFastState::Closed);
                }
            }
            (Admission::Probe, Verdict::Failed) => {
                let mut state = self.lock();
                if let State::Probing { since } = *state {
                    *state = State::Open {
                        until: now + self.config.cooldown,
                        since,
                    };
                    tracing::debug!("fail-fast probe failed: another cooldown");
                    changed(FailFastState::Open);
                }
            }
        }
    }

    /// The probe's caller gave up before it had a result: the next call probes at once.
    pub(crate) fn abandon_probe(&self, now: Instant) {
        let mut state = self.lock();
        if let State::Probing { since } = *state {
            *state = State::Open { until: now, since };
            changed(FailFastState::Open);
        }
    }
}

/// Exports a change of state as the gauge.
fn changed(state: FailFastState) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(super::metric::FAIL_FAST_STATE).set(state.gauge());
    #[cfg(not(feature = "metrics"))]
    let _ = state;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock of the test's own: no sleeps.
    struct Clock(Instant);

    impl Clock {
        fn now(&self) -> Instant {
            self.0
        }
        fn advance(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    fn breaker() -> (Breaker, Clock) {
        let config = FailFast::new()
            .after_failures(3)
            .cooldown(Duration::from_secs(2));
        (Breaker::new(config), Clock(Instant::now()))
    }

    fn fail(b: &Breaker, clock: &Clock) {
        let admission = b.admit(clock.now()).expect("admitted");
        b.record(admission, Verdict::Failed, clock.now());
    }

    fn rejected(b: &Breaker, clock: &Clock) -> bool {
        match b.admit(clock.now()) {
            Err(e) => {
                assert_eq!(e.kind(), BackendErrorKind::FailingFast);
                true
            }
            Ok(_) => false,
        }
    }

    #[test]
    fn opens_after_the_configured_consecutive_failures_only() {
        let (b, clock) = breaker();
        fail(&b, &clock);
        fail(&b, &clock);
        assert_eq!(b.state(), FailFastState::Closed);
        // An answer resets the count: two more failures do not open it.
        let admission = b.admit(clock.now()).expect("admitted");
        b.record(admission, Verdict::Answered, clock.now());
        fail(&b, &clock);
        fail(&b, &clock);
        assert_eq!(b.state(), FailFastState::Closed);
        fail(&b, &clock);
        assert_eq!(b.state(), FailFastState::Open);
        assert!(rejected(&b, &clock));
    }

    #[test]
    fn only_timeouts_and_connection_failures_count() {
        let err = |kind| Err::<(), _>(BackendError::new(kind, "x"));
        assert_eq!(
            Verdict::of(&err(BackendErrorKind::Timeout)),
            Verdict::Failed
        );
        assert_eq!(
            Verdict::of(&err(BackendErrorKind::Unavailable)),
            Verdict::Failed
        );
        for kind in [
            BackendErrorKind::PermissionDenied,
            BackendErrorKind::ReadOnly,
            BackendErrorKind::WrongType,
            BackendErrorKind::Auth,
            BackendErrorKind::Other,
        ] {
            assert_eq!(Verdict::of(&err(kind)), Verdict::Answered, "{kind:?}");
        }
        assert_eq!(Verdict::of(&Ok::<_, BackendError>(())), Verdict::Answered);
    }

    #[test]
    fn after_the_cooldown_one_probe_decides_and_the_others_fail_fast() {
        let (b, mut clock) = breaker();
        for _ in 0..3 {
            fail(&b, &clock);
        }
        clock.advance(Duration::from_millis(1999));
        assert!(rejected(&b, &clock), "still cooling down");
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.admit(clock.now()).expect("probe"), Admission::Probe);
        assert_eq!(b.state(), FailFastState::Probing);
        // Concurrent callers during the probe fail at once.
        assert!(rejected(&b, &clock));
        assert!(rejected(&b, &clock));
        b.record(Admission::Probe, Verdict::Answered, clock.now());
        assert_eq!(b.state(), FailFastState::Closed);
        assert_eq!(b.admit(clock.now()).expect("closed"), Admission::Call);
        // Closed again from zero: it takes the full count to open once more.
        fail(&b, &clock);
        fail(&b, &clock);
        assert_eq!(b.state(), FailFastState::Closed);
    }

    #[test]
    fn a_failed_probe_starts_another_cooldown() {
        let (b, mut clock) = breaker();
        for _ in 0..3 {
            fail(&b, &clock);
        }
        clock.advance(Duration::from_secs(2));
        let probe = b.admit(clock.now()).expect("probe");
        clock.advance(Duration::from_millis(500));
        b.record(probe, Verdict::Failed, clock.now());
        assert_eq!(b.state(), FailFastState::Open);
        clock.advance(Duration::from_millis(1999));
        assert!(
            rejected(&b, &clock),
            "the new cooldown counts from the failed probe"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.admit(clock.now()).expect("probe"), Admission::Probe);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe_at_once() {
        let (b, mut clock) = breaker();
        for _ in 0..3 {
            fail(&b, &clock);
        }
        clock.advance(Duration::from_secs(2));
        assert_eq!(b.admit(clock.now()).expect("probe"), Admission::Probe);
        b.abandon_probe(clock.now());
        assert_eq!(b.state(), FailFastState::Open);
        assert_eq!(b.admit(clock.now()).expect("probe"), Admission::Probe);
    }

    #[test]
    fn failures_of_calls_in_flight_when_it_opened_change_nothing() {
        let (b, mut clock) = breaker();
        let in_flight: Vec<_> = (0..5)
            .map(|_| b.admit(clock.now()).expect("call"))
            .collect();
        for admission in in_flight {
            b.record(admission, Verdict::Failed, clock.now());
        }
        assert_eq!(b.state(), FailFastState::Open);
        clock.advance(Duration::from_secs(1));
        // A late failure of a call admitted before the breaker opened does not extend it.
        b.record(Admission::Call, Verdict::Failed, clock.now());
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.admit(clock.now()).expect("probe"), Admission::Probe);
    }

    #[test]
    fn the_rejection_says_why_and_when_the_next_probe_is() {
        let (b, mut clock) = breaker();
        for _ in 0..3 {
            fail(&b, &clock);
        }
        clock.advance(Duration::from_millis(1500));
        let e = b.admit(clock.now()).expect_err("open");
        let text = e.to_string();
        assert!(text.contains("failing fast after 3 consecutive"), "{text}");
        assert!(text.contains("next probe in 500 ms"), "{text}");
    }
}
