//! `user ls USER`, `user count USER`, `user revoke USER [--except ID] [--wait N]
//! [--wait-timeout MS]`: one user's sessions through the application's per-user index
//! (`index_by`), never a scan of the keyspace.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use redis_sessions::{StoredId, UserSession, WaitForReplicas};

use crate::context::Context;
use crate::record::{human_ttl, ttl_ms};
use crate::Status;

/// `user ls`: one line per session, most recently used first.
pub(crate) async fn ls(ctx: &Context, field: &str, user: &str) -> anyhow::Result<Status> {
    let sessions = ctx.user_store(field).user_sessions(user).await?;
    let mut out = super::stdout();
    for s in &sessions {
        if ctx.json {
            serde_json::to_writer(&mut out, &json_line(s))?;
            writeln!(out)?;
        } else {
            write!(
                out,
                "{}  created {}  last used {}  ttl {}",
                s.id.as_str(),
                iso(s.created),
                iso(s.last_used),
                human_ttl(s.ttl)
            )?;
            if let Some(agent) = user_agent(s) {
                write!(out, "  {agent}")?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(Status::Ok)
}

/// `user count`.
pub(crate) async fn count(ctx: &Context, field: &str, user: &str) -> anyhow::Result<Status> {
    let n = ctx.user_store(field).user_session_count(user).await?;
    let mut out = super::stdout();
    match ctx.json {
        true => writeln!(out, "{}", serde_json::json!({ "sessions": n }))?,
        false => writeln!(out, "{n}")?,
    }
    out.flush()?;
    Ok(Status::Ok)
}

/// `user revoke`: ends the user's sessions (all but `except`); with `wait`, then waits for
/// that many replicas to acknowledge and says how many did (fewer is a warning on stderr,
/// not a failure: the sessions ended on the primary).
pub(crate) async fn revoke(
    ctx: &Context,
    field: &str,
    user: &str,
    except: Option<&StoredId>,
    wait: Option<WaitForReplicas>,
) -> anyhow::Result<Status> {
    let store = ctx.user_store(field);
    let mut out = super::stdout();
    let Some(wait) = wait else {
        let ended = store.revoke_user_sessions(user, except).await?;
        match ctx.json {
            true => writeln!(out, "{}", serde_json::json!({ "revoked": ended }))?,
            false => writeln!(out, "revoked {ended} sessions")?,
        }
        out.flush()?;
        return Ok(Status::Ok);
    };
    let revoked = store
        .revoke_user_sessions_durably(user, except, wait)
        .await?;
    match ctx.json {
        true => writeln!(
            out,
            "{}",
            serde_json::json!({
                "revoked": revoked.ended,
                "acknowledged": revoked.acknowledged,
                "replicas": revoked.replicas,
            })
        )?,
        false => writeln!(
            out,
            "revoked {} sessions; acknowledged by {} of {} replicas",
            revoked.ended, revoked.acknowledged, revoked.replicas
        )?,
    }
    out.flush()?;
    if !revoked.is_acknowledged() {
        eprintln!(
            "warning: {} of {} replicas acknowledged within {} ms: the sessions ended on the \
             primary, but a failover before a replica has the deletes could bring them back",
            revoked.acknowledged,
            revoked.replicas,
            wait.timeout.as_millis()
        );
    }
    Ok(Status::Ok)
}

fn json_line(s: &UserSession) -> serde_json::Value {
    serde_json::json!({
        "id": s.id.as_str(),
        "created": iso(s.created),
        "last_used": iso(s.last_used),
        "ttl_ms": ttl_ms(s.ttl),
        "user_agent": user_agent(s),
        "value": &s.session,
    })
}

/// The user agent a session holds (the demo records it at login), if any.
fn user_agent(s: &UserSession) -> Option<String> {
    s.session.get::<String>("user_agent").ok().flatten()
}

/// `2026-12-02T19:34:38Z`.
fn iso(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(iso(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let at = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29T12:34:56Z
        assert_eq!(iso(at), "2024-02-29T12:34:56Z");
    }
}
