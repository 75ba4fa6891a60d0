//! `doctor`: what is wrong with the deployment, one line per check (the library's
//! `RedisStore::check`), with the exit status telling ok, warnings and failures apart.

use std::io::Write as _;

use redis_sessions::{Check, CheckLevel, Diagnosis};

use crate::cli::Global;
use crate::context::Context;
use crate::{progress, Status};

pub(crate) async fn run(global: Global) -> anyhow::Result<Status> {
    let json = global.json;
    let diagnosis = match Context::connect(global).await {
        Ok(ctx) => {
            let spinner = progress::waiting("checking the deployment");
            let diagnosis = ctx.store.check().await;
            spinner.finish_and_clear();
            diagnosis
        }
        // Not reaching Redis is the first thing a doctor reports, as a failure line.
        Err(e) => unreachable(&e),
    };
    let mut out = super::stdout();
    if json {
        writeln!(out, "{}", to_json(&diagnosis))?;
    } else {
        for check in &diagnosis.checks {
            writeln!(out, "{}", line(check))?;
        }
    }
    out.flush()?;
    Ok(match diagnosis.level() {
        CheckLevel::Ok => Status::Ok,
        CheckLevel::Warning => Status::Warnings,
        _ => Status::Failures,
    })
}

fn unreachable(e: &anyhow::Error) -> Diagnosis {
    let mut diagnosis = Diagnosis::default();
    let text = crate::one_line(e);
    let fix = if e
        .chain()
        .filter_map(|c| c.downcast_ref::<redis_sessions::BackendError>())
        .any(|b| b.kind() == redis_sessions::BackendErrorKind::Tls)
    {
        "check --tls-ca-file, --tls-cert-file/--tls-key-file, and rediss:// against the TLS port"
    } else {
        "check --url (REDIS_URL): the address, port, user and password, and that Redis runs"
    };
    diagnosis
        .checks
        .push(Check::new("connection", CheckLevel::Failure, text).with_fix(fix));
    diagnosis
}

/// `level name [server]: reason; fix: ...`
fn line(check: &Check) -> String {
    let mut line = format!("{:<7} {}", check.level.as_str(), check.name);
    if let Some(server) = &check.server {
        line.push_str(&format!(" [{server}]"));
    }
    line.push_str(": ");
    line.push_str(&check.reason);
    if let Some(fix) = &check.fix {
        line.push_str("; fix: ");
        line.push_str(fix);
    }
    line.replace(['\n', '\r'], " ")
}

fn to_json(diagnosis: &Diagnosis) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = diagnosis
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "level": c.level.as_str(),
                "server": c.server,
                "reason": c.reason,
                "fix": c.fix,
            })
        })
        .collect();
    serde_json::json!({ "level": diagnosis.level().as_str(), "checks": checks })
}
