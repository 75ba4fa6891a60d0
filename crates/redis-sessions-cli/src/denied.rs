//! What to add to the Redis user's ACL when a command was refused.

use redis_sessions::{BackendError, Keyspace};

/// The command and whether it was the keys that were refused, from the first permission
/// error in `e`'s chain.
fn denial(e: &anyhow::Error) -> Option<(String, bool)> {
    e.chain().find_map(|cause| {
        if let Some(err) = cause.downcast_ref::<redis_sessions::Error>() {
            if err.is_permission_denied() {
                let key = matches!(err, redis_sessions::Error::Backend(b) if b.is_denied_key());
                return Some((err.denied_command().unwrap_or("?").to_owned(), key));
            }
        }
        let err = cause.downcast_ref::<BackendError>()?;
        (err.kind() == redis_sessions::BackendErrorKind::PermissionDenied).then(|| {
            (
                err.denied_command().unwrap_or("?").to_owned(),
                err.is_denied_key(),
            )
        })
    })
}

/// The user name in a Redis URL (`scheme://user:password@...`), `default` when it has none.
fn user_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => match userinfo.split_once(':').map_or(userinfo, |(user, _)| user) {
            "" => "default",
            user => user,
        },
        None => "default",
    }
}

/// `redis-sessions: the Redis user may not run UNLINK; add it with: ACL SETUSER app +unlink`,
/// or for refused keys the key pattern of the prefix, when `e` is a permission error.
pub(crate) fn hint(e: &anyhow::Error, url: &str, prefix: &str) -> Option<String> {
    let (command, key) = denial(e)?;
    let user = user_of(url);
    let shown = command.to_uppercase().replace('|', " ");
    Some(if key {
        let keyspace = Keyspace::new(prefix);
        let pattern = keyspace.scan_pattern();
        format!(
            "redis-sessions: the Redis user may not use {shown} on keys under {prefix:?}; add the key pattern with: ACL SETUSER {user} ~{pattern}"
        )
    } else if command == "?" {
        format!(
            "redis-sessions: the Redis user lacks a permission; give it the admin line of the README's ACL part: ACL SETUSER {user} ..."
        )
    } else {
        format!(
            "redis-sessions: the Redis user may not run {shown}; add it with: ACL SETUSER {user} +{command}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::user_of;

    #[test]
    fn user_names_from_urls() {
        assert_eq!(user_of("redis://127.0.0.1:6379"), "default");
        assert_eq!(user_of("redis://:pw@127.0.0.1:6379"), "default");
        assert_eq!(user_of("redis://admin:p@ss@h:1/0"), "admin");
        assert_eq!(
            user_of("redis+sentinel://app:pw@s1:1,s2:2/mymaster?sentinel_password=x"),
            "app"
        );
        assert_eq!(user_of("redis+cluster://ops@h:1,h:2"), "ops");
    }
}
