//! Peak memory of a listing: `scan_memory length|ids` on `REDIS_URL`, under the prefix
//! `SCAN_PREFIX` (default `sess:`). Prints the sessions found and how much the process's peak
//! resident memory (`VmHWM`) grew during the call, in KiB. `bash scripts/scan-memory.sh` fills
//! a private Redis with 1,000,000 sessions and runs both.

use futures_util::StreamExt;
use redis_sessions::{RedisBackend, RedisStore};

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let what = std::env::args().nth(1).unwrap_or_else(|| "length".into());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = std::env::var("SCAN_PREFIX").unwrap_or_else(|_| "sess:".into());
    let store = RedisStore::builder(RedisBackend::connect(&url).await?)
        .prefix(prefix)
        .build();
    let before = status_kib("VmRSS:");
    let sessions = match what.as_str() {
        "length" => store.length().await?,
        "ids" => {
            let mut ids = std::pin::pin!(store.ids_stream());
            let mut n = 0u64;
            while let Some(id) = ids.next().await {
                id?;
                n += 1;
            }
            n
        }
        other => return Err(format!("unknown listing {other:?}: use length or ids").into()),
    };
    let peak = status_kib("VmHWM:");
    println!(
        "{what}: {sessions} sessions, peak resident memory grew by {} KiB",
        peak.saturating_sub(before)
    );
    Ok(())
}
