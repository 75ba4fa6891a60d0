//! `clear`: deletes every session under the prefix, after a confirmation.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::bail;

use crate::context::Context;
use crate::{progress, Status};

/// How the deletion was confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Confirm {
    /// `--yes`.
    Given,
    /// Ask on the terminal.
    Ask,
}

/// Decides how to confirm, before connecting: without `--yes`, standard input must be a
/// terminal to ask on. An empty prefix is refused here already (it would match every key).
pub(crate) fn confirmation(prefix: &str, yes: bool) -> anyhow::Result<Confirm> {
    if prefix.is_empty() {
        return Err(redis_sessions::Error::EmptyPrefix.into());
    }
    if yes {
        Ok(Confirm::Given)
    } else if std::io::stdin().is_terminal() {
        Ok(Confirm::Ask)
    } else {
        bail!("refusing to clear without confirmation: standard input is not a terminal; pass --yes to delete every session under the prefix")
    }
}

pub(crate) async fn run(ctx: &Context, confirm: Confirm) -> anyhow::Result<Status> {
    let prefix = ctx.store.keyspace().prefix();
    if confirm == Confirm::Ask {
        let spinner = progress::waiting("counting sessions");
        let count = ctx.store.length().await;
        spinner.finish_and_clear();
        let count = count?;
        eprint!("Delete all {count} sessions under prefix {prefix:?}? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            bail!("aborted: nothing was deleted");
        }
    }
    let spinner = progress::waiting("deleting sessions");
    let deleted = ctx.store.clear().await;
    spinner.finish_and_clear();
    let deleted = deleted?;
    let mut out = super::stdout();
    if ctx.json {
        writeln!(out, "{}", serde_json::json!({ "deleted": deleted }))?;
    } else {
        writeln!(out, "deleted {deleted} sessions")?;
    }
    out.flush()?;
    super::hint_if_empty(ctx, deleted);
    Ok(Status::Ok)
}
