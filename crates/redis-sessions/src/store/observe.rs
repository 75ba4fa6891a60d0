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

#[cfg(feature = "metrics")]
use super::metric;
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
/// of one session that found nothing), and it counts the sessions it listed, counted or ended.
pub(crate) trait Counted {
    /// The sessions listed, counted or ended, if the result says.
    fn count(&self) -> Option<u64>;
    /// The error, if any.
    fn err(&self) -> Option<&Error>;
    /// A revoke of one session (`Ok(false)`: it was gone).
    fn is_revoke_one(&self) -> bool {
        false
    }
}

macro_rules! counted {
    ($t:ty, |$v:ident| $count:expr $(, $revoke_one:literal)?) => {
        impl Counted for Result<$t> {
            fn count(&self) -> Option<u64> {
                self.as_ref().ok().map(|$v| $count)
            }
            fn err(&self) -> Option<&Error> {
                self.as_ref().err()
            }
            $(fn is_revoke_one(&self) -> bool {
                $revoke_one
            })?
        }
    };
}

counted!(usize, |n| *n as u64);
counted!(u64, |n| *n);
counted!(bool, |ended| u64::from(*ended), true);

impl<T> Counted for Result<Vec<T>> {
    fn count(&self) -> Option<u64> {
        self.as_ref().ok().map(|v| v.len() as u64)
    }
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

impl Counted for Result<()> {
    fn count(&self) -> Option<u64> {
        None
    }
    fn err(&self) -> Option<&Error> {
        self.as_ref().err()
    }
}

/// An operation over many sessions, as a span and a metric see it.
pub(crate) struct Many<R>(pub(crate) R);

impl<R: Counted> Observed for Many<R> {
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

/// After an operation: its outcome and error into its span and (feature `metrics`) its
/// duration into the metrics. A plain function, not one more async layer around every
/// operation's future (one such layer pushed the actix demo's page request past a worker's
/// 2 MiB stack in debug builds).
fn finished<R: Observed>(
    op: Op,
    span: &Span,
    result: &R,
    #[cfg(feature = "metrics")] started: std::time::Instant,
) {
    #[cfg(feature = "metrics")]
    metric::operation(
        op,
        result.outcome(),
        result.error().map(error_type),
        started.elapsed(),
    );
    #[cfg(not(feature = "metrics"))]
    let _ = op;
    if !span.is_disabled() {
        if let Some(outcome) = result.outcome() {
            span.record("session.outcome", outcome);
        }
        if let Some(e) = result.error() {
            span.record("error.type", error_type(e));
        }
    }
}

impl<B: Backend> RedisStore<B> {
    /// Runs `body` (an operation over many sessions, or none: `health`) inside its span, and
    /// records its outcome and how many sessions it listed, counted or ended.
    pub(crate) async fn observed_many<R: Counted>(
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
        if !span.is_disabled() {
            if let Some(n) = result.0.count() {
                span.record("session.count", n);
            }
        }
        finished(
            op,
            &span,
            &result,
            #[cfg(feature = "metrics")]
            started,
        );
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
        finished(
            op,
            &span,
            &result,
            #[cfg(feature = "metrics")]
            started,
        );
        result
    }
}
