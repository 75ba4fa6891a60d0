//! One file per command; [`run`] dispatches.

mod clear;
mod count;
mod export;
mod ids;
mod import;
mod rm;
mod show;
mod stats;

use std::io::{BufWriter, StdoutLock};

use anyhow::Context as _;
use redis_sessions::SessionId;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::Status;

/// Runs a command line. Arguments that need no Redis (ids, `clear`'s confirmation) are
/// checked before connecting.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<Status> {
    let Cli { global, command } = cli;
    match command {
        Command::Count => count::run(&Context::connect(global).await?).await,
        Command::Ids => ids::run(&Context::connect(global).await?).await,
        Command::Show { ids, cookie } => {
            let ids = parse_ids(&ids)?;
            let ctx = Context::connect(global).await?;
            show::run(&ctx, &ctx.stored_ids(ids, cookie)).await
        }
        Command::Rm { ids, cookie } => {
            let ids = parse_ids(&ids)?;
            let ctx = Context::connect(global).await?;
            rm::run(&ctx, &ctx.stored_ids(ids, cookie)).await
        }
        Command::Clear { yes } => {
            let confirm = clear::confirmation(&global.prefix, yes)?;
            clear::run(&Context::connect(global).await?, confirm).await
        }
        Command::Export => export::run(&Context::connect(global).await?).await,
        Command::Import { file, overwrite } => {
            let input = import::open(file.as_deref()).await?;
            import::run(&Context::connect(global).await?, input, overwrite).await
        }
        Command::Stats { sample } => stats::run(&Context::connect(global).await?, sample).await,
    }
}

/// Validates every id given on the command line before anything is sent. The error names the
/// argument's position, not the (secret) id.
fn parse_ids(ids: &[String]) -> anyhow::Result<Vec<SessionId>> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| {
            SessionId::parse(id)
                .with_context(|| format!("argument {} is not a valid session id", n + 1))
        })
        .collect()
}

/// Buffered standard output; flush it before returning.
fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::new(std::io::stdout().lock())
}
