//! `import [FILE]`: reads the export format and writes each session with its remaining TTL.
//!
//! Each session is created only if absent (`SET NX`; an existing one is counted as skipped),
//! or overwritten with `--overwrite`. A line that is not a valid record, and a session over
//! the store's size cap, is reported on stderr with its line number and skipped; the exit
//! status then says some failed. A Redis failure stops the import (lines after the reported
//! one may have been written; importing the file again skips them).
//!
//! The input is read with tokio's async IO (standard input and files are read on its blocking
//! threads), so writes go on while the next line is awaited: `tail -f export.jsonl | import`
//! imports each line as it comes. Memory is bounded: lines are streamed, a line longer than
//! [`MAX_LINE`] is skipped as it is read (never held whole) and reported, and up to
//! [`IN_FLIGHT`] writes are in flight on the multiplexed connection. Results are settled and
//! reported in line order, and two lines with the same id are never in flight together, so
//! the file's order decides (with `--overwrite` the last line wins).
//!
//! TTLs: a record's `ttl_ms` becomes the key's TTL. A session without an explicit expiry is
//! written unchanged with that TTL. A session with one (`cookie.expires`, or the idle timeout's
//! bound `__exp`) is written unchanged when its expiry is within a second of now + `ttl_ms` (the
//! store then takes the TTL from it); otherwise its expiry is moved to now + `ttl_ms`, in the
//! same place, because an explicit expiry wins over any TTL. A null `ttl_ms` writes the session without expiry.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use futures_util::future::{self, LocalBoxFuture};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt as _, StreamExt as _};
use indicatif::ProgressBar;
use redis_sessions::{Error, Outcome, RedisStore, Session, SessionId, DEFAULT_MAX_VALUE_SIZE};
use serde_json::error::Category;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, BufReader};

use crate::connect::Conn;
use crate::context::Context;
use crate::record::In;
use crate::{progress, Status};

/// Writes in flight at once.
const IN_FLIGHT: usize = 64;

/// Largest accepted `ttl_ms`: 100 years (a larger one is a mistake, not a session).
const MAX_TTL_MS: u64 = 100 * 365 * 86_400 * 1000;

/// How far a session's own expiry may be from now + `ttl_ms` and still be kept as it is.
/// connect-redis rounds TTLs up to whole seconds, so an exported TTL is up to a second longer
/// than the expiry it came from; such a value is written back unchanged.
const EXPIRY_SLACK: Duration = Duration::from_secs(1);

/// Longest line read: twice the store's size cap (the CLI's store has the default cap) plus
/// room for the id and TTL. A record's value is the session's JSON, so a longer line holds a
/// session the store would refuse anyway.
const MAX_LINE: usize = 2 * DEFAULT_MAX_VALUE_SIZE + 4096;

/// The input, read asynchronously.
pub(crate) type Input = Box<dyn AsyncBufRead + Unpin>;

/// Opens `file`, or standard input for none or `-`.
pub(crate) async fn open(file: Option<&Path>) -> anyhow::Result<Input> {
    Ok(match file {
        Some(path) if path != Path::new("-") => Box::new(BufReader::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?,
        )),
        _ => Box::new(BufReader::new(tokio::io::stdin())),
    })
}

/// Why a line was not imported.
enum LineError {
    /// The line is not a valid record: report it and go on.
    Bad(String),
    /// Redis failed: stop.
    Fatal(Error),
}

/// A valid record, ready to write.
struct Prepared {
    id: SessionId,
    session: Session,
    /// The store whose TTL rule gives the record's TTL.
    store: RedisStore<Conn>,
}

/// A line's result: its number, its id when it had a valid one, and what happened.
type Done = (u64, Option<SessionId>, Result<Outcome, LineError>);

/// Counts and reports results in line order.
#[derive(Default)]
struct Tally {
    imported: u64,
    /// Already present (without `--overwrite`).
    skipped: u64,
    /// The session's expiry had passed: nothing written.
    expired: u64,
    failed: u64,
    /// Ids of the writes in flight.
    in_flight: HashSet<SessionId>,
}

impl Tally {
    fn settle(&mut self, (number, id, result): Done, bar: &ProgressBar) -> anyhow::Result<()> {
        if let Some(id) = id {
            self.in_flight.remove(&id);
        }
        match result {
            Ok(Outcome::Exists) => self.skipped += 1,
            Ok(Outcome::Expired) => self.expired += 1,
            Ok(_) => {
                self.imported += 1;
                bar.inc(1);
            }
            Err(LineError::Bad(why)) => {
                bar.suspend(|| eprintln!("error: line {number}: {why}"));
                self.failed += 1;
            }
            Err(LineError::Fatal(e)) => {
                return Err(
                    anyhow::Error::new(e).context(format!("import stopped at line {number}"))
                )
            }
        }
        Ok(())
    }
}

