//! A lean WebDriver client: chromedriver's HTTP JSON API spoken through the suite's own HTTP
//! client, with headless Chromium (Debian's `chromium` and `chromium-driver`). Only the
//! commands the browser test needs: new session, navigate, find, type, click, text.
//!
//! `chromedriver` and each browser profile are RAII values: dropping them ends the WebDriver
//! session, kills the driver and removes the profile directory.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::client::Client;

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long the driver may take to answer its first `/status`, and a page to show what a
/// test waits for.
const DEADLINE: Duration = Duration::from_secs(30);

const HOW_TO_FIX: &str = "the browser test needs Debian's chromium and chromium-driver: \
    `apt-get update && apt-get install -y chromium chromium-driver` (bash scripts/test.sh does \
    it when they are missing), or set CHROMEDRIVER and CHROMIUM to their paths";

fn program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A running `chromedriver` on a free loopback port.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    chromium: PathBuf,
}

impl Driver {
    /// Starts chromedriver and waits until it listens; panics saying how to install
    /// it when it is missing or does not start.
    pub async fn start() -> Driver {
        let driver = program("CHROMEDRIVER", &["/usr/bin/chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found: {HOW_TO_FIX}"));
        let chromium = program(
            "CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        )
        .unwrap_or_else(|| panic!("chromium not found: {HOW_TO_FIX}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {HOW_TO_FIX}", driver.display()));
        let mut this = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            chromium,
        };
        // Wait, up to the deadline, until it listens (its stdout is block-buffered in a pipe,
        // so its "started" line cannot be waited for) or exits.
        let started = Instant::now();
        while tokio::net::TcpStream::connect(this.addr).await.is_err() {
            if let Some(status) = this.child.try_wait().unwrap() {
                panic!("chromedriver exited at start ({status}); {HOW_TO_FIX}");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "chromedriver did not listen within {DEADLINE:?}; {HOW_TO_FIX}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = Client::new(this.addr).get("/status").await;
        assert!(
            r.status == 200 && r.json()["value"]["ready"] == true,
            "chromedriver is not ready: {r:?}; {HOW_TO_FIX}"
        );
        this
    }

    /// A new browser with a profile of its own (a new empty `--user-data-dir`).
    pub async fn browser(&self) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "redis-sessions-browser-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": self.chromium, "args": args},
        }}});
        let mut http = Client::new(self.addr);
        let r = http.post("/session", Some(caps)).await;
        assert_eq!(
            r.status, 200,
            "chromedriver refused a new session: {r:?}; {HOW_TO_FIX}"
        );
        let id = r.json()["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId: {r:?}"))
            .to_owned();
        Browser { http, id, profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session: a headless Chromium with its own profile.
pub struct Browser {
    http: Client,
    id: String,
    profile: PathBuf,
}

impl Browser {
    async fn command(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        let r = self
            .http
            .send(method, &path, body.map(|b| b.to_string()))
            .await;
        assert_eq!(r.status, 200, "{method} {path}: {r:?}");
        r.json()["value"].clone()
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&mut self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The references of every element matching `css`.
    pub async fn find_all(&mut self, css: &str) -> Vec<String> {
        let found = self
            .command(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let elements = found.as_array().unwrap_or_else(|| panic!("{css}: {found}"));
        elements
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{css}: {found}"))
                    .to_owned()
            })
            .collect()
    }

    /// The one element matching `css`, waiting for it up to the deadline (a page that is
    /// still loading after a form's redirect).
    pub async fn find(&mut self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no {css} on the page: {}",
                self.source().await
            );
            tokio::task::yield_now().await;
        }
    }

    pub async fn type_into(&mut self, element: &str, text: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&mut self, element: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn text(&mut self, element: &str) -> String {
        let text = self
            .command("GET", &format!("/element/{element}/text"), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    pub async fn source(&mut self) -> String {
        let source = self.command("GET", "/source", None).await;
        source.as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the WebDriver session (closing Chromium) on a thread of its own: Drop cannot
        // await, and the test's runtime may be shutting down.
        let (mut http, id) = (self.http.clone(), self.id.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async { http.send("DELETE", &format!("/session/{id}"), None).await });
            }
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
