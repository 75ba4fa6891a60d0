//! A Sentinel group or a Redis Cluster on loopback ports (started by `crates/redis-harness`,
//! as the tests start them) that breaks on command, for `scripts/faults.sh`.
//!
//! ```text
//! topology sentinel [PREFIX]   # one primary, one replica, three sentinels (quorum 2)
//! topology cluster  [PREFIX]   # three primaries with a replica each
//! ```
//!
//! Once the topology is up it prints `url URL` (for the demo's `--redis-url`) and `ready`.
//! Then it reads commands from stdin, one a line, and answers on stdout:
//!
//! - `kill`: `kill -9` of a primary (Sentinel: the primary; Cluster: the primary that holds
//!   the most keys starting with PREFIX, default `sess:`, the demo's sessions). It answers
//!   `victim PORT KEYS TOTAL` (the victim's keys with PREFIX, and all of them), `down MS` just
//!   before the kill, `up MS` when the victim's replica first answers `ROLE` as `master`
//!   (polled every 10 ms; the promotion), and `settled MS` when the harness's own wait is
//!   satisfied (Sentinel: every sentinel names the new primary; Cluster: every running node
//!   reports the settled cluster). MS is milliseconds since the Unix epoch.
//! - `failover` (Sentinel only): the same with `SENTINEL FAILOVER` instead of the kill.
//! - `quit`, the end of stdin, SIGINT or SIGTERM: kills every process it started, removes their
//!   directories and exits. A failed command answers `error MESSAGE`.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_harness::{Connection, RedisCluster, RedisSentinelGroup, Reply};

/// How often the replica is asked whether it is the primary yet.
const POLL: Duration = Duration::from_millis(10);
/// Longest wait for the promotion (the harness's own waits allow 60 s).
const PROMOTION_TIMEOUT: Duration = Duration::from_secs(30);

enum Topology {
    Sentinel(RedisSentinelGroup),
    Cluster(RedisCluster),
}

/// What the main loop acts on.
enum Event {
    Line(String),
    /// The end of stdin, or a signal: tear down.
    Stop,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// One line on stdout, flushed at once (the script waits for it).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn command(port: u16, args: &[&str]) -> Result<Reply, String> {
    Connection::open(port)
        .and_then(|mut c| c.command(args))
        .map_err(|e| format!("{:?} on {port}: {e}", args.first()))
}

/// `role` of the `ROLE` reply of the server at `port` (`master`, `slave`), if it answers.
fn role(conn: &mut Option<Connection>, port: u16) -> Option<String> {
    if conn.is_none() {
        *conn = Connection::open(port).ok();
    }
    let reply = conn.as_mut()?.command(&["ROLE"]);
    match reply {
        Ok(Reply::Array(Some(items))) => items.first().and_then(Reply::text),
        _ => {
            *conn = None;
            None
        }
    }
}

