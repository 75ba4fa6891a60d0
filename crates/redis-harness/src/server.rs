use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::resp::{Connection, Reply};

/// How to get `redis-server` when it is missing.
pub(crate) const INSTALL_HINT: &str = "redis-server was not found on PATH. Install it with \
`apt-get update && apt-get install -y redis-server` (Debian/Ubuntu), or run `bash scripts/test.sh`, \
which installs it, or set REDIS_SERVER_BIN to its path";

/// Time allowed for a server to answer `PING` after it was spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a server could not be started.
#[derive(Debug)]
pub enum HarnessError {
    /// `redis-server` is not installed.
    Missing(String),
    /// It was spawned but never answered.
    NotReady(String),
    /// Anything else (I/O on the temp dir, ...).
    Io(std::io::Error),
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::Missing(why) => write!(f, "{INSTALL_HINT} ({why})"),
            HarnessError::NotReady(why) => write!(f, "redis-server did not become ready: {why}"),
            HarnessError::Io(e) => write!(f, "harness I/O error: {e}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl From<std::io::Error> for HarnessError {
    fn from(e: std::io::Error) -> Self {
        HarnessError::Io(e)
    }
}

/// A `redis-server` process on `127.0.0.1:<port>`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Extra `--option value` pairs, kept so `restart` starts the same server again.
    extra: Vec<String>,
    /// The TLS port beside the plain one (the harness's own commands use the plain port).
    tls_port: Option<u16>,
}

/// Which certificate a TLS server presents and whether it requires client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `server.crt` (valid for 127.0.0.1); client certificates optional.
    Default,
    /// As `Default`, and a client certificate signed by the CA is required (mutual TLS).
    RequireClientCert,
    /// `other-host.crt`: signed by the CA but valid for `redis.example.com` only.
    OtherHost,
}

