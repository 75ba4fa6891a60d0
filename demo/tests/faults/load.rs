//! HTTP load against the demo: clients that log in once, then increment their counter in a
//! loop, and record every answer. A dropped connection or an unclean status is recorded as
//! bad, never retried.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer: status, body, and the session cookie it set (`name=value`).
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub cookie: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One request on a new connection; `Err` when the connection failed or the answer is not
/// HTTP (a dropped connection).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<&str>,
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.split(';').next())
        .map(|v| v.trim().to_owned());
    // The demo's bodies are small JSON: a chunked body is one chunk.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n").nth(1).unwrap_or("").to_owned()
    } else {
        body.to_owned()
    };
    Ok(Answer {
        status,
        body,
        cookie,
    })
}

#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    unavailable: AtomicU64,
    bad: Mutex<Vec<String>>,
}

/// Clients incrementing their counters until [`Load::finish`].
pub struct Load {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// Each client's last acknowledged counter.
    acked: Arc<Vec<AtomicI64>>,
    cookies: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Logs `clients` users in (Redis must be up), then starts their loops.
    pub async fn start(addr: SocketAddr, clients: usize) -> Load {
        let mut cookies = Vec::new();
        for n in 0..clients {
            let body = format!(r#"{{"user":"load-{n}"}}"#);
            let login = request(addr, "POST", "/api/login", None, Some(&body))
                .await
                .unwrap();
            assert_eq!(login.status, 200, "login: {}", login.body);
            cookies.push(login.cookie.expect("a session cookie"));
        }
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new((0..clients).map(|_| AtomicI64::new(0)).collect::<Vec<_>>());
        let tasks = cookies
            .iter()
            .cloned()
            .enumerate()
            .map(|(n, cookie)| {
                let (stats, stop, acked) = (stats.clone(), stop.clone(), acked.clone());
                tokio::spawn(async move {
                    while !stop.load(SeqCst) {
                        match request(addr, "POST", "/api/increment", Some(&cookie), None).await {
                            Ok(a) if a.status == 200 => {
                                let counter = a.json()["counter"].as_i64().unwrap_or(-1);
                                acked[n].store(counter, SeqCst);
                                stats.ok.fetch_add(1, SeqCst);
                            }
                            Ok(a) if a.status == 503 && a.json()["error"].is_string() => {
                                stats.unavailable.fetch_add(1, SeqCst);
                                // A failing request is answered at once while failing fast:
                                // yield so the loop does not spin the test's cores.
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                            Ok(a) => stats
                                .bad
                                .lock()
                                .unwrap()
                                .push(format!("status {}: {}", a.status, a.body)),
                            Err(e) => stats.bad.lock().unwrap().push(format!("transport: {e}")),
                        }
                    }
                })
            })
            .collect();
        Load {
            addr,
            stats,
            stop,
            acked,
            cookies,
            tasks,
        }
    }

    /// Each client's last acknowledged counter, now.
    pub fn acked(&self) -> Vec<i64> {
        self.acked.iter().map(|a| a.load(SeqCst)).collect()
    }

    /// Waits until `more` requests more were acknowledged (panics after `patience`).
    pub async fn progress(&self, more: u64, what: &str, patience: Duration) {
        let target = self.stats.ok.load(SeqCst) + more;
        self.wait(what, patience, |s| s.ok.load(SeqCst) >= target)
            .await;
    }

    /// Waits until `more` requests more were answered 503.
    pub async fn failing(&self, more: u64, what: &str, patience: Duration) {
        let target = self.stats.unavailable.load(SeqCst) + more;
        self.wait(what, patience, |s| s.unavailable.load(SeqCst) >= target)
            .await;
    }

    async fn wait(&self, what: &str, patience: Duration, done: impl Fn(&Stats) -> bool) {
        let deadline = Instant::now() + patience;
        while !done(&self.stats) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {patience:?} ({} ok, {} unavailable, bad: {:?})",
                self.stats.ok.load(SeqCst),
                self.stats.unavailable.load(SeqCst),
                self.stats.bad.lock().unwrap().first()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the clients; asserts that every answer was a clean 200 or 503 and that each
    /// session's counter, read back, is at least `required` for its client.
    pub async fn finish(mut self, required: &[i64]) {
        self.stop.store(true, SeqCst);
        for task in self.tasks.drain(..) {
            task.await.unwrap();
        }
        let bad = self.stats.bad.lock().unwrap().clone();
        assert!(
            bad.is_empty(),
            "{} unclean answers: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
        for (n, cookie) in self.cookies.iter().enumerate() {
            let me = request(self.addr, "GET", "/api/me", Some(cookie), None)
                .await
                .unwrap();
            assert_eq!(me.status, 200, "client {n}'s session: {}", me.body);
            let counter = me.json()["counter"].as_i64().unwrap();
            assert!(
                counter >= required[n],
                "client {n}: counter {counter} < acknowledged {}",
                required[n]
            );
        }
    }
}