/// Waits until the server at `port` answers `ROLE` as `master`.
fn wait_promoted(port: u16, stopping: &AtomicBool) -> Result<(), String> {
    let deadline = Instant::now() + PROMOTION_TIMEOUT;
    let mut conn = None;
    while role(&mut conn, port).as_deref() != Some("master") {
        if stopping.load(SeqCst) {
            return Err("stopping".into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{port} was not promoted within {PROMOTION_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The port of the first replica in the `INFO replication` of the primary at `port`.
fn replica_of(port: u16) -> Result<u16, String> {
    let info = command(port, &["INFO", "replication"])?
        .text()
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("slave0:"))
        .and_then(|fields| fields.split(',').find_map(|f| f.strip_prefix("port=")))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("the primary on {port} reports no replica: {info}"))
}

/// Keys starting with `prefix` on the server at `port`, by `SCAN` (only that server's).
fn count_keys(port: u16, prefix: &str) -> Result<usize, String> {
    let pattern = format!("{prefix}*");
    let mut cursor = "0".to_owned();
    let mut count = 0;
    loop {
        let reply = command(port, &["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"])?;
        let Reply::Array(Some(parts)) = reply else {
            return Err(format!("SCAN on {port}: {reply:?}"));
        };
        cursor = parts.first().and_then(Reply::text).unwrap_or_default();
        if let Some(Reply::Array(Some(page))) = parts.get(1) {
            count += page.len();
        }
        if cursor == "0" || cursor.is_empty() {
            return Ok(count);
        }
    }
}

/// Breaks the topology (`kill` or, on Sentinel, `failover`) and reports each step.
fn fault(
    topology: &mut Topology,
    how: &str,
    prefix: &str,
    stopping: &AtomicBool,
) -> Result<(), String> {
    match topology {
        Topology::Sentinel(group) => {
            let primary = group.primary_port();
            let replica = replica_of(primary)?;
            let keys = count_keys(primary, prefix)?;
            say(&format!("victim {primary} {keys} {keys}"));
            say(&format!("down {}", now_ms()));
            match how {
                "kill" => group.kill(primary),
                "failover" => {
                    let reply = command(
                        group.sentinel_ports()[0],
                        &["SENTINEL", "FAILOVER", group.master_name()],
                    )?;
                    if reply != Reply::Status("OK".into()) {
                        return Err(format!("SENTINEL FAILOVER: {reply:?}"));
                    }
                }
                _ => return Err(format!("unknown fault {how:?}")),
            }
            wait_promoted(replica, stopping)?;
            say(&format!("up {}", now_ms()));
            let new = group.wait_new_primary(primary);
            if new != replica {
                return Err(format!("the sentinels promoted {new}, not {replica}"));
            }
        }
        Topology::Cluster(cluster) => {
            if how != "kill" {
                return Err(format!("unknown fault {how:?} on a cluster"));
            }
            let mut held = Vec::new();
            for port in cluster.primary_ports() {
                held.push((count_keys(port, prefix)?, port));
            }
            let total: usize = held.iter().map(|(n, _)| n).sum();
            // The most keys; the lowest port among equals.
            let (keys, victim) = held
                .iter()
                .copied()
                .max_by_key(|&(n, port)| (n, std::cmp::Reverse(port)))
                .ok_or("the cluster has no primary")?;
            let replica = cluster.replica_of(victim);
            say(&format!("victim {victim} {keys} {total}"));
            say(&format!("down {}", now_ms()));
            cluster.kill(victim);
            wait_promoted(replica, stopping)?;
            say(&format!("up {}", now_ms()));
            cluster.wait_primary(replica);
        }
    }
    say(&format!("settled {}", now_ms()));
    Ok(())
}

/// Sends [`Event::Stop`] on SIGINT or SIGTERM.
fn watch_signals(events: mpsc::Sender<Event>, stopping: Arc<AtomicBool>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Installed before the topology starts, so no signal finds the default action.
    let (mut int, mut term) = runtime
        .block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        stopping.store(true, SeqCst);
        let _ = events.send(Event::Stop);
    });
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let prefix = args.get(2).cloned().unwrap_or_else(|| "sess:".into());
    let (events, received) = mpsc::channel();
    let stopping = Arc::new(AtomicBool::new(false));
    watch_signals(events.clone(), stopping.clone())?;
    let mut topology = match args.get(1).map(String::as_str) {
        Some("sentinel") => Topology::Sentinel(
            RedisSentinelGroup::try_start().map_err(|e| format!("sentinel group: {e}"))?,
        ),
        Some("cluster") => {
            Topology::Cluster(RedisCluster::try_start().map_err(|e| format!("cluster: {e}"))?)
        }
        _ => return Err("usage: topology sentinel|cluster [PREFIX]".into()),
    };
    // A signal during the start: the topology is dropped (killed) here.
    if stopping.load(SeqCst) {
        return Ok(());
    }
    let url = match &topology {
        Topology::Sentinel(group) => group.url(),
        Topology::Cluster(cluster) => cluster.url(),
    };
    say(&format!("url {url}"));
    say("ready");
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if events.send(Event::Line(line)).is_err() {
                return;
            }
        }
        let _ = events.send(Event::Stop);
    });
    while let Ok(Event::Line(line)) = received.recv() {
        match line.trim() {
            "" => {}
            "quit" => break,
            how => {
                if let Err(e) = fault(&mut topology, how, &prefix, &stopping) {
                    say(&format!("error {e}"));
                }
            }
        }
        if stopping.load(SeqCst) {
            break;
        }
    }
    // Dropping the topology kills its processes and removes their directories.
    drop(topology);
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("topology: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
