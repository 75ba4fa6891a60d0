//! `count`: the number of sessions under the prefix.

use std::io::Write as _;

use crate::context::Context;
use crate::{progress, Status};

pub(crate) async fn run(ctx: &Context) -> anyhow::Result<Status> {
    let spinner = progress::waiting("counting sessions");
    let count = ctx.store.length().await;
    spinner.finish_and_clear();
    let count = count?;
    let mut out = super::stdout();
    if ctx.json {
        writeln!(out, "{}", serde_json::json!({ "count": count }))?;
    } else {
        writeln!(out, "{count}")?;
    }
    out.flush()?;
    super::hint_if_empty(ctx, count);
    Ok(Status::Ok)
}
