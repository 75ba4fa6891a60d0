//! The one place that names every metric the crate emits (feature `metrics`; the README's
//! table documents each). Later features add theirs here.

use std::time::Duration;

use super::observe::{Dir, Op};

/// Histogram, seconds: one store operation, labels `db.operation.name`, `outcome`.
pub const OPERATION_DURATION: &str = "db.client.operation.duration";
/// Counter: reads, label `result` (`hit`, `miss`, `corrupt`, `error`).
pub const LOADS: &str = "redis_sessions.loads";
/// Counter: writes of a value, label `outcome` (`written`, `gone`, `exists`, `too_large`,
/// `expired`, `error`).
pub const SAVES: &str = "redis_sessions.saves";
/// Counter: bytes of session values read from Redis.
pub const BYTES_READ: &str = "redis_sessions.bytes_read";
/// Counter: bytes of session values sent to Redis in writes (a conditional write that did
/// not apply, `gone` or `exists`, counts too).
pub const BYTES_WRITTEN: &str = "redis_sessions.bytes_written";
/// Counter: failed operations, label `error.type`.
pub const ERRORS: &str = "redis_sessions.errors";
/// Counter: new connections a backend made of its own accord, label `backend`:
/// `standalone` (the connection manager saw its connection drop; RESP3 connections only,
/// the default), `sentinel` (switched to a primary after an error or a `+switch-master`).
/// redis-rs does not report the cluster client's reconnections, nor the connection
/// manager's failed attempts: they are not counted.
pub const RECONNECTS: &str = "redis_sessions.reconnects";
/// Counter: commands sent again by the crate after a failure, label `backend`:
/// `sentinel` (a command or scan page retried once on the re-resolved primary),
/// `cluster` (a scan page retried on a re-read topology). redis-rs's own retries inside
/// the connection manager and the cluster client are not visible and not counted.
pub const RETRIES: &str = "redis_sessions.retries";
/// Gauge: the fail-fast breaker's state, 0 closed, 1 open, 2 probing
/// ([`FailFastState::gauge`](crate::FailFastState::gauge)); set on each change.
pub const FAIL_FAST_STATE: &str = "redis_sessions.fail_fast.state";
/// Counter: times the breaker opened (a probe that fails again does not count).
pub const FAIL_FAST_OPENED: &str = "redis_sessions.fail_fast.opened";
/// Counter: calls failed at once, not sent to Redis, while the breaker was open.
pub const FAIL_FAST_REJECTED: &str = "redis_sessions.fail_fast.rejected";

/// Counter: the framework adapters' saves of an existing session, label `path`: `fast`
/// (nobody wrote since the request's load: one conditional write), `merged` (another save
/// came first: this one's changes were applied onto it), `whole` (the session was
/// cleared: written whole), `fallback` (no loaded base: evicted, loaded in another task,
/// or no tokio task; written whole, as without merging). See
/// [`StoreBuilder::merge_concurrent_saves`](crate::StoreBuilder::merge_concurrent_saves).
pub const MERGES: &str = "redis_sessions.merges";

/// Counter: the client-side cache's work, label `event`: `hit`, `miss` (a load sent to
/// Redis), `invalidation` (a key Redis said changed while cached or being read),
/// `eviction` (dropped to stay within the bounds), `flush` (emptied: a lost connection).
pub const CACHE: &str = "redis_sessions.cache";

/// Counter: sessions ended through the per-user index, label `reason`: `revoke_one`
/// ([`RedisStore::revoke_user_session`](crate::RedisStore::revoke_user_session) and its
/// durable form), `revoke_all`
/// ([`RedisStore::revoke_user_sessions`](crate::RedisStore::revoke_user_sessions) and its
/// durable form), `session_limit` (ended to make room by
/// [`LimitPolicy::EndLeastRecentlyUsed`](crate::LimitPolicy::EndLeastRecentlyUsed)).
pub const REVOCATIONS: &str = "redis_sessions.revocations";

/// Describes every metric above to the installed recorder: its unit (seconds for
/// [`OPERATION_DURATION`], bytes for the byte counters) and one line of help.
///
/// [`StoreBuilder::build`](crate::StoreBuilder::build) calls it, so a recorder installed
/// before a store is built has the descriptions; an application that installs its
/// recorder later calls it once itself. Describing again is harmless (recorders keep
/// the first description, or replace it with the same).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Duration of one store operation on one session, by operation and outcome"
    );
    describe_counter!(LOADS, "Session reads, by result");
    describe_counter!(SAVES, "Session writes of a value, by outcome");
    describe_counter!(BYTES_READ, Unit::Bytes, "Bytes of session values read");
    describe_counter!(
        BYTES_WRITTEN,
        Unit::Bytes,
        "Bytes of session values sent in writes"
    );
    describe_counter!(ERRORS, "Failed store operations, by error type");
    describe_counter!(
        RECONNECTS,
        "New connections a backend made of its own accord"
    );
    describe_counter!(RETRIES, "Commands sent again after a failure");
    describe_gauge!(
        FAIL_FAST_STATE,
        "Fail-fast breaker state: 0 closed, 1 open, 2 probing"
    );
    describe_counter!(FAIL_FAST_OPENED, "Times the fail-fast breaker opened");
    describe_counter!(
        FAIL_FAST_REJECTED,
        "Calls failed at once while the fail-fast breaker was open"
    );
    describe_counter!(
        MERGES,
        "Adapter saves of an existing session, by merge path"
    );
    describe_counter!(CACHE, "Client-side cache events");
    describe_counter!(
        REVOCATIONS,
        "Sessions ended through the per-user index, by reason"
    );
}

pub(crate) fn revoked(reason: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!(REVOCATIONS, "reason" => reason).increment(n);
    }
}

pub(crate) fn cache(event: &'static str, n: u64) {
    metrics::counter!(CACHE, "event" => event).increment(n);
}

pub(crate) fn bytes(dir: Dir, size: usize) {
    let name = match dir {
        Dir::Read => BYTES_READ,
        Dir::Written => BYTES_WRITTEN,
    };
    metrics::counter!(name).increment(u64::try_from(size).unwrap_or(u64::MAX));
}

pub(crate) fn operation(
    op: Op,
    outcome: Option<&'static str>,
    error: Option<&'static str>,
    took: Duration,
) {
    let label = outcome.or(error).unwrap_or("error");
    metrics::histogram!(OPERATION_DURATION, "db.operation.name" => op.name(), "outcome" => label)
        .record(took.as_secs_f64());
    match op {
        Op::Get | Op::GetAndRefresh | Op::GetListed | Op::Load => {
            metrics::counter!(LOADS, "result" => outcome.unwrap_or("error")).increment(1);
        }
        Op::Set | Op::Create | Op::Update | Op::UpdateIf => {
            metrics::counter!(SAVES, "outcome" => outcome.unwrap_or("error")).increment(1);
        }
        _ => {}
    }
    if let Some(kind) = error {
        metrics::counter!(ERRORS, "error.type" => kind).increment(1);
    }
}
