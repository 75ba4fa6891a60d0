//! A Sentinel group: one primary, one replica and three sentinels (quorum 2), killed on drop;
//! plain, or with TLS everywhere ([`RedisSentinelGroup::start_tls`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::{Connection, Reply};
use crate::server::{binary, free_port, temp_dir, HarnessError, RedisServer, TlsMode};

/// The monitored primary's name.
const MASTER_NAME: &str = "mymaster";
/// Time allowed for the group to agree, or for a failover to complete.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One `redis-server --sentinel` process.
#[derive(Debug)]
struct SentinelProcess {
    child: Option<Child>,
    /// The plain port: the harness's own commands.
    port: u16,
    /// The TLS port of a TLS group's sentinel: what clients and the other sentinels use.
    tls_port: Option<u16>,
    dir: PathBuf,
}

/// The `sentinel.conf` lines of a TLS sentinel: it serves TLS, requires client certificates,
/// and talks TLS to the servers and the other sentinels (`tls-replication yes`), announcing
/// its TLS port.
fn sentinel_tls_conf(tls_port: u16) -> String {
    let certs = crate::TlsCerts::get();
    format!(
        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
         tls-auth-clients yes\ntls-replication yes\n",
        certs.path_str("server.crt"),
        certs.path_str("server.key"),
        certs.path_str("ca.crt"),
    )
}

impl SentinelProcess {
    fn start(primary_port: u16, tls: bool) -> Result<SentinelProcess, HarnessError> {
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let tls_port = if tls { Some(free_port()?) } else { None };
            let dir = temp_dir("sentinel")?;
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n{tls}\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir = dir.display(),
                    tls = tls_port.map(sentinel_tls_conf).unwrap_or_default(),
                ),
            )?;
            let child = Command::new(binary())
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => HarnessError::Missing(e.to_string()),
                    _ => HarnessError::Io(e),
                })?;
            let mut sentinel = SentinelProcess {
                child: Some(child),
                port,
                tls_port,
                dir,
            };
            match sentinel.wait_ready() {
                Ok(()) => return Ok(sentinel),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady("no attempt".into())))
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        crate::server::wait_for_pong(self.port, &mut self.child, |status| {
            format!("sentinel exited: {status}")
        })
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One primary, one replica and three sentinels (quorum 2, `down-after-milliseconds` 1000,
/// `failover-timeout` 5000).
///
/// `start` returns only when every sentinel names the primary, knows the replica (link up) and
/// the two other sentinels.
///
/// A TLS group ([`RedisSentinelGroup::start_tls`]) uses TLS for everything a client or the
/// group itself uses: the sentinels and servers serve TLS with the shared
/// [`TlsCerts`](crate::TlsCerts) and require a client certificate signed by its CA
/// (`tls-auth-clients yes`), replication and the sentinels' links to the servers and to each
/// other are TLS (`tls-replication yes`), and the sentinels name the servers by their TLS
/// ports. Every process also keeps a plain loopback port for the harness's own commands
/// ([`RedisSentinelGroup::cmd`], [`RedisSentinelGroup::command_port`]).
#[derive(Debug)]
pub struct RedisSentinelGroup {
    // Sentinels first: they are dropped (killed) before the servers they watch.
    sentinels: Vec<SentinelProcess>,
    servers: Vec<RedisServer>,
    tls: bool,
}

fn array(reply: Reply) -> Vec<Reply> {
    match reply {
        Reply::Array(Some(items)) => items,
        _ => Vec::new(),
    }
}

/// A flat `[name, value, ...]` reply as (name, value) text pairs.
fn fields(reply: Reply) -> Vec<(String, String)> {
    array(reply)
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.text()?, kv.get(1)?.text()?)))
        .collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn ask(port: u16, args: &[&str]) -> Option<Reply> {
    Connection::open(port).ok()?.command(args).ok()
}

