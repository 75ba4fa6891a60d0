//! `redis-sessions`: the admin CLI of the redis-sessions session store.
//!
//! It reads and changes sessions under one key prefix with the library's own store, so every
//! rule of the library holds here too: glob-escaped scans that re-check each key, batched
//! deletes, no `KEYS`/`FLUSHDB`, and a refusal to `clear` with an empty prefix.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | error: Redis unreachable, bad id, missing session, refused `clear`, ... (one `error:` line on stderr; a permission the Redis user lacks adds a second line with the `ACL SETUSER` that grants it) |
//! | 2 | usage error (unknown command or option) |
//! | 3 | finished, but some items failed: undecodable values in `export`, bad lines in `import` |
//! | 4 | `doctor`: warnings, no failure |
//! | 5 | `doctor`: at least one failure (including Redis unreachable) |
//!
//! # Layout
//!
//! - `cli.rs`: the command line (clap).
//! - `connect.rs`: the URL to a backend; the one place that knows deployment forms.
//! - `context.rs`: the store(s) a command works with, and the output mode.
//! - `record.rs`: the JSON Lines record of `export`, `import` and `show --json`.
//! - `denied.rs`: what to add to the ACL when Redis refused a command.
//! - `progress.rs`: spinners on stderr, only when stderr is a terminal.
//! - `cmd/`: one file per command.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cli;
mod cmd;
mod connect;
mod context;
mod denied;
mod progress;
mod record;
mod slots;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// How a command that did not fail outright ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Everything succeeded.
    Ok,
    /// The command ran to the end, but some items failed (reported on stderr).
    Partial,
    /// `doctor` found warnings and no failure.
    Warnings,
    /// `doctor` found at least one failure.
    Failures,
}

/// Exit code of a fatal error.
const EXIT_ERROR: u8 = 1;
/// Exit code when some items failed (see [`Status::Partial`]).
const EXIT_PARTIAL: u8 = 3;
/// Exit code of a `doctor` with warnings only.
const EXIT_WARNINGS: u8 = 4;
/// Exit code of a `doctor` with failures.
const EXIT_FAILURES: u8 = 5;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // For the hint of a permission error: the URL's user and the prefix's key pattern.
    let (url, prefix) = (cli.global.url.clone(), cli.global.prefix.clone());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = runtime.block_on(cmd::run(cli));
    // An `import` stopped by an error may leave a read of standard input waiting on one of the
    // runtime's blocking threads; dropping the runtime would wait for it (for ever, on a pipe
    // that stays open).
    runtime.shutdown_background();
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Partial) => ExitCode::from(EXIT_PARTIAL),
        Ok(Status::Warnings) => ExitCode::from(EXIT_WARNINGS),
        Ok(Status::Failures) => ExitCode::from(EXIT_FAILURES),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = fail(&e);
            if let Some(hint) = denied::hint(&e, &url, &prefix) {
                eprintln!("{hint}");
            }
            code
        }
    }
}

/// Prints `error: ...` as one line and returns the error exit code.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", one_line(e));
    ExitCode::from(EXIT_ERROR)
}

/// The error and its causes on one line, `outer: inner: root`, without repeating a cause that
/// an outer message already contains (library errors often print their source themselves).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace(['\n', '\r'], " ")
}

/// Output closed early (`redis-sessions ids | head`): not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
