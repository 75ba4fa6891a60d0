//! HTTP load on the demo's JSON API, for `scripts/faults.sh` and `scripts/soak.sh` (they
//! measure; the fault suite in `demo/tests/faults` asserts).
//!
//! ```text
//! load faults ADDR CLIENTS SECONDS MARKS LABEL   # increments; prints one markdown row
//! load soak   ADDR CLIENTS SECONDS PAUSE_MS      # login, reads, writes, logout; prints totals
//! ```
//!
//! `faults`: each client logs in, then increments its counter in a loop, one connection per
//! request, recording when each request started and ended and how it was answered. At the
//! end it reads MARKS (lines `down EPOCH_MS` and `up EPOCH_MS`, written by the script when it
//! broke Redis and when Redis was back) and prints: the error window (start of the first
//! failed request to the end of the last), the time from `up` to the end of the first 200 that
//! started after it on a client that had a failed request (on a Cluster, the clients whose
//! sessions live on healthy primaries may never fail), the p50/p99 latency of failed requests,
//! and the counts. A failed request is any answer but 200; an unclean one is a dropped
//! connection or a status other than a 503 with a JSON body (e.g. an empty 500).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a request may take before it counts as dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a request was answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Ok,
    /// 503 with a JSON body: the demo's clean "unavailable".
    Unavailable,
    /// 401: the session is gone (soak: Redis lost it in a restart).
    LoggedOut,
    /// Any other status, or a 503 without JSON.
    BadStatus,
    /// Connection refused, reset or closed before an answer, or no answer in time.
    Transport,
}

struct Answer {
    class: Class,
    cookie: Option<String>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One request on a new connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Answer {
    let transport = Answer {
        class: Class::Transport,
        cookie: None,
    };
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(cookie) = cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(head.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        Some(raw)
    };
    let Ok(Some(raw)) = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await else {
        return transport;
    };
    let raw = String::from_utf8_lossy(&raw);
    let Some((head, _)) = raw.split_once("\r\n\r\n") else {
        return transport;
    };
    let Some(status) = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return transport;
    };
    let lower = head.to_ascii_lowercase();
    let json = lower.contains("content-type: application/json");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.split(';').next())
        .map(|v| v.trim().to_owned());
    let class = match status {
        200 | 303 => Class::Ok,
        503 if json => Class::Unavailable,
        401 if json => Class::LoggedOut,
        _ => Class::BadStatus,
    };
    Answer { class, cookie }
}

