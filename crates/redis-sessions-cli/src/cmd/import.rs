//! `import [FILE]`: reads the export format and writes each session with its remaining TTL.
//!
//! Each session is created only if absent (`SET NX`; an existing one is counted as skipped),
//! or overwritten with `--overwrite`. A line that is not a valid record is reported on stderr
//! with its line number and skipped; the exit status then says some failed. A Redis failure
//! stops the import.
//!
//! TTLs: a record's `ttl_ms` becomes the key's TTL. A session without an explicit expiry is
//! written unchanged with that TTL. A session with one (`cookie.expires`) is written unchanged
//! when its expiry is within a second of now + `ttl_ms` (the store then takes the TTL from it);
//! otherwise its expiry is moved to now + `ttl_ms`, because an explicit expiry wins over any
//! TTL. A null `ttl_ms` writes the session without expiry.

use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use redis_sessions::{Error, Outcome, SessionId};
use serde_json::error::Category;

use crate::context::Context;
use crate::record::In;
use crate::{progress, Status};

/// Largest accepted `ttl_ms`: 100 years (a larger one is a mistake, not a session).
const MAX_TTL_MS: u64 = 100 * 365 * 86_400 * 1000;

/// How far a session's own expiry may be from now + `ttl_ms` and still be kept as it is.
/// connect-redis rounds TTLs up to whole seconds, so an exported TTL is up to a second longer
/// than the expiry it came from; such a value is written back unchanged.
const EXPIRY_SLACK: Duration = Duration::from_secs(1);

/// Opens `file`, or standard input for none or `-`.
pub(crate) fn open(file: Option<&Path>) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(match file {
        None => Box::new(std::io::stdin().lock()),
        Some(path) if path == Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
    })
}

/// What happened to the lines.
#[derive(Debug, Default)]
struct Counts {
    imported: u64,
    /// Already present (without `--overwrite`).
    skipped: u64,
    /// The session's expiry had passed: nothing written.
    expired: u64,
    failed: u64,
}

/// Why a line was not imported.
enum LineError {
    /// The line is not a valid record: report it and go on.
    Bad(String),
    /// Redis failed: stop.
    Fatal(Error),
}

pub(crate) async fn run(
    ctx: &Context,
    mut input: Box<dyn BufRead>,
    overwrite: bool,
) -> anyhow::Result<Status> {
    let bar = progress::counter("imported");
    let mut counts = Counts::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        number += 1;
        let read = input
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read line {number}"))?;
        if read == 0 {
            break;
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        match import_line(ctx, &line, overwrite).await {
            Ok(Outcome::Exists) => counts.skipped += 1,
            Ok(Outcome::Expired) => counts.expired += 1,
            Ok(_) => {
                counts.imported += 1;
                bar.inc(1);
            }
            Err(LineError::Bad(why)) => {
                bar.suspend(|| eprintln!("error: line {number}: {why}"));
                counts.failed += 1;
            }
            Err(LineError::Fatal(e)) => {
                bar.finish_and_clear();
                return Err(anyhow::Error::new(e).context(format!(
                    "import stopped at line {number} ({} imported before)",
                    counts.imported
                )));
            }
        }
    }
    bar.finish_and_clear();
    let Counts {
        imported,
        skipped,
        expired,
        failed,
    } = counts;
    let mut out = super::stdout();
    if ctx.json {
        let report = serde_json::json!({
            "imported": imported, "skipped": skipped, "expired": expired, "failed": failed,
        });
        writeln!(out, "{report}")?;
    } else {
        writeln!(
            out,
            "imported {imported}, skipped {skipped} (exist), expired {expired}, failed {failed}"
        )?;
    }
    out.flush()?;
    Ok(if failed > 0 {
        Status::Partial
    } else {
        Status::Ok
    })
}

async fn import_line(ctx: &Context, line: &[u8], overwrite: bool) -> Result<Outcome, LineError> {
    let In { id, ttl_ms, value } = serde_json::from_slice(line).map_err(|e| {
        LineError::Bad(match e.classify() {
            Category::Data => format!(
                "not an export record at column {}: expected {{\"id\": string, \"ttl_ms\": number or null, \"value\": object}}",
                e.column()
            ),
            Category::Syntax | Category::Eof | Category::Io => {
                format!("invalid JSON at column {}", e.column())
            }
        })
    })?;
    let id =
        SessionId::parse(&id).map_err(|e| LineError::Bad(format!("invalid session id: {e}")))?;
    let mut session = value;
    let store = match ttl_ms {
        None => ctx.store_without_ttl(),
        Some(ms) if ms > MAX_TTL_MS => {
            return Err(LineError::Bad("ttl_ms is larger than 100 years".into()))
        }
        Some(ms) => {
            let ttl = Duration::from_millis(ms);
            match session.expires() {
                None => ctx.store_with_ttl(ttl),
                Some(expires) => {
                    let target = SystemTime::now() + ttl;
                    if distance(expires, target) > EXPIRY_SLACK {
                        session.set_expires(Some(target));
                    }
                    ctx.store.clone()
                }
            }
        }
    };
    let written = match overwrite {
        true => store.set(&id, &session).await,
        false => store.create(&id, &session).await,
    };
    written.map_err(|e| match e {
        Error::Encode(why) => LineError::Bad(format!("session could not be encoded: {why}")),
        e => LineError::Fatal(e),
    })
}

/// The time between `a` and `b`, whichever is first.
fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .unwrap_or_else(|before| before.duration())
}
