//! `rm ID...`: deletes sessions and reports how many existed.

use std::io::Write as _;

use redis_sessions::StoredId;

use crate::context::Context;
use crate::Status;

pub(crate) async fn run(ctx: &Context, ids: &[StoredId]) -> anyhow::Result<Status> {
    let mut deleted = 0u64;
    for id in ids {
        deleted += u64::from(ctx.store.destroy_listed(id).await?);
    }
    let mut out = super::stdout();
    if ctx.json {
        let report = serde_json::json!({ "requested": ids.len(), "deleted": deleted });
        writeln!(out, "{report}")?;
    } else {
        writeln!(out, "deleted {deleted} of {} sessions", ids.len())?;
    }
    out.flush()?;
    Ok(Status::Ok)
}