/// Logs `user` in; retries (Redis may be restarting) until `deadline`.
async fn login(addr: SocketAddr, user: &str, deadline: Instant) -> Option<String> {
    let body = format!(r#"{{"user":"{user}"}}"#);
    while Instant::now() < deadline {
        let answer = request(addr, "POST", "/api/login", None, &body).await;
        if answer.class == Class::Ok {
            if let Some(cookie) = answer.cookie {
                return Some(cookie);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// One request's record: start and end (µs since the epoch), its class and its client.
type Record = (u64, u64, Class, usize);

async fn faults(
    addr: SocketAddr,
    clients: usize,
    seconds: u64,
    marks: &str,
    label: &str,
) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let records = records.clone();
        tasks.push(tokio::spawn(async move {
            let Some(cookie) = login(addr, &format!("faults-{n}"), end).await else {
                return;
            };
            let mut mine = Vec::new();
            while Instant::now() < end {
                let start = now_us();
                let answer = request(addr, "POST", "/api/increment", Some(&cookie), "").await;
                mine.push((start, now_us(), answer.class, n));
                if answer.class != Class::Ok {
                    // Failing fast answers at once: do not spin the shared cores.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            if let Ok(mut all) = records.lock() {
                all.extend(mine);
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    let text = std::fs::read_to_string(marks).map_err(|e| format!("{marks}: {e}"))?;
    let mark = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            .map(|ms| ms * 1000)
    };
    let up = mark("up").ok_or("no `up` mark")?;
    let records = records.lock().map_err(|e| e.to_string())?.clone();
    println!("{}", row(label, &records, up));
    Ok(())
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// The markdown row of one run.
fn row(label: &str, records: &[Record], up: u64) -> String {
    let failed: Vec<&Record> = records.iter().filter(|r| r.2 != Class::Ok).collect();
    let unclean = failed
        .iter()
        .filter(|r| matches!(r.2, Class::BadStatus | Class::Transport))
        .count();
    let ok = records.len() - failed.len();
    let window = match (
        failed.iter().map(|r| r.0).min(),
        failed.iter().map(|r| r.1).max(),
    ) {
        (Some(first), Some(last)) => ms(last - first),
        _ => "-".into(),
    };
    let failing: std::collections::HashSet<usize> = failed.iter().map(|r| r.3).collect();
    let recovered = records
        .iter()
        .filter(|r| r.2 == Class::Ok && r.0 >= up && failing.contains(&r.3))
        .map(|r| r.1)
        .min()
        .map_or_else(
            || if failing.is_empty() { "-" } else { "never" }.into(),
            |t| ms(t - up),
        );
    let mut latencies: Vec<u64> = failed.iter().map(|r| r.1 - r.0).collect();
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return "-".into();
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        ms(latencies[i])
    };
    format!(
        "| {label} | {window} | {recovered} | {} | {} | {} | {unclean} | {ok} |",
        pct(0.50),
        pct(0.99),
        failed.len(),
    )
}

/// Totals of a soak, by class.
#[derive(Default)]
struct Totals {
    counts: [u64; 5],
    logins: u64,
}

async fn soak(
    addr: SocketAddr,
    clients: usize,
    seconds: u64,
    pause: Duration,
) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let totals = Arc::new(Mutex::new(Totals::default()));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let totals = totals.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts = [0u64; 5];
            let mut logins = 0;
            let mut cycle = 0u64;
            'cycles: while Instant::now() < end {
                cycle += 1;
                let Some(cookie) = login(addr, &format!("soak-{n}-{cycle}"), end).await else {
                    break;
                };
                logins += 1;
                for step in 0..20u32 {
                    let (method, path) = if step.is_multiple_of(2) {
                        ("GET", "/api/me")
                    } else {
                        ("POST", "/api/increment")
                    };
                    let answer = request(addr, method, path, Some(&cookie), "").await;
                    counts[answer.class as usize] += 1;
                    tokio::time::sleep(pause).await;
                    if answer.class == Class::LoggedOut || Instant::now() >= end {
                        continue 'cycles;
                    }
                }
                // One session in ten is abandoned: it ends by the server-side idle timeout.
                if !cycle.is_multiple_of(10) {
                    let answer = request(addr, "POST", "/api/logout", Some(&cookie), "").await;
                    counts[answer.class as usize] += 1;
                }
            }
            if let Ok(mut t) = totals.lock() {
                for (sum, c) in t.counts.iter_mut().zip(counts) {
                    *sum += c;
                }
                t.logins += logins;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    let t = totals.lock().map_err(|e| e.to_string())?;
    let [ok, unavailable, logged_out, bad, transport] = t.counts;
    println!(
        "logins={} ok={ok} unavailable_503={unavailable} logged_out_401={logged_out} bad_status={bad} transport={transport}",
        t.logins
    );
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("argument {i}: expected {what}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = arg(&args, 2, "ADDR")?;
    let clients: usize = arg(&args, 3, "CLIENTS")?;
    let seconds: u64 = arg(&args, 4, "SECONDS")?;
    match args.get(1).map(String::as_str) {
        Some("faults") => {
            let marks: String = arg(&args, 5, "MARKS")?;
            let label: String = arg(&args, 6, "LABEL")?;
            faults(addr, clients, seconds, &marks, &label).await
        }
        Some("soak") => {
            let pause: u64 = arg(&args, 5, "PAUSE_MS")?;
            soak(addr, clients, seconds, Duration::from_millis(pause)).await
        }
        _ => Err("usage: load faults ADDR CLIENTS SECONDS MARKS LABEL | load soak ADDR CLIENTS SECONDS PAUSE_MS".into()),
    }
}
