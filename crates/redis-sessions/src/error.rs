//! The crate's error type.

use std::fmt;

use crate::id::{Fingerprint, InvalidId, RandomError};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
///
/// No variant ever carries a raw session id or session contents: keys are named by their
/// [`Fingerprint`], and codec errors carry only the position and the kind of the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session id was malformed; nothing was sent to Redis.
    #[error("invalid session id: {0}")]
    InvalidId(#[from] InvalidId),
    /// A value in Redis could not be decoded into a session (corrupt, foreign or truncated).
    #[error("session {fingerprint} could not be decoded: {source}")]
    Decode {
        /// Fingerprint of the session id whose value is bad.
        fingerprint: Fingerprint,
        /// What was wrong with the bytes.
        #[source]
        source: CodecError,
    },
    /// A session could not be encoded by the serializer.
    #[error("session could not be encoded: {0}")]
    Encode(#[source] CodecError),
    /// The backend (Redis or memory) failed: down, slow, wrong type at a key, ...
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// `clear` was called with an empty prefix, which would delete every key in the database.
    #[error("refusing to clear with an empty prefix: it would delete every key of the database; set a prefix such as \"sess:\"")]
    EmptyPrefix,
    /// Every freshly generated id collided with an existing session (the random generator is
    /// broken); nothing was written.
    #[error("{0} freshly generated session ids in a row were already in use; nothing was written")]
    IdCollisions(usize),
    /// Sessions kept being rewritten under an operation that needs them to hold still, and it
    /// gave up after this many rounds: a revoke (each conditional delete saw a value other
    /// than the one it had checked, or new sessions kept appearing; some of the user's
    /// sessions may still be live), or [`RedisStore::modify`](crate::RedisStore::modify)
    /// (each of its conditional writes lost to another write; nothing of its change was
    /// written). Retrying later usually succeeds.
    #[error("gave up after {0} rounds: the session(s) kept being rewritten while it ran; a revoke may have left some live, a modify wrote nothing")]
    Contended(usize),
    /// The operating system's random number generator failed while generating a session id
    /// or a nonce; the OS error is the source.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The encoded session is larger than the store's
    /// [`max_value_size`](crate::StoreBuilder::max_value_size); nothing was written.
    #[error("session is {size} bytes encoded, over the store's cap of {cap} bytes; nothing was written (keep large data out of the session or raise max_value_size)")]
    TooLarge {
        /// Size of the encoded session in bytes.
        size: usize,
        /// The cap in bytes.
        cap: usize,
    },
    /// [`StoreBuilder::cache`](crate::StoreBuilder::cache) on a backend without client-side
    /// tracking.
    #[error("this backend does not support a client-side cache: it needs RESP3 client tracking on every connection that serves reads (RedisBackend::connect_tracked for one server, SentinelBackend::connect_tracked_with for Sentinel, ClusterBackend::connect_tracked_with for Cluster, or redis_sessions::connect_tracked with any URL; the memory backend and the plain connects do not support it)")]
    CacheUnsupported,
}

impl Error {
    /// The session id was malformed.
    pub fn is_invalid_id(&self) -> bool {
        matches!(self, Error::InvalidId(_))
    }

    /// The stored value was not a session this store can read (treat the session as corrupt).
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode { .. })
    }

    /// A revoke or a `modify` gave up because the sessions kept changing under it
    /// ([`Error::Contended`]).
    pub fn is_contended(&self) -> bool {
        matches!(self, Error::Contended(_))
    }

    /// The session was refused on write because it is larger than the store's cap.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Error::TooLarge { .. })
    }

    /// The backend did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Backend(e) if e.kind() == BackendErrorKind::Timeout)
    }

    /// A TLS problem: the server's certificate is not trusted or not for this host, a
    /// client certificate is missing or refused, TLS was spoken to a plain port (or plain
    /// text to a TLS port), or TLS is asked for in a build without the `tls` feature.
    pub fn is_tls(&self) -> bool {
        matches!(self, Error::Backend(e) if e.kind() == BackendErrorKind::Tls)
    }

    /// The Redis user may not run a command the store sent, or may not touch its keys (an
    /// ACL `NOPERM`, or the `ERR` a script gets for a command or key its user may not use).
    /// Retrying does not help: add the permission (the README's "ACL" part lists them).
    /// [`Error::denied_command`] names the command.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::Backend(e) if e.kind() == BackendErrorKind::PermissionDenied)
    }

    /// For a permission error, the command that was refused as ACL rules name it, lowercase
    /// (`unlink`, `memory|usage`); see [`BackendError::denied_command`].
    pub fn denied_command(&self) -> Option<&str> {
        match self {
            Error::Backend(e) => e.denied_command(),
            _ => None,
        }
    }

    /// The backend is unreachable or timed out, or the store is failing fast because it
    /// was: retrying later may succeed (answer 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Backend(e) if matches!(e.kind(), BackendErrorKind::Timeout | BackendErrorKind::Unavailable | BackendErrorKind::ReadOnly | BackendErrorKind::FailingFast))
    }

    /// The call was not sent: the store is failing fast after consecutive timeouts or
    /// connection failures ([`StoreBuilder::fail_fast`](crate::StoreBuilder::fail_fast)).
    /// Implies [`Error::is_unavailable`].
    pub fn is_failing_fast(&self) -> bool {
        matches!(self, Error::Backend(e) if e.kind() == BackendErrorKind::FailingFast)
    }
}

