//! ACL permission errors: recognising them in redis-rs errors, naming the refused command,
//! and warning about each refused command once per process.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use redis::{Cmd, RedisError};

use crate::error::BackendError;

/// Commands whose first argument is a subcommand that ACL rules name (`memory|usage`).
const CONTAINERS: &[&str] = &[
    "acl", "client", "cluster", "command", "config", "function", "memory", "object", "script",
    "sentinel", "xinfo",
];

/// The permission error in `e`, if it is one: `NOPERM ...` for a command, `ERR The user
/// executing the script can't ...` for a script (Redis 7.0 reports those as `ERR`).
pub(crate) fn classify(e: RedisError) -> Result<BackendError, RedisError> {
    let detail = e.detail().unwrap_or_default();
    match e.code() {
        Some("NOPERM") => {
            // "this user has no permissions to run the 'unlink' command"
            let command = detail
                .split_once("to run the '")
                .and_then(|(_, rest)| rest.split_once('\''))
                .map(|(name, _)| name.to_lowercase())
                .unwrap_or_default();
            let key = detail.contains("access one of the keys");
            Ok(BackendError::permission_denied(command, key, e))
        }
        Some("ERR") if detail.starts_with("The user executing the script can't") => {
            let key = detail.contains("access at least one of the keys");
            Ok(BackendError::permission_denied(String::new(), key, e))
        }
        _ => Err(e),
    }
}

/// The name ACL rules give `cmd`: `unlink`, or `memory|usage` for a subcommand.
pub(crate) fn acl_name(cmd: &Cmd) -> String {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(String::from_utf8_lossy(bytes).to_lowercase()),
        _ => None,
    });
    let name = args.next().unwrap_or_default();
    match args.next() {
        Some(sub) if CONTAINERS.contains(&name.as_str()) => format!("{name}|{sub}"),
        _ => name,
    }
}

/// Fills in the command of a permission error whose text did not name it (refused keys, a
/// script's own command) and warns once per command and process (`map_error` warns about
/// those Redis names): a missing permission shows in the log without flooding it.
pub(crate) fn note(e: BackendError, cmd: &Cmd) -> BackendError {
    if e.kind() != crate::BackendErrorKind::PermissionDenied {
        return e;
    }
    if e.denied_command().is_some() {
        // Named by Redis, and already logged by `map_error`.
        return e;
    }
    let e = e.with_denied_command(acl_name(cmd));
    warn_once(&e);
    e
}

/// Logs `e` at `warn` the first time its command is refused, at `debug` after that.
pub(crate) fn warn_once(e: &BackendError) {
    static WARNED: OnceLock<Mutex<HashSet<(String, bool)>>> = OnceLock::new();
    let command = e.denied_command().unwrap_or("?").to_owned();
    let first = match WARNED.get_or_init(Default::default).lock() {
        Ok(mut seen) => seen.insert((command.clone(), e.is_denied_key())),
        Err(poisoned) => poisoned
            .into_inner()
            .insert((command.clone(), e.is_denied_key())),
    };
    if first {
        tracing::warn!(
            command = %command,
            keys = e.is_denied_key(),
            error = %e,
            "the Redis user's ACL refuses a command the session store needs; add it (see the README's ACL part)"
        );
    } else {
        tracing::debug!(command = %command, error = %e, "permission denied");
    }
}

#[cfg(test)]
mod tests {
    use super::acl_name;

    #[test]
    fn commands_are_named_as_acl_rules_name_them() {
        assert_eq!(acl_name(redis::cmd("UNLINK").arg("sess:a")), "unlink");
        assert_eq!(
            acl_name(redis::cmd("MEMORY").arg("USAGE").arg("sess:a")),
            "memory|usage"
        );
        assert_eq!(
            acl_name(redis::cmd("CLUSTER").arg("NODES")),
            "cluster|nodes"
        );
        assert_eq!(acl_name(redis::cmd("EVALSHA").arg("abc").arg(1)), "evalsha");
        assert_eq!(acl_name(&redis::Cmd::new()), "");
    }
}
