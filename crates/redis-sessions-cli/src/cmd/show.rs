//! `show ID...`: decoded sessions with their remaining TTL.

use std::io::Write as _;

use anyhow::{bail, Context as _};
use redis_sessions::{KeyTtl, StoredId};

use crate::context::Context;
use crate::record::{human_ttl, Out};
use crate::Status;

pub(crate) async fn run(ctx: &Context, ids: &[StoredId]) -> anyhow::Result<Status> {
    let mut out = super::stdout();
    for (n, id) in ids.iter().enumerate() {
        let argument = n + 1;
        let session = ctx
            .store
            .get_listed(id)
            .await
            .with_context(|| format!("argument {argument}"))?;
        let ttl = ctx.store.ttl_listed(id).await?;
        let (Some(session), false) = (session, ttl == KeyTtl::Missing) else {
            out.flush()?;
            bail!(
                "argument {argument}: no session with this id under prefix {:?}",
                ctx.store.keyspace().prefix()
            );
        };
        if ctx.json {
            serde_json::to_writer(&mut out, &Out::new(id, ttl, &session))?;
            out.write_all(b"\n")?;
        } else {
            if argument > 1 {
                writeln!(out)?;
            }
            writeln!(out, "id:  {}", id.as_str())?;
            writeln!(out, "ttl: {}", human_ttl(ttl))?;
            serde_json::to_writer_pretty(&mut out, &session)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(Status::Ok)
}