impl RedisSentinelGroup {
    /// Starts the group, panicking (with an install hint when `redis-server` is missing) if that
    /// is impossible.
    ///
    /// # Panics
    /// When the group cannot be started or does not agree within 60 s.
    pub fn start() -> RedisSentinelGroup {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the group.
    ///
    /// # Errors
    /// `redis-server` is missing, or the group did not agree within 60 s.
    pub fn try_start() -> Result<RedisSentinelGroup, HarnessError> {
        Self::try_start_mode(false)
    }

    /// Starts a TLS group (see [`RedisSentinelGroup`]), panicking if that is impossible.
    ///
    /// # Panics
    /// When `redis-server` or `openssl` is missing, or the group does not agree within 60 s.
    pub fn start_tls() -> RedisSentinelGroup {
        Self::try_start_tls().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a TLS group.
    ///
    /// # Errors
    /// As [`RedisSentinelGroup::try_start`].
    pub fn try_start_tls() -> Result<RedisSentinelGroup, HarnessError> {
        Self::try_start_mode(true)
    }

    fn try_start_mode(tls: bool) -> Result<RedisSentinelGroup, HarnessError> {
        let start = || {
            if tls {
                RedisServer::try_start_tls(TlsMode::RequireClientCert, &["tls-replication", "yes"])
            } else {
                RedisServer::try_start(&[])
            }
        };
        let primary = start()?;
        let replica = start()?;
        let announced = if tls {
            primary.tls_port()
        } else {
            primary.port()
        };
        let port = announced.to_string();
        let reply = replica.cmd(&["REPLICAOF", "127.0.0.1", &port]);
        if reply != Reply::Status("OK".into()) {
            return Err(HarnessError::NotReady(format!("REPLICAOF: {reply:?}")));
        }
        let mut sentinels = Vec::with_capacity(3);
        for _ in 0..3 {
            sentinels.push(SentinelProcess::start(announced, tls)?);
        }
        let group = RedisSentinelGroup {
            sentinels,
            servers: vec![primary, replica],
            tls,
        };
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !group.agreed() {
            if Instant::now() > deadline {
                return Err(HarnessError::NotReady(
                    "sentinels did not agree on the primary, replica and each other".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(group)
    }

    /// Every sentinel names the same running primary, sees its replica linked and healthy, and
    /// knows the other two sentinels.
    fn agreed(&self) -> bool {
        let Some(primary) = self.sentinel_primary(self.sentinels[0].port) else {
            return false;
        };
        let replica_port = self
            .servers
            .iter()
            .map(|s| self.announced(s))
            .find(|p| *p != primary);
        self.sentinels.iter().all(|s| {
            let same = self.sentinel_primary(s.port) == Some(primary);
            let replicas = ask(s.port, &["SENTINEL", "REPLICAS", MASTER_NAME])
                .map(array)
                .unwrap_or_default();
            let replica_ok = replicas.into_iter().map(fields).any(|r| {
                field(&r, "port").and_then(|p| p.parse().ok()) == replica_port
                    && field(&r, "master-link-status") == Some("ok")
                    && field(&r, "flags") == Some("slave")
            });
            let others = ask(s.port, &["SENTINEL", "SENTINELS", MASTER_NAME])
                .map(array)
                .unwrap_or_default()
                .len();
            same && replica_ok && others == 2
        }) && self.role(primary).as_deref() == Some("master")
    }

    fn role(&self, port: u16) -> Option<String> {
        array(ask(self.command_port(port), &["ROLE"])?)
            .first()?
            .text()
    }

    /// The port the sentinels name `server` by: its TLS port in a TLS group.
    fn announced(&self, server: &RedisServer) -> u16 {
        if self.tls {
            server.tls_port()
        } else {
            server.port()
        }
    }

    /// The plain port for the harness's own commands of the data server the sentinels name by
    /// `port` (its TLS port in a TLS group); `port` itself when no server of the group has it
    /// as its TLS port.
    pub fn command_port(&self, port: u16) -> u16 {
        self.servers
            .iter()
            .find(|s| self.tls && s.tls_port() == port)
            .map_or(port, RedisServer::port)
    }

    /// Whether the group was started with [`RedisSentinelGroup::start_tls`].
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    fn sentinel_primary(&self, sentinel_port: u16) -> Option<u16> {
        let reply = ask(
            sentinel_port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        )?;
        array(reply).get(1)?.text()?.parse().ok()
    }

    /// The monitored primary's name (`mymaster`).
    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// `redis://127.0.0.1:<port>` of each sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The sentinels' TLS ports (a TLS group's; empty for a plain one).
    pub fn sentinel_tls_ports(&self) -> Vec<u16> {
        self.sentinels.iter().filter_map(|s| s.tls_port).collect()
    }

    /// `rediss+sentinel://127.0.0.1:t1,127.0.0.1:t2,127.0.0.1:t3/mymaster`: the sentinels' TLS
    /// ports, without the `tls_*` options a client needs for the test CA and certificate.
    ///
    /// # Panics
    /// When the group is not a TLS group.
    pub fn tls_url(&self) -> String {
        assert!(self.tls, "not a TLS sentinel group");
        let hosts: Vec<String> = self
            .sentinel_tls_ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("rediss+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster` (the plain ports, also
    /// of a TLS group's sentinels).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The primary's port as the first answering sentinel reports it (its TLS port in a TLS
    /// group).
    ///
    /// # Panics
    /// When no sentinel answers.
    pub fn primary_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|s| self.sentinel_primary(s.port))
            .unwrap_or_else(|| panic!("no sentinel reports a primary"))
    }

    /// Runs one raw command on the data server at `port` (primary or replica; its plain or,
    /// in a TLS group, its TLS port), through its plain port.
    ///
    /// # Panics
    /// When it cannot be reached.
    pub fn cmd(&self, port: u16, args: &[&str]) -> Reply {
        let port = self.command_port(port);
        Connection::open(port)
            .and_then(|mut c| c.command(args))
            .unwrap_or_else(|e| panic!("command {:?} on {port}: {e}", args.first()))
    }

    /// Kills the data server at `port` (primary or replica; plain or TLS port), as a crash
    /// would.
    pub fn kill(&mut self, port: u16) {
        let port = self.command_port(port);
        if let Some(server) = self.servers.iter_mut().find(|s| s.port() == port) {
            server.stop();
        }
    }

    /// `SENTINEL FAILOVER`, then waits until every sentinel reports the new primary and it
    /// answers `ROLE` as master. Returns the new primary's port.
    ///
    /// # Panics
    /// When the failover does not complete within 60 s.
    pub fn failover(&self) -> u16 {
        let old = self.primary_port();
        let reply = ask(
            self.sentinels[0].port,
            &["SENTINEL", "FAILOVER", MASTER_NAME],
        );
        assert_eq!(reply, Some(Reply::Status("OK".into())), "SENTINEL FAILOVER");
        self.wait_new_primary(old)
    }

    /// Waits until every sentinel reports a primary other than `old` and it answers `ROLE` as
    /// master (after [`RedisSentinelGroup::kill`] of the primary, for example). Returns its port.
    ///
    /// # Panics
    /// When that does not happen within 60 s.
    pub fn wait_new_primary(&self, old: u16) -> u16 {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let views: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(|s| self.sentinel_primary(s.port))
                .collect();
            if let Some(Some(new)) = views.first().copied() {
                if new != old
                    && views.iter().all(|v| *v == Some(new))
                    && self.role(new).as_deref() == Some("master")
                {
                    return new;
                }
            }
            assert!(
                Instant::now() < deadline,
                "failover did not complete within {SETTLE_TIMEOUT:?}: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
