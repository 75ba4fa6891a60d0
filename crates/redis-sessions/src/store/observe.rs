//! Tracing spans (and, with the `metrics` feature, metrics) of the store's operations: the one
//! place that names them.
//!
//! Every read ([`RedisStore::get`] and friends, [`RedisStore::load`]) and every write of one
//! session runs inside a span named after the store operation (`load`, `update`, ...), created
//! at `INFO` level as a child of the caller's current span (the framework's request span), with
//! OpenTelemetry's database field names:
//!
//! | field | value |
//! | --- | --- |
//! | `db.system.name` | `"redis"` |
//! | `db.operation.name` | the store operation, as the span's name |
//! | `db.namespace` | the database number, when the backend knows it |
//! | `server.address`, `server.port` | the server, when the backend knows it ([`Backend::endpoint`]) |
//! | `otel.kind` | `"client"` |
//! | `session.fingerprint` | the session id's [`Fingerprint`](crate::Fingerprint), never the id |
//! | `session.size` | bytes of the value read or written |
//! | `session.outcome` | `hit`, `miss`, `corrupt` (reads); `written`, `expired`, `gone`, `exists`, `skipped`, `deleted`, `too_large` (writes) |
//! | `error.type` | on failure: `timeout`, `unavailable`, `read_only`, `auth`, `tls`, `wrong_type`, `other`, `encode`, `too_large`, ... |
//!
//! With no subscriber interested, the span is disabled and nothing is computed: the
//! fingerprint, size and outcome are recorded only into an enabled span.

use std::future::Future;

use tracing::field::Empty;
use tracing::Span;

use super::{Outcome, RedisStore, Target};
use crate::backend::Backend;
use crate::error::{BackendErrorKind, Error, Result};

/// Where a [`Backend`] sends its commands, for the spans' `server.*` and `db.namespace` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (or a Unix socket path).
    pub address: String,
    /// TCP port; `None` for a Unix socket.
    pub port: Option<u16>,
    /// Database number.
    pub namespace: Option<i64>,
}

/// A store operation on one session: the span's name and `db.operation.name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    GetAndRefresh,
    GetListed,
    Load,
    Set,
    Create,
    Update,
    UpdateIf,
    Touch,
    Refresh,
    Destroy,
    DeleteExpired,
    // Operations over many sessions (no one session's fingerprint; `session.count` instead).
    UserSessions,
    UserSessionCount,
    RevokeUserSession,
    RevokeUserSessions,
    Ids,
    Length,
    All,
    Clear,
    Health,
}

macro_rules! op_span {
    ($name:literal) => {
        tracing::info_span!(
            $name,
            "db.system.name" = "redis",
            "db.operation.name" = $name,
            "db.namespace" = Empty,
            "server.address" = Empty,
            "server.port" = Empty,
            "otel.kind" = "client",
            "session.fingerprint" = Empty,
            "session.size" = Empty,
            "session.outcome" = Empty,
            "session.count" = Empty,
            "error.type" = Empty,
        )
    };
}

impl Op {
    /// The operation's name, as in spans and metric labels.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "metric labels only")
    )]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetAndRefresh => "get_and_refresh",
            Op::GetListed => "get_listed",
            Op::Load => "load",
            Op::Set => "set",
            Op::Create => "create",
            Op::Update => "update",
            Op::UpdateIf => "update_if",
            Op::Touch => "touch",
            Op::Refresh => "refresh",
            Op::Destroy => "destroy",
            Op::DeleteExpired => "delete_expired",
            Op::UserSessions => "user_sessions",
            Op::UserSessionCount => "user_session_count",
            Op::RevokeUserSession => "revoke_user_session",
            Op::RevokeUserSessions => "revoke_user_sessions",
            Op::Ids => "ids",
            Op::Length => "length",
            Op::All => "all",
            Op::Clear => "clear",
            Op::Health => "health",
        }
    }

    /// A span per operation: each its own callsite, so each has its own static name and is
    /// disabled (free) when no subscriber wants it.
    fn span(self) -> Span {
        match self {
            Op::Get => op_span!("get"),
            Op::GetAndRefresh => op_span!("get_and_refresh"),
            Op::GetListed => op_span!("get_listed"),
            Op::Load => op_span!("load"),
            Op::Set => op_span!("set"),
            Op::Create => op_span!("create"),
            Op::Update => op_span!("update"),
            Op::UpdateIf => op_span!("update_if"),
            Op::Touch => op_span!("touch"),
            Op::Refresh => op_span!("refresh"),
            Op::Destroy => op_span!("destroy"),
            Op::DeleteExpired => op_span!("delete_expired"),
            Op::UserSessions => op_span!("user_sessions"),
            Op::UserSessionCount => op_span!("user_session_count"),
            Op::RevokeUserSession => op_span!("revoke_user_session"),
            Op::RevokeUserSessions => op_span!("revoke_user_sessions"),
            Op::Ids => op_span!("ids"),
            Op::Length => op_span!("length"),
            Op::All => op_span!("all"),
            Op::Clear => op_span!("clear"),
            Op::Health => op_span!("health"),
        }
    }
}