pub(crate) async fn run(ctx: &Context, input: Input, overwrite: bool) -> anyhow::Result<Status> {
    let bar = progress::counter("imported");
    let mut tally = Tally::default();
    let mut pending: FuturesOrdered<LocalBoxFuture<'_, Done>> = FuturesOrdered::new();
    let mut reader = Lines::new(input, MAX_LINE);
    loop {
        let read_more = !reader.eof && pending.len() < IN_FLIGHT;
        // Writes progress while the next line is awaited; finished writes are settled first.
        // `Lines::next` is cancel-safe, so losing the race to a write loses no input.
        tokio::select! {
            biased;
            Some(done) = pending.next(), if !pending.is_empty() => tally.settle(done, &bar)?,
            line = reader.next(), if read_more => {
                let task = match line? {
                    None => continue,
                    Some(Line::TooLong(number)) => {
                        let why = format!("line is longer than {MAX_LINE} bytes: not read");
                        future::ready((number, None, Err(LineError::Bad(why)))).boxed_local()
                    }
                    Some(Line::Record(number, line)) => match prepare(ctx, line) {
                        Ok(prepared) => {
                            while tally.in_flight.contains(&prepared.id) {
                                let Some(done) = pending.next().await else {
                                    break;
                                };
                                tally.settle(done, &bar)?;
                            }
                            tally.in_flight.insert(prepared.id.clone());
                            write(number, prepared, overwrite).boxed_local()
                        }
                        Err(why) => {
                            future::ready((number, None, Err(LineError::Bad(why)))).boxed_local()
                        }
                    },
                };
                pending.push_back(task);
            }
            else => break,
        }
    }
    bar.finish_and_clear();
    let Tally {
        imported,
        skipped,
        expired,
        failed,
        ..
    } = tally;
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

/// A line of the input.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A non-blank line and its number, as bytes (a line that is not UTF-8 is reported as
    /// invalid JSON).
    Record(u64, Vec<u8>),
    /// A line longer than the limit, skipped unread.
    TooLong(u64),
}

/// Numbered non-blank lines of at most `max` bytes, streamed from the input.
struct Lines {
    input: Input,
    max: usize,
    /// Number of the last line returned or skipped.
    number: u64,
    /// The input has ended.
    eof: bool,
    /// The current line so far.
    line: Vec<u8>,
    /// The current line is over `max`: the rest of it is skipped, not kept.
    too_long: bool,
}

impl Lines {
    fn new(input: Input, max: usize) -> Lines {
        Lines {
            input,
            max,
            number: 0,
            eof: false,
            line: Vec::new(),
            too_long: false,
        }
    }

    /// The next line, or `None` at the end. Cancel-safe: its only await (`fill_buf`) consumes
    /// nothing, and what it has consumed is in `self`, so a dropped call loses no input.
    async fn next(&mut self) -> anyhow::Result<Option<Line>> {
        while !self.eof {
            let chunk = self
                .input
                .fill_buf()
                .await
                .with_context(|| format!("cannot read line {}", self.number + 1))?;
            let (used, ended) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None if chunk.is_empty() => {
                    self.eof = true;
                    (0, true)
                }
                None => (chunk.len(), false),
            };
            if !self.too_long {
                if self.line.len() + used > self.max {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(&chunk[..used]);
                }
            }
            self.input.consume(used);
            if !ended || (self.eof && self.line.is_empty() && !self.too_long) {
                continue;
            }
            self.number += 1;
            let line = std::mem::take(&mut self.line);
            if std::mem::take(&mut self.too_long) {
                return Ok(Some(Line::TooLong(self.number)));
            }
            if !line.trim_ascii().is_empty() {
                return Ok(Some(Line::Record(self.number, line)));
            }
        }
        Ok(None)
    }
}

/// Parses and checks a line, and picks the store that gives it its TTL. The error names the
/// problem and the column, never the line's contents.
fn prepare(ctx: &Context, line: Vec<u8>) -> Result<Prepared, String> {
    let In { id, ttl_ms, value } = serde_json::from_slice(&line).map_err(|e| match e.classify() {
        Category::Data => format!(
            "not an export record at column {}: expected {{\"id\": string, \"ttl_ms\": number or null, \"value\": object}}",
            e.column()
        ),
        Category::Syntax | Category::Eof | Category::Io => {
            format!("invalid JSON at column {}", e.column())
        }
    })?;
    let id = SessionId::parse(&id).map_err(|e| format!("invalid session id: {e}"))?;
    let mut session = value;
    let store = match ttl_ms {
        None => ctx.store_without_ttl(),
        Some(ms) if ms > MAX_TTL_MS => return Err("ttl_ms is larger than 100 years".into()),
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
    Ok(Prepared { id, session, store })
}

/// Writes one prepared record: create, or set with `--overwrite`.
async fn write(number: u64, prepared: Prepared, overwrite: bool) -> Done {
    let Prepared { id, session, store } = prepared;
    let written = match overwrite {
        true => store.set(&id, &session).await,
        false => store.create(&id, &session).await,
    };
    let result = written.map_err(|e| match e {
        Error::Encode(why) => LineError::Bad(format!("session could not be encoded: {why}")),
        // Over the size cap: this record, not the run.
        e if e.is_too_large() => LineError::Bad(e.to_string()),
        e => LineError::Fatal(e),
    });
    (number, Some(id), result)
}

/// The time between `a` and `b`, whichever is first.
fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .unwrap_or_else(|before| before.duration())
}
