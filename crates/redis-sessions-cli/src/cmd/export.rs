//! `export`: every session as JSON Lines, `{"id", "ttl_ms", "value"}`.
//!
//! Ids are streamed from the scan; each session's value (`GET`) and TTL (`PTTL`) are read with up
//! to [`IN_FLIGHT`] sessions in flight on the multiplexed connection, in scan order. A value that
//! does not decode (corrupt, or another Redis type at the key) is reported on stderr by its
//! fingerprint and skipped; the exit status then says some failed. A session whose own expiry
//! (`cookie.expires`, or the idle timeout's bound `__exp`) has passed is not exported: the
//! store's read deletes it, as any read does.

use std::io::Write as _;
use std::pin::pin;

use futures_util::{future, StreamExt as _, TryStreamExt as _};
use redis_sessions::{Error, KeyTtl};

use crate::context::Context;
use crate::record::Out;
use crate::{progress, Status};

/// Sessions read concurrently.
const IN_FLIGHT: usize = 64;

pub(crate) async fn run(ctx: &Context) -> anyhow::Result<Status> {
    let store = &ctx.store;
    let mut sessions = pin!(store
        .ids_stream()
        .map_ok(|id| async move {
            let (value, ttl) = future::join(store.get_listed(&id), store.ttl_listed(&id)).await;
            Ok::<_, Error>((id, value, ttl?))
        })
        .try_buffered(IN_FLIGHT));
    let bar = progress::counter("exported");
    let mut out = super::stdout();
    let (mut exported, mut failed) = (0u64, 0u64);
    while let Some((id, value, ttl)) = sessions.next().await.transpose()? {
        let session = match value {
            Ok(Some(session)) if ttl != KeyTtl::Missing => session,
            // Expired or deleted since the scan saw it.
            Ok(_) => continue,
            Err(e) if e.is_decode() => {
                bar.suspend(|| eprintln!("error: {e}"));
                failed += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::to_writer(&mut out, &Out::new(&id, ttl, &session))?;
        out.write_all(b"\n")?;
        exported += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.flush()?;
    super::hint_if_empty(ctx, exported + failed);
    if failed > 0 {
        eprintln!("error: exported {exported} sessions; {failed} could not be decoded");
        return Ok(Status::Partial);
    }
    Ok(Status::Ok)
}
