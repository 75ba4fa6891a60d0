//! Running the binary and seeding sessions with raw commands.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use redis_harness::{RedisServer, Reply};

/// The result of one run of the CLI.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Asserts success with nothing on stderr (no progress output when it is not a terminal)
    /// and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        assert_eq!(self.stderr, "", "nothing extra on a non-terminal stderr");
        self.stdout
    }

    /// Asserts exactly one stderr line, `error: ...`, and no panic; returns it.
    #[track_caller]
    pub fn one_error(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr: {}", self.stderr);
        assert!(lines[0].starts_with("error: "), "stderr: {}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        lines[0]
    }
}

fn command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redis-sessions"));
    cmd.env_remove("REDIS_URL")
        .env_remove("REDIS_TLS_CA_FILE")
        .env_remove("REDIS_TLS_CERT_FILE")
        .env_remove("REDIS_TLS_KEY_FILE")
        .arg("--url")
        .arg(url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the CLI against `url` with stdin closed (`/dev/null`, not a terminal).
pub fn run_url(url: &str, args: &[&str]) -> Run {
    let output = command(url, args).stdin(Stdio::null()).output().unwrap();
    Run::from(output)
}

/// Runs the CLI against `url` with stdin closed and these environment variables set.
pub fn run_url_env(url: &str, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = command(url, args);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    Run::from(cmd.stdin(Stdio::null()).output().unwrap())
}

/// Runs the CLI against `server` with stdin closed.
pub fn run(server: &RedisServer, args: &[&str]) -> Run {
    run_url(&server.url(), args)
}

/// Runs the CLI against `server` with `input` on stdin.
pub fn run_stdin(server: &RedisServer, args: &[&str], input: &str) -> Run {
    run_stdin_url(&server.url(), args, input)
}

/// Runs the CLI against `url` with `input` on stdin.
pub fn run_stdin_url(url: &str, args: &[&str], input: &str) -> Run {
    let mut child = command(url, args).stdin(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// A valid session id, distinct per `n`.
pub fn id(n: u32) -> String {
    format!("session-{n:0>16}")
}

/// `SET key value [PX ttl_ms]`.
pub fn put(server: &RedisServer, key: &str, value: &str, ttl_ms: Option<u64>) {
    let reply = match ttl_ms {
        Some(ms) => server.cmd(&["SET", key, value, "PX", &ms.to_string()]),
        None => server.cmd(&["SET", key, value]),
    };
    assert_eq!(reply, Reply::Status("OK".into()));
}

/// The value at `key`, if any.
pub fn get(server: &RedisServer, key: &str) -> Option<String> {
    match server.cmd(&["GET", key]) {
        Reply::Bulk(Some(bytes)) => Some(String::from_utf8(bytes).unwrap()),
        Reply::Bulk(None) => None,
        other => panic!("GET {key}: {other:?}"),
    }
}

/// `PTTL key`.
pub fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.cmd(&["PTTL", key]).int().unwrap()
}

/// Every key of the database, sorted.
pub fn keys(server: &RedisServer) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let Reply::Array(Some(reply)) = server.cmd(&["SCAN", &cursor, "COUNT", "1000"]) else {
            panic!("SCAN failed");
        };
        cursor = reply[0].text().unwrap();
        let Reply::Array(Some(page)) = &reply[1] else {
            panic!("SCAN page");
        };
        keys.extend(page.iter().map(|k| k.text().unwrap()));
        if cursor == "0" {
            break;
        }
    }
    keys.sort();
    keys
}

/// Parses JSON.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Sorted lines.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Runs the CLI against `url` with stdin and stderr on a pseudo-terminal (util-linux
/// `script`); returns the exit code and what the terminal showed.
pub fn run_on_terminal(url: &str, args: &[&str]) -> (i32, String) {
    let mut line = format!("'{}' --url '{url}'", env!("CARGO_BIN_EXE_redis-sessions"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let output = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("util-linux `script` (Debian: bsdutils) runs the CLI on a terminal");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap(), screen)
}

/// The CLI against `url` with a pipe on stdin that stays open until the test closes it.
pub fn spawn_with_stdin(url: &str, args: &[&str]) -> std::process::Child {
    command(url, args).stdin(Stdio::piped()).spawn().unwrap()
}

/// Waits for `child` to exit, for at most `secs` seconds (then kills it and fails).
pub fn wait_at_most(mut child: std::process::Child, secs: u64) -> Run {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the CLI did not exit within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().unwrap())
}

/// Polls until `key` exists, for at most `secs` seconds; whether it appeared.
pub fn appears(server: &RedisServer, key: &str, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if get(server, key).is_some() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