pub(crate) fn binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A port that was free a moment ago (the OS picks it).
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn temp_dir(tag: &str) -> std::io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "redis-harness-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl RedisServer {
    /// Starts a standalone server, panicking with an install hint if that is impossible.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not start: the test cannot run without it.
    pub fn start() -> RedisServer {
        Self::try_start(&[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server with extra configuration, e.g. `&["maxmemory", "10mb"]`.
    ///
    /// # Errors
    /// [`HarnessError::Missing`] when `redis-server` is not installed, or it never answered.
    pub fn try_start(extra: &[&str]) -> Result<RedisServer, HarnessError> {
        let mut last = None;
        for _ in 0..5 {
            match Self::start_on(free_port()?, extra, "standalone") {
                Ok(server) => return Ok(server),
                Err(e @ HarnessError::Missing(_)) => return Err(e),
                // Most likely another process took the port between probe and bind: try again.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady("no attempt".into())))
    }

    /// Starts a server with a TLS port beside its plain one, with the process's [`TlsCerts`](crate::TlsCerts)
    /// (client certificates optional).
    ///
    /// # Panics
    /// When `redis-server` or `openssl` is missing, or the server does not start.
    pub fn start_tls() -> RedisServer {
        Self::start_tls_mode(TlsMode::Default)
    }

    /// Starts a TLS server in `mode` (see [`TlsMode`]).
    ///
    /// # Panics
    /// As [`RedisServer::start_tls`].
    pub fn start_tls_mode(mode: TlsMode) -> RedisServer {
        Self::try_start_tls(mode, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a TLS server in `mode` with extra configuration.
    ///
    /// # Errors
    /// As [`RedisServer::try_start`].
    pub fn try_start_tls(mode: TlsMode, extra: &[&str]) -> Result<RedisServer, HarnessError> {
        let mut args = tls_args(mode);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut last = None;
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port()?,
                dir: temp_dir("tls")?,
                extra: args.clone(),
                tls_port: Some(free_port()?),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e @ HarnessError::Missing(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady("no attempt".into())))
    }

    /// Starts a server on `port` with a TLS port beside it (TLS cluster nodes).
    pub(crate) fn start_on_tls(
        port: u16,
        tls_port: u16,
        extra: &[&str],
        tag: &str,
    ) -> Result<RedisServer, HarnessError> {
        let mut args = tls_args(TlsMode::Default);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut server = RedisServer {
            child: None,
            port,
            dir: temp_dir(tag)?,
            extra: args,
            tls_port: Some(tls_port),
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts a server on `port` (cluster nodes need ports they choose themselves).
    pub(crate) fn start_on(
        port: u16,
        extra: &[&str],
        tag: &str,
    ) -> Result<RedisServer, HarnessError> {
        let mut server = RedisServer {
            child: None,
            port,
            dir: temp_dir(tag)?,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls_port: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Whether the process is running (not stopped or killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's directory (its log, and its AOF or RDB files when persistence is on).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let mut cmd = Command::new(binary());
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        if let Some(tls_port) = self.tls_port {
            cmd.arg("--tls-port").arg(tls_port.to_string());
        }
        for pair in self.extra.chunks(2) {
            cmd.arg(format!("--{}", pair[0]));
            cmd.args(&pair[1..]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => HarnessError::Missing(e.to_string()),
                _ => HarnessError::Io(e),
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let dir = self.dir.clone();
        wait_for_pong(self.port, &mut self.child, |status| {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            format!("exited with {status}: {tail}")
        })
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TLS port, for a server started with [`RedisServer::start_tls`].
    ///
    /// # Panics
    /// When the server has no TLS port.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
            .unwrap_or_else(|| panic!("the server on port {} has no TLS port", self.port))
    }

    /// `rediss://127.0.0.1:<tls port>`.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port())
    }

    /// A new plain connection for raw commands.
    ///
    /// # Panics
    /// When the server does not accept the connection.
    pub fn conn(&self) -> Connection {
        Connection::open(self.port).unwrap_or_else(|e| panic!("connect to port {}: {e}", self.port))
    }

    /// Runs one raw command on a new connection.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub fn cmd(&self, args: &[&str]) -> Reply {
        self.conn()
            .command(args)
            .unwrap_or_else(|e| panic!("command {:?}: {e}", args.first()))
    }

    /// Calls per command since start or `CONFIG RESETSTAT`, from `INFO commandstats`, e.g.
    /// `("getex", 1)`. Subcommands appear as `config|resetstat`.
    pub fn command_calls(&self) -> Vec<(String, u64)> {
        parse_command_calls(
            &self
                .cmd(&["INFO", "commandstats"])
                .text()
                .unwrap_or_default(),
        )
    }

    /// Calls of one command (see [`RedisServer::command_calls`]); 0 if never called.
    pub fn calls_of(&self, command: &str) -> u64 {
        self.command_calls()
            .into_iter()
            .find(|(name, _)| name == command)
            .map_or(0, |(_, n)| n)
    }

    /// Every key matching `pattern`, by `SCAN`.
    ///
    /// # Panics
    /// On a malformed reply.
    pub fn scan_keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut cursor = "0".to_owned();
        loop {
            let reply = self.cmd(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]);
            let Reply::Array(Some(parts)) = reply else {
                panic!("SCAN reply: {reply:?}")
            };
            cursor = parts.first().and_then(Reply::text).unwrap_or_default();
            if let Some(Reply::Array(Some(page))) = parts.get(1) {
                keys.extend(page.iter().filter_map(Reply::text));
            }
            if cursor == "0" || cursor.is_empty() {
                return keys;
            }
        }
    }

    /// Kills the server (as a crash would) and waits for it to exit. The data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The port is free once nothing accepts on it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port (empty, as after a crash without persistence).
    ///
    /// # Panics
    /// When it cannot start again.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("restart on port {}: {e}", self.port),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// The certificate options of a TLS server in `mode`.
fn tls_args(mode: TlsMode) -> Vec<String> {
    let certs = crate::TlsCerts::get();
    let (cert, key) = match mode {
        TlsMode::OtherHost => ("other-host.crt", "other-host.key"),
        _ => ("server.crt", "server.key"),
    };
    let auth = if mode == TlsMode::RequireClientCert {
        "yes"
    } else {
        "optional"
    };
    [
        "tls-cert-file",
        &certs.path_str(cert),
        "tls-key-file",
        &certs.path_str(key),
        "tls-ca-cert-file",
        &certs.path_str("ca.crt"),
        "tls-auth-clients",
        auth,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Waits until the process on `port` answers `PING` (up to [`READY_TIMEOUT`]). If the process
/// in `child` exits first, it is taken out and `exited` explains why.
pub(crate) fn wait_for_pong(
    port: u16,
    child: &mut Option<Child>,
    exited: impl FnOnce(std::process::ExitStatus) -> String,
) -> Result<(), HarnessError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            *child = None;
            return Err(HarnessError::NotReady(exited(status)));
        }
        if let Ok(mut conn) = Connection::open(port) {
            if matches!(conn.command(&["PING"]), Ok(Reply::Status(s)) if s == "PONG") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(HarnessError::NotReady(format!(
                "no PONG on port {port} within {READY_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Calls per command from the text of `INFO commandstats`.
pub fn parse_command_calls(info: &str) -> Vec<(String, u64)> {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
