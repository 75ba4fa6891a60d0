//! One file per command; [`run`] dispatches.

mod clear;
mod count;
mod doctor;
mod export;
mod ids;
mod import;
mod rm;
mod show;
mod stats;
mod user;

use std::io::{BufWriter, IsTerminal as _, StdoutLock};

use anyhow::Context as _;
use redis_sessions::SessionId;

use crate::cli::{Cli, Command, UserCommand};
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
            show::run(&ctx, &ctx.stored_ids(&ids, cookie)).await
        }
        Command::Rm { ids, cookie } => {
            let ids = parse_ids(&ids)?;
            let ctx = Context::connect(global).await?;
            rm::run(&ctx, &ctx.stored_ids(&ids, cookie)).await
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
        Command::Doctor => doctor::run(global).await,
        Command::Stats { sample } => stats::run(&Context::connect(global).await?, sample).await,
        Command::User { index_by, command } => match command {
            UserCommand::Ls { user } => {
                user::ls(&Context::connect(global).await?, &index_by, &user).await
            }
            UserCommand::Count { user } => {
                user::count(&Context::connect(global).await?, &index_by, &user).await
            }
            UserCommand::Revoke {
                user,
                except,
                wait,
                wait_timeout,
            } => {
                let except = except
                    .map(|id| {
                        redis_sessions::StoredId::parse(&id)
                            .context("--except is not a valid session id")
                    })
                    .transpose()?;
                let ctx = Context::connect(global).await?;
                let wait = wait.map(|n| {
                    redis_sessions::WaitForReplicas::new(
                        n,
                        std::time::Duration::from_millis(wait_timeout),
                    )
                });
                user::revoke(&ctx, &index_by, &user, except.as_ref(), wait).await
            }
        },
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

/// After a listing (`count`, `ids`, `export`, `clear`): when it found no session and stderr is
/// a terminal, says on stderr which prefix was scanned and how to scan another. Piped or
/// redirected output gets nothing extra.
fn hint_if_empty(ctx: &Context, found: u64) {
    let prefix = ctx.store.keyspace().prefix();
    if let Some(hint) = empty_hint(found, prefix, std::io::stderr().is_terminal()) {
        eprintln!("{hint}");
    }
}

/// The hint of [`hint_if_empty`], if one is due.
fn empty_hint(found: u64, prefix: &str, terminal: bool) -> Option<String> {
    (found == 0 && terminal).then(|| {
        format!(
            "hint: no sessions under the prefix {prefix:?}; if the application uses another \
             prefix, pass it with --prefix (e.g. --prefix myapp:sess:), and check the database \
             in --url / REDIS_URL"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_listing_on_a_terminal_names_the_prefix_and_the_option() {
        let hint = empty_hint(0, "sess:", true).unwrap();
        assert!(hint.starts_with("hint: "), "{hint}");
        assert!(hint.contains("\"sess:\""), "{hint}");
        assert!(hint.contains("--prefix"), "{hint}");
        assert!(!hint.contains('\n'), "one line: {hint}");
        assert!(empty_hint(0, "", true).unwrap().contains("\"\""));
    }

    #[test]
    fn no_hint_when_something_was_found_or_off_a_terminal() {
        assert_eq!(empty_hint(1, "sess:", true), None);
        assert_eq!(empty_hint(0, "sess:", false), None);
        assert_eq!(empty_hint(7, "sess:", false), None);
    }
}
