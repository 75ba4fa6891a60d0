//! "Your sessions": the device facts recorded at login, the user's sessions as the page and
//! `GET /api/sessions` show them, and signing one or all other sessions out. Shared by both
//! demos; everything goes through the store's per-user index (`index_by(USER)`).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use redis_sessions::{Backend, RedisStore, SessionId, StoredId};
use serde_json::{json, Value};

/// Session fields holding the device facts (`user_agent` is what `redis-sessions user ls`
/// prints).
pub(crate) const USER_AGENT: &str = "user_agent";
pub(crate) const IP: &str = "ip";
pub(crate) const SIGNED_IN: &str = "signed_in";

/// Longest user agent kept (longer ones are cut).
const MAX_AGENT_LEN: usize = 256;

/// What a user recognises a device by, recorded at login.
pub(crate) struct Device {
    pub user_agent: String,
    /// The peer address of the connection (a proxy in front would need its forwarded header,
    /// which the demo does not trust).
    pub ip: Option<String>,
    /// RFC 3339, UTC.
    pub signed_in: String,
}

impl Device {
    pub(crate) fn new(user_agent: Option<&str>, ip: Option<IpAddr>) -> Device {
        let agent: String = user_agent
            .unwrap_or("unknown device")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_AGENT_LEN)
            .collect();
        Device {
            user_agent: agent,
            ip: ip.map(|ip| ip.to_string()),
            signed_in: iso(SystemTime::now()),
        }
    }
}

/// One of the user's sessions, as listed.
pub(crate) struct Row {
    /// The listed id (the stored id: the id's hash when ids are hashed).
    pub id: String,
    /// The session of this request.
    pub current: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub signed_in: Option<String>,
    pub created: String,
    pub last_seen: String,
}

/// The user's sessions, most recently used first; `current` (this request's session) marked.
///
/// # Errors
/// The store fails.
pub(crate) async fn list<B: Backend>(
    store: &RedisStore<B>,
    user: &str,
    current: Option<&SessionId>,
) -> redis_sessions::Result<Vec<Row>> {
    let current = current.map(|id| store.keyspace().stored_id(id));
    let sessions = store.user_sessions(user).await?;
    Ok(sessions
        .into_iter()
        .map(|s| {
            let text = |field: &str| s.session.get::<String>(field).ok().flatten();
            Row {
                current: current.as_ref() == Some(&s.id),
                id: s.id.as_str().to_owned(),
                user_agent: text(USER_AGENT),
                ip: text(IP),
                signed_in: text(SIGNED_IN),
                created: iso(s.created),
                last_seen: iso(s.last_used),
            }
        })
        .collect())
}

/// `GET /api/sessions`'s body.
pub(crate) fn json(rows: &[Row]) -> Value {
    let sessions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "current": r.current,
                "user_agent": r.user_agent,
                "ip": r.ip,
                "created": r.created,
                "last_seen": r.last_seen,
            })
        })
        .collect();
    json!({ "sessions": sessions })
}

/// Ends the user's session listed as `listed`; `false` when that is not one of the user's
/// sessions (another user's, gone, or not an id at all).
///
/// # Errors
/// The store fails.
pub(crate) async fn revoke<B: Backend>(
    store: &RedisStore<B>,
    user: &str,
    listed: &str,
) -> redis_sessions::Result<bool> {
    let Ok(id) = StoredId::parse(listed) else {
        return Ok(false);
    };
    store.revoke_user_session(user, &id).await
}

/// Ends every session of the user but `current`, returning how many ended.
///
/// # Errors
/// The store fails.
pub(crate) async fn revoke_others<B: Backend>(
    store: &RedisStore<B>,
    user: &str,
    current: Option<&SessionId>,
) -> redis_sessions::Result<u64> {
    let current = current.map(|id| store.keyspace().stored_id(id));
    store.revoke_user_sessions(user, current.as_ref()).await
}

/// `2026-12-02T19:34:38Z`.
pub(crate) fn iso(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_times() {
        assert_eq!(iso(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let at = UNIX_EPOCH + Duration::from_secs(1_795_635_278);
        assert_eq!(iso(at), "2026-11-25T19:34:38Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn device_facts_are_cut_and_cleaned() {
        let long = format!("Mozilla\u{7}/{}", "x".repeat(1000));
        let d = Device::new(Some(&long), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(d.user_agent.chars().count(), MAX_AGENT_LEN);
        assert!(d.user_agent.starts_with("Mozilla/"));
        assert_eq!(d.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(Device::new(None, None).user_agent, "unknown device");
    }
}