/// A result whose outcome a span and the metrics name.
pub(crate) trait Observed {
    /// The outcome label, or `None` for an error without one.
    fn outcome(&self) -> Option<&'static str>;
    /// The error, if any.
    fn error(&self) -> Option<&Error>;
}

impl<T> Observed for Result<Option<T>> {
    fn outcome(&self) -> Option<&'static str> {
        match self {
            Ok(Some(_)) => Some("hit"),
            Ok(None) => Some("miss"),
            Err(Error::Decode { .. }) => Some("corrupt"),
            Err(_) => None,
        }
    }
    fn error(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

impl Observed for Result<Outcome> {
    fn outcome(&self) -> Option<&'static str> {
        match self {
            Ok(Outcome::Written) => Some("written"),
            Ok(Outcome::Expired) => Some("expired"),
            Ok(Outcome::Gone) => Some("gone"),
            Ok(Outcome::Exists) => Some("exists"),
            Ok(Outcome::Skipped) => Some("skipped"),
            Ok(Outcome::Deleted) => Some("deleted"),
            Ok(Outcome::LimitReached) => Some("limit_reached"),
            Ok(Outcome::Changed) => Some("changed"),
            Err(Error::TooLarge { .. }) => Some("too_large"),
            Err(_) => None,
        }
    }
    fn error(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

/// The result of an operation over many sessions: its outcome is `ok` (or `gone` for a revoke
/// that found nothing), and it counts the sessions it listed, counted or ended.
pub(crate) trait Counted {
    /// The sessions listed, counted or ended, if the result says.
    fn count(&self) -> Option<u64>;
}

impl<T> Counted for Result<Vec<T>> {
    fn count(&self) -> Option<u64> {
        self.as_ref().ok().map(|v| v.len() as u64)
    }
}

impl Counted for Result<usize> {
    fn count(&self) -> Option<u64> {
        self.as_ref().ok().map(|n| *n as u64)
    }
}

impl Counted for Result<u64> {
    fn count(&self) -> Option<u64> {
        self.as_ref().ok().copied()
    }
}

impl Counted for Result<bool> {
    fn count(&self) -> Option<u64> {
        self.as_ref().ok().map(|ended| u64::from(*ended))
    }
}

impl Counted for Result<()> {
    fn count(&self) -> Option<u64> {
        None
    }
}

/// An operation over many sessions, as a span and a metric see it.
pub(crate) struct Many<R>(pub(crate) R);

impl<R: Counted + ResultLike> Observed for Many<R> {
    fn outcome(&self) -> Option<&'static str> {
        match (self.0.err(), self.0.count()) {
            (Some(_), _) => None,
            (None, Some(0)) if self.0.is_revoke_one() => Some("gone"),
            (None, _) => Some("ok"),
        }
    }
    fn error(&self) -> Option<&Error> {
        self.0.err()
    }
}

/// The error of a result, whatever its value type.
pub(crate) trait ResultLike {
    fn err(&self) -> Option<&Error>;
    /// A `bool` result: a revoke of one session (`false`: it was gone).
    fn is_revoke_one(&self) -> bool {
        false
    }
}

impl<T> ResultLike for Result<Vec<T>> {
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

impl ResultLike for Result<usize> {
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

impl ResultLike for Result<u64> {
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

impl ResultLike for Result<bool> {
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
    fn is_revoke_one(&self) -> bool {
        true
    }
}

impl ResultLike for Result<()> {
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

/// The `error.type` of an error: a short, stable, lower-case name.
pub(crate) fn error_type(e: &Error) -> &'static str {
    match e {
        Error::Backend(b) => match b.kind() {
            BackendErrorKind::Timeout => "timeout",
            BackendErrorKind::Unavailable => "unavailable",
            BackendErrorKind::FailingFast => "failing_fast",
            BackendErrorKind::WrongType => "wrong_type",
            BackendErrorKind::ReadOnly => "read_only",
            BackendErrorKind::Auth => "auth",
            BackendErrorKind::Tls => "tls",
            _ => "other",
        },
        Error::Decode { .. } => "corrupt",
        Error::Encode(_) => "encode",
        Error::TooLarge { .. } => "too_large",
        Error::InvalidId(_) => "invalid_id",
        Error::IdCollisions(_) => "id_collisions",
        Error::Contended(_) => "contended",
        Error::Random(_) => "random",
        _ => "other",
    }
}

/// Which way a value went.
#[derive(Clone, Copy)]
pub(crate) enum Dir {
    Read,
    Written,
}

/// Records the size of the value read or written into the current operation's span, and
/// (feature `metrics`) into the byte counters.
pub(crate) fn value_size(dir: Dir, size: usize) {
    let span = Span::current();
    if !span.is_disabled() {
        span.record("session.size", size);
    }
    #[cfg(feature = "metrics")]
    metric::bytes(dir, size);
    #[cfg(not(feature = "metrics"))]
    let _ = dir;
}

/// A backend began a new connection of its own accord (feature `metrics`: the
/// [`metric::RECONNECTS`] counter): `standalone` when the connection manager noticed a dropped
/// connection (RESP3 only), `sentinel` when it switched to a primary.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "the redis-rs backends'")
)]
pub(crate) fn reconnected(backend: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(metric::RECONNECTS, "backend" => backend).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = backend;
}

/// A backend sent a command again after a failure (feature `metrics`: the
/// [`metric::RETRIES`] counter).
#[cfg_attr(
    not(any(feature = "cluster", feature = "sentinel")),
    allow(dead_code, reason = "the cluster and Sentinel backends'")
)]
pub(crate) fn retried(backend: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(metric::RETRIES, "backend" => backend).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = backend;
}