/// The broad class of a [`BackendError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// No answer within the configured timeout.
    Timeout,
    /// Connection refused, dropped or not yet re-established.
    Unavailable,
    /// The key holds a value of another Redis type (a foreign key under the prefix).
    WrongType,
    /// The server is a read-only replica (for example right after a failover).
    ReadOnly,
    /// Authentication failed (a wrong user or password, or none given where one is needed).
    Auth,
    /// The Redis user's ACL does not allow a command, or a key, the store used: `NOPERM`, or
    /// the `ERR` of a script that runs a command or touches a key its user may not. Never
    /// retried; [`BackendError::denied_command`] names the command.
    PermissionDenied,
    /// TLS failed: an untrusted or wrong-host certificate, a refused client certificate, a
    /// plain/TLS mismatch with the server's port, or TLS in a build without the `tls` feature.
    Tls,
    /// The store is failing fast ([`StoreBuilder::fail_fast`](crate::StoreBuilder::fail_fast)):
    /// Redis timed out or refused connections several times in a row, so the call was not
    /// sent. It is retried by no one; the first call after the cooldown probes Redis.
    FailingFast,
    /// Any other error reported by the server or the client library.
    Other,
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendErrorKind::Timeout => "redis timed out",
            BackendErrorKind::Unavailable => "redis unavailable",
            BackendErrorKind::WrongType => "wrong redis type at session key",
            BackendErrorKind::ReadOnly => "redis replica is read-only",
            BackendErrorKind::Auth => "redis authentication failed",
            BackendErrorKind::Tls => "redis TLS failed",
            BackendErrorKind::PermissionDenied => "redis permission denied",
            BackendErrorKind::FailingFast => "redis unavailable",
            BackendErrorKind::Other => "redis error",
        })
    }
}

/// An error from a [`Backend`](crate::Backend), with its original source kept.
#[derive(Debug, thiserror::Error)]
pub struct BackendError {
    kind: BackendErrorKind,
    /// For [`BackendErrorKind::PermissionDenied`]: the refused command, as ACL rules name it.
    denied: Option<Box<str>>,
    /// The denial is about the keys (outside the user's `~pattern`s), not the command.
    denied_key: bool,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.denied, self.denied_key) {
            (Some(cmd), false) => write!(
                f,
                "{}: the Redis user may not run {}: {}",
                self.kind,
                cmd.to_uppercase().replace('|', " "),
                self.source
            ),
            (Some(cmd), true) => write!(
                f,
                "{}: the Redis user may not use {} on these keys: {}",
                self.kind,
                cmd.to_uppercase().replace('|', " "),
                self.source
            ),
            (None, _) => write!(f, "{}: {}", self.kind, self.source),
        }
    }
}

