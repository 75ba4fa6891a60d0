//! `stats`: session count, value sizes (`MEMORY USAGE` on a sample) and the TTL distribution.

use std::io::Write as _;
use std::pin::pin;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use redis_sessions::{KeyTtl, StoredId};
use serde::Serialize;

use crate::context::Context;
use crate::slots::SlotMap;
use crate::{progress, Status};

/// Sessions measured concurrently.
const IN_FLIGHT: usize = 64;

/// Upper bounds of the TTL buckets; each bucket counts TTLs below its bound and at or above the
/// previous one.
const BOUNDS: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(3600),
    Duration::from_secs(86_400),
    Duration::from_secs(7 * 86_400),
];

/// The figures, as `--json` prints them.
#[derive(Debug, Default, Serialize)]
struct Stats {
    /// Sessions under the prefix.
    sessions: u64,
    /// Sessions measured with `MEMORY USAGE`.
    sampled: u64,
    /// Sum of `MEMORY USAGE` over the sample, in bytes.
    sampled_bytes: u64,
    /// Average `MEMORY USAGE` per session, in bytes.
    avg_bytes: u64,
    /// Estimated memory of all sessions (average × count; exact when every session was sampled).
    total_bytes: u64,
    /// TTL distribution.
    ttl: Buckets,
    /// On a cluster: the same figures per primary, by address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<NodeStats>,
}

/// A cluster primary's share.
#[derive(Debug, Default, Serialize)]
struct NodeStats {
    /// `host:port` as the cluster reports it.
    node: String,
    /// Sessions on this primary.
    sessions: u64,
    /// Of which measured with `MEMORY USAGE`.
    sampled: u64,
    /// Their `MEMORY USAGE` sum, in bytes.
    sampled_bytes: u64,
    /// Average per sampled session, in bytes.
    avg_bytes: u64,
}

/// Counts of sessions per remaining-TTL range.
#[derive(Debug, Default, Serialize)]
struct Buckets {
    under_1m: u64,
    under_1h: u64,
    under_1d: u64,
    under_7d: u64,
    longer: u64,
    no_expiry: u64,
}

impl Buckets {
    fn add(&mut self, ttl: Duration) {
        let counts = [
            &mut self.under_1m,
            &mut self.under_1h,
            &mut self.under_1d,
            &mut self.under_7d,
        ];
        match BOUNDS.iter().zip(counts).find(|(bound, _)| ttl < **bound) {
            Some((_, count)) => *count += 1,
            None => self.longer += 1,
        }
    }
}

pub(crate) async fn run(ctx: &Context, sample: usize) -> anyhow::Result<Status> {
    let store = &ctx.store;
    let slots = match store.backend() {
        redis_sessions::AnyBackend::Cluster(_) => Some(SlotMap::load(store.backend()).await?),
        _ => None,
    };
    let slots = slots.as_ref();
    let mut measured = pin!(store
        .ids_stream()
        .enumerate()
        .map(|(n, id)| async move {
            let id = id?;
            let ttl = store.ttl_listed(&id).await?;
            let bytes = match n < sample && ttl != KeyTtl::Missing {
                true => memory_usage(store, &id).await?,
                false => None,
            };
            let node = slots.map(|map| {
                let key = store.keyspace().stored_key(&id);
                map.node_of(key.as_bytes()).to_owned()
            });
            Ok::<_, anyhow::Error>((ttl, bytes, node))
        })
        .buffered(IN_FLIGHT));
    let bar = progress::counter("scanned");
    let mut stats = Stats::default();
    while let Some((ttl, bytes, node)) = measured.try_next().await? {
        bar.inc(1);
        match ttl {
            KeyTtl::Missing => continue,
            KeyTtl::Persistent => stats.ttl.no_expiry += 1,
            KeyTtl::Expires(d) => stats.ttl.add(d),
        }
        stats.sessions += 1;
        if let Some(bytes) = bytes {
            stats.sampled += 1;
            stats.sampled_bytes += bytes;
        }
        if let Some(node) = node {
            let entry = match stats.nodes.iter().position(|n| n.node == node) {
                Some(i) => &mut stats.nodes[i],
                None => {
                    stats.nodes.push(NodeStats {
                        node,
                        ..NodeStats::default()
                    });
                    let last = stats.nodes.len() - 1;
                    &mut stats.nodes[last]
                }
            };
            entry.sessions += 1;
            if let Some(bytes) = bytes {
                entry.sampled += 1;
                entry.sampled_bytes += bytes;
            }
        }
    }
    stats.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    for node in &mut stats.nodes {
        node.avg_bytes = node.sampled_bytes.checked_div(node.sampled).unwrap_or(0);
    }
    bar.finish_and_clear();
    stats.avg_bytes = stats.sampled_bytes.checked_div(stats.sampled).unwrap_or(0);
    stats.total_bytes = match stats.sampled == stats.sessions {
        true => stats.sampled_bytes,
        false => stats.avg_bytes.saturating_mul(stats.sessions),
    };
    let mut out = super::stdout();
    if ctx.json {
        serde_json::to_writer(&mut out, &stats)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &stats)?;
    }
    out.flush()?;
    Ok(Status::Ok)
}

/// `MEMORY USAGE key`, `None` when the key is gone (on a cluster, asked of the key's node).
async fn memory_usage(
    store: &redis_sessions::RedisStore<crate::connect::Conn>,
    id: &StoredId,
) -> anyhow::Result<Option<u64>> {
    let key = store.keyspace().stored_key(id);
    store
        .backend()
        .command(redis::cmd("MEMORY").arg("USAGE").arg(key))
        .await
        .context("MEMORY USAGE failed")
}

fn print_table(out: &mut impl std::io::Write, stats: &Stats) -> std::io::Result<()> {
    let Buckets {
        under_1m,
        under_1h,
        under_1d,
        under_7d,
        longer,
        no_expiry,
    } = stats.ttl;
    let exact = stats.sampled == stats.sessions;
    let rows: [(&str, String); 10] = [
        ("sessions", stats.sessions.to_string()),
        (
            "memory sampled",
            format!("{} sessions (MEMORY USAGE)", stats.sampled),
        ),
        ("memory avg", format!("{} bytes", stats.avg_bytes)),
        (
            "memory total",
            format!(
                "{} bytes{}",
                stats.total_bytes,
                if exact { "" } else { " (estimated)" }
            ),
        ),
        ("ttl < 1m", under_1m.to_string()),
        ("ttl < 1h", under_1h.to_string()),
        ("ttl < 1d", under_1d.to_string()),
        ("ttl < 7d", under_7d.to_string()),
        ("ttl >= 7d", longer.to_string()),
        ("no expiry", no_expiry.to_string()),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<16} {value}")?;
    }
    for node in &stats.nodes {
        writeln!(
            out,
            "{:<16} {} sessions, avg {} bytes",
            format!("node {}", node.node),
            node.sessions,
            node.avg_bytes
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exclusive_ranges() {
        let mut b = Buckets::default();
        for secs in [0, 59, 60, 3599, 3600, 86_399, 86_400, 604_799, 604_800] {
            b.add(Duration::from_secs(secs));
        }
        assert_eq!(
            (b.under_1m, b.under_1h, b.under_1d, b.under_7d, b.longer),
            (2, 2, 2, 2, 1)
        );
    }
}