/// Sessions ended through the per-user index (feature `metrics`: the
/// [`metric::REVOCATIONS`] counter), `reason` as there.
pub(crate) fn revoked(reason: &'static str, n: u64) {
    #[cfg(feature = "metrics")]
    metric::revoked(reason, n);
    #[cfg(not(feature = "metrics"))]
    let _ = (reason, n);
}

/// The one place that names every metric the crate emits (feature `metrics`; the README's
/// table documents each). Later features add theirs here.
#[cfg(feature = "metrics")]
pub mod metric {
    use std::time::Duration;

    use super::{Dir, Op};

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
}

impl<B: Backend> RedisStore<B> {
    /// Runs `body` (an operation over many sessions, or none: `health`) inside its span, and
    /// records its outcome and how many sessions it listed, counted or ended.
    pub(crate) async fn observed_many<R: Counted + ResultLike>(
        &self,
        op: Op,
        body: impl Future<Output = R>,
    ) -> R {
        use tracing::Instrument;
        let span = op.span();
        if !span.is_disabled() {
            self.record_endpoint(&span);
        }
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let result = Many(body.instrument(span.clone()).await);
        #[cfg(feature = "metrics")]
        metric::operation(
            op,
            result.outcome(),
            result.error().map(error_type),
            started.elapsed(),
        );
        if !span.is_disabled() {
            if let Some(outcome) = result.outcome() {
                span.record("session.outcome", outcome);
            }
            if let Some(n) = result.0.count() {
                span.record("session.count", n);
            }
            if let Some(e) = result.error() {
                span.record("error.type", error_type(e));
            }
        }
        result.0
    }

    /// The server's address, port and database into `span`.
    fn record_endpoint(&self, span: &Span) {
        if let Some(endpoint) = &self.inner.endpoint {
            span.record("server.address", endpoint.address.as_str());
            if let Some(port) = endpoint.port {
                span.record("server.port", port);
            }
            if let Some(db) = endpoint.namespace {
                span.record("db.namespace", db);
            }
        }
    }

    /// Runs `body` (one operation on `target`) inside its span, and records its outcome.
    pub(crate) async fn observed<R: Observed>(
        &self,
        op: Op,
        target: &Target<'_>,
        body: impl Future<Output = R>,
    ) -> R {
        use tracing::Instrument;
        let span = op.span();
        if !span.is_disabled() {
            span.record(
                "session.fingerprint",
                tracing::field::display(target.fingerprint()),
            );
            self.record_endpoint(&span);
        }
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let result = body.instrument(span.clone()).await;
        #[cfg(feature = "metrics")]
        metric::operation(
            op,
            result.outcome(),
            result.error().map(error_type),
            started.elapsed(),
        );
        if !span.is_disabled() {
            if let Some(outcome) = result.outcome() {
                span.record("session.outcome", outcome);
            }
            if let Some(e) = result.error() {
                span.record("error.type", error_type(e));
            }
        }
        result
    }
}