impl BackendError {
    /// Wraps a client library error with its kind.
    pub fn new(
        kind: BackendErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        BackendError {
            kind,
            denied: None,
            denied_key: false,
            source: source.into(),
        }
    }

    /// A [`BackendErrorKind::PermissionDenied`] error for `command` (lowercase, as ACL rules
    /// name it: `unlink`, `memory|usage`); `key` says the keys were refused, not the command.
    pub fn permission_denied(
        command: impl Into<String>,
        key: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        let command: String = command.into();
        BackendError {
            kind: BackendErrorKind::PermissionDenied,
            denied: (!command.is_empty()).then(|| command.into_boxed_str()),
            denied_key: key,
            source: source.into(),
        }
    }

    /// Names the refused command of a permission error whose text did not.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn with_denied_command(mut self, command: String) -> Self {
        if !command.is_empty() {
            self.denied = Some(command.into_boxed_str());
        }
        self
    }

    /// For a permission error, the refused command as ACL rules name it, lowercase
    /// (`unlink`, `memory|usage`; `evalsha` when a script's own command was refused), or
    /// `None` when it is not known.
    pub fn denied_command(&self) -> Option<&str> {
        self.denied.as_deref()
    }

    /// For a permission error, whether the keys were refused (they are outside the user's
    /// `~pattern`s) rather than the command itself.
    pub fn is_denied_key(&self) -> bool {
        self.denied_key
    }

    /// The broad class of the error.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }
}

/// Why bytes could not be turned into a session or back.
///
/// It names the format and the position only, never a fragment of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes are not valid in the serializer's format.
    #[error("{format}: syntax error at byte/line {line} column {column}")]
    Syntax {
        /// Format name, e.g. `json`.
        format: &'static str,
        /// Line (JSON) or 0 when unknown.
        line: usize,
        /// Column (JSON) or 0 when unknown.
        column: usize,
    },
    /// The value ended early.
    #[error("{format}: value is truncated")]
    Truncated {
        /// Format name.
        format: &'static str,
    },
    /// The value is well-formed but is not a session (for example a JSON array or a number).
    #[error("{format}: value is not a session object ({what})")]
    NotASession {
        /// Format name.
        format: &'static str,
        /// What was found instead.
        what: &'static str,
    },
    /// The stored value (or its decompressed payload) is larger than the store's cap; it was
    /// not decoded.
    #[error("value of {size} bytes is over the cap of {cap} bytes")]
    TooLarge {
        /// Size in bytes (stored, or declared decompressed size).
        size: usize,
        /// The cap in bytes.
        cap: usize,
    },
    /// The value starts with the envelope marker but its header or payload is malformed.
    #[error("envelope: {what}")]
    Envelope {
        /// What is wrong.
        what: &'static str,
    },
    /// An encrypted value failed authentication: tampered with, moved from another session's
    /// key, or encrypted under a different key with the same key id.
    #[error(
        "encrypted value failed authentication (tampered, or moved from another session's key)"
    )]
    Unauthenticated,
    /// An encrypted value names a key that is not in the key ring (or the store has no key
    /// ring).
    #[error("value is encrypted with key {key_id:08x}, which is not in the key ring")]
    UnknownKey {
        /// The key id from the envelope (not secret: a short hash of the key).
        key_id: u32,
    },
    /// Unencrypted value refused by a store that requires encryption.
    #[error("value is not encrypted and the store requires encryption")]
    NotEncrypted,
    /// A session to write has a field whose name the store reserves for its own bookkeeping
    /// (`__exp`, the compact expiry bound): rename the field.
    #[error("the session has a field named `{field}`, a name the store reserves for its expiry bound; rename the field")]
    Reserved {
        /// The reserved name.
        field: &'static str,
    },
    /// A stored value's expiry bound (the reserved member `__exp`) is not a Unix time in
    /// milliseconds (an integer from 0 to the year 9999).
    #[error("{format}: the expiry bound `__exp` is not a Unix time in milliseconds")]
    Bound {
        /// Format name.
        format: &'static str,
    },
    /// A custom serializer's own error, as a short message.
    #[error("{format}: {message}")]
    Other {
        /// Format name.
        format: &'static str,
        /// Short message without session contents.
        message: String,
    },
}
