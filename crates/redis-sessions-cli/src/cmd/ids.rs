//! `ids`: every session id under the prefix, one per line, streamed page by page.

use std::io::Write as _;
use std::pin::pin;

use futures_util::TryStreamExt as _;

use crate::context::Context;
use crate::{progress, Status};

pub(crate) async fn run(ctx: &Context) -> anyhow::Result<Status> {
    let bar = progress::counter("listed");
    let mut ids = pin!(ctx.store.ids_stream());
    let mut out = super::stdout();
    let mut listed = 0u64;
    while let Some(id) = ids.try_next().await? {
        if ctx.json {
            serde_json::to_writer(&mut out, id.as_str())?;
            out.write_all(b"\n")?;
        } else {
            writeln!(out, "{}", id.as_str())?;
        }
        bar.inc(1);
        listed += 1;
    }
    bar.finish_and_clear();
    out.flush()?;
    super::hint_if_empty(ctx, listed);
    Ok(Status::Ok)
}
