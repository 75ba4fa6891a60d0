//! URLs in logs and messages: never with their password.

/// `url` with its password replaced by `***`, for logs and error messages
/// (`redis://user:secret@host:6379/2` → `redis://user:***@host:6379/2`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if userinfo.is_empty() => String::new(),
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://user:secret@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(redact("rediss://:secret@host"), "rediss://:***@host");
        assert_eq!(redact("redis://secret@host"), "redis://***@host");
        assert_eq!(redact("not a url"), "not a url");
    }
}
