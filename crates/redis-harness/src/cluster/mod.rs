//! A Redis Cluster of 3 primaries and 3 replicas on loopback ports, killed on drop.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod faults;

use crate::resp::{Connection, Reply};
use crate::server::{free_port, HarnessError, RedisServer};

/// Default node timeout: a dead primary is failed over after about this long.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for the cluster to form, or to settle after a failover.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Cluster bus ports are the node port + 10,000, so node ports stay below this.
const MAX_PORT: u16 = 55_535;

/// A primary as the cluster reports it in `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's id.
    pub id: String,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Whether it is a primary (else a replica).
    pub primary: bool,
    /// For a replica, the id of its primary.
    pub primary_id: Option<String>,
    /// Slot ranges it serves (primaries only).
    pub slots: Vec<(u16, u16)>,
}

/// Three primaries with one replica each, `cluster-node-timeout` 2 s (or as chosen).
///
/// `start` returns only when every node reports `cluster_state:ok`, all 16,384 slots are
/// covered, and every replica is attached to its primary.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// `--tls-cluster yes` and friends for a TLS cluster's nodes.
const TLS_CLUSTER: [&str; 4] = ["tls-cluster", "yes", "tls-replication", "yes"];

fn port_pair_free(port: u16) -> bool {
    port < MAX_PORT
        && TcpListener::bind(("127.0.0.1", port)).is_ok()
        && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
}

/// `n` distinct ports whose bus port (+10,000) is free too.
fn cluster_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    let mut ports = Vec::with_capacity(n);
    for _ in 0..2_000 {
        if ports.len() == n {
            break;
        }
        let port = free_port()?;
        if !ports.contains(&port) && port_pair_free(port) {
            ports.push(port);
        }
    }
    if ports.len() < n {
        return Err(HarnessError::NotReady(
            "no free port pairs for the cluster".into(),
        ));
    }
    Ok(ports)
}

fn cli_binary() -> String {
    std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".to_owned())
}

/// Runs `redis-cli` with `args`, killed after `limit`.
pub(crate) fn run_cli(args: &[String], limit: Duration) -> Result<String, HarnessError> {
    let mut child = Command::new(cli_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HarnessError::Missing(format!("redis-cli: {e}")),
            _ => HarnessError::Io(e),
        })?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            if !status.success() {
                return Err(HarnessError::NotReady(format!(
                    "redis-cli {status}: {text}"
                )));
            }
            return Ok(text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HarnessError::NotReady(format!(
                "redis-cli did not finish within {limit:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses `CLUSTER NODES`, skipping failed and address-less nodes.
fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let (id, addr, flags, primary_id) = (
                fields.first()?,
                fields.get(1)?,
                fields.get(2)?,
                fields.get(3)?,
            );
            if flags.contains("fail") || flags.contains("noaddr") || flags.contains("handshake") {
                return None;
            }
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let primary = flags.contains("master");
            let slots = fields[8.min(fields.len())..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(ClusterNode {
                id: (*id).to_owned(),
                port,
                primary,
                primary_id: (!primary && *primary_id != "-").then(|| (*primary_id).to_owned()),
                slots,
            })
        })
        .collect()
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

impl RedisCluster {
    /// Starts the cluster, panicking (with an install hint when binaries are missing) if that is
    /// impossible.
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is missing or the cluster does not form.
    pub fn start() -> RedisCluster {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the cluster with another `cluster-node-timeout` (how long a node may be silent
    /// before it is considered failed; a killed primary is replaced about a second after that).
    ///
    /// # Panics
    /// As [`RedisCluster::start`].
    pub fn start_with_node_timeout(timeout: Duration) -> RedisCluster {
        Self::try_start_with(timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the cluster.
    ///
    /// # Errors
    /// A binary is missing, or the cluster did not form within 60 s.
    pub fn try_start() -> Result<RedisCluster, HarnessError> {
        Self::try_start_with(NODE_TIMEOUT)
    }

    /// Starts a cluster whose nodes also listen on TLS ports, with TLS between the nodes
    /// (`tls-cluster`, `tls-replication`); the harness's own commands use the plain ports.
    ///
    /// # Panics
    /// As [`RedisCluster::start`], or when `openssl` is missing.
    pub fn start_tls() -> RedisCluster {
        Self::try_start_mode(NODE_TIMEOUT, true).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_with(node_timeout: Duration) -> Result<RedisCluster, HarnessError> {
        Self::try_start_mode(node_timeout, false)
    }

    fn try_start_mode(node_timeout: Duration, tls: bool) -> Result<RedisCluster, HarnessError> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start_once(node_timeout, tls) {
                Ok(cluster) => return Ok(cluster),
                Err(e @ HarnessError::Missing(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady("no attempt".into())))
    }

    fn try_start_once(node_timeout: Duration, tls: bool) -> Result<RedisCluster, HarnessError> {
        // With TLS the cluster bus is the TLS port + 10,000.
        let all = cluster_ports(if tls { 12 } else { 6 })?;
        let (ports, tls_ports) = all.split_at(6);
        let mut nodes = Vec::with_capacity(6);
        let node_timeout = node_timeout.as_millis().to_string();
        let options = [
            "cluster-enabled",
            "yes",
            "cluster-node-timeout",
            &node_timeout,
            "cluster-allow-replica-migration",
            "no",
        ];
        for (i, port) in ports.iter().enumerate() {
            nodes.push(match tls_ports.get(i) {
                Some(&tls_port) => {
                    let options = [&options[..], &TLS_CLUSTER[..]].concat();
                    RedisServer::start_on_tls(*port, tls_port, &options, "cluster-tls")?
                }
                None => RedisServer::start_on(*port, &options, "cluster")?,
            });
        }
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        run_cli(&args, SETTLE_TIMEOUT)?;
        let cluster = RedisCluster { nodes };
        cluster.wait_settled(6)?;
        Ok(cluster)
    }

    /// Waits until every running node says `cluster_state:ok` with all slots covered and sees the
    /// same primaries, and each of `replicas` expected replicas has its link up.
    fn wait_settled(&self, expected_nodes: usize) -> Result<(), HarnessError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            if self.settled(expected_nodes) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::NotReady(format!(
                    "cluster did not settle within {SETTLE_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn settled(&self, expected_nodes: usize) -> bool {
        let mut views = Vec::new();
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let Some(info) = Self::text(node.port(), &["CLUSTER", "INFO"]) else {
                return false;
            };
            let ok = info_field(&info, "cluster_state").as_deref() == Some("ok")
                && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384");
            let Some(text) = Self::text(node.port(), &["CLUSTER", "NODES"]) else {
                return false;
            };
            let nodes = parse_nodes(&text);
            let mut primaries: Vec<u16> = nodes
                .iter()
                .filter(|n| n.primary && !n.slots.is_empty())
                .map(|n| n.port)
                .collect();
            primaries.sort_unstable();
            let Some(repl) = Self::text(node.port(), &["INFO", "replication"]) else {
                return false;
            };
            let linked = match info_field(&repl, "role").as_deref() {
                Some("slave") => info_field(&repl, "master_link_status").as_deref() == Some("up"),
                Some("master") => true,
                _ => false,
            };
            if !ok || !linked || nodes.len() < expected_nodes {
                return false;
            }
            views.push(primaries);
        }
        views.windows(2).all(|w| w[0] == w[1]) && views.first().is_some_and(|v| v.len() == 3)
    }

    fn text(port: u16, args: &[&str]) -> Option<String> {
        Connection::open(port).ok()?.command(args).ok()?.text()
    }

    /// Every node's port, primaries and replicas, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// Seed URLs of every node (`redis://127.0.0.1:<port>`).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// `rediss+cluster://127.0.0.1:t1,...` with every node's TLS port as a seed, for a
    /// cluster started with [`RedisCluster::start_tls`].
    ///
    /// # Panics
    /// When the cluster has no TLS ports.
    pub fn tls_url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.tls_port()))
            .collect();
        format!("rediss+cluster://{}", seeds.join(","))
    }

    /// The cluster's view of its nodes, from a running node.
    ///
    /// # Panics
    /// When no node answers.
    pub fn topology(&self) -> Vec<ClusterNode> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .find_map(|n| Self::text(n.port(), &["CLUSTER", "NODES"]))
            .map(|t| parse_nodes(&t))
            .unwrap_or_else(|| panic!("no cluster node answers CLUSTER NODES"))
    }

    /// Ports of the primaries that serve slots.
    pub fn primary_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .topology()
            .into_iter()
            .filter(|n| n.primary && !n.slots.is_empty())
            .map(|n| n.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The hash slot of `key`.
    ///
    /// # Panics
    /// When no node answers.
    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.primary_ports()[0];
        let n = self.cmd(port, &["CLUSTER", "KEYSLOT", key]).int();
        n.and_then(|n| u16::try_from(n).ok())
            .unwrap_or_else(|| panic!("CLUSTER KEYSLOT failed"))
    }

    /// The port of the primary serving `slot`.
    ///
    /// # Panics
    /// When no primary serves it.
    pub fn primary_for_slot(&self, slot: u16) -> u16 {
        self.topology()
            .into_iter()
            .find(|n| n.primary && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// The port of the primary serving `key`.
    pub fn primary_for_key(&self, key: &str) -> u16 {
        self.primary_for_slot(self.slot_of(key))
    }

    /// The port of a replica of the primary on `primary_port`.
    ///
    /// # Panics
    /// When it has none.
    pub fn replica_of(&self, primary_port: u16) -> u16 {
        let topology = self.topology();
        let id = topology
            .iter()
            .find(|n| n.port == primary_port)
            .map(|n| n.id.clone())
            .unwrap_or_else(|| panic!("no node on port {primary_port}"));
        topology
            .iter()
            .find(|n| n.primary_id.as_deref() == Some(id.as_str()))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("primary {primary_port} has no replica"))
    }

    /// Runs one raw command on the node at `port` (no redirections are followed).
    ///
    /// # Panics
    /// When the node cannot be reached.
    pub fn cmd(&self, port: u16, args: &[&str]) -> Reply {
        Connection::open(port)
            .and_then(|mut c| c.command(args))
            .unwrap_or_else(|e| panic!("command {:?} on {port}: {e}", args.first()))
    }

    /// Every key matching `pattern` on the primaries that serve slots, by `SCAN` on each (raw
    /// connections, independent of any client under test).
    ///
    /// # Panics
    /// When a primary cannot be reached or a reply is malformed.
    pub fn scan_keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for port in self.primary_ports() {
            let node = self
                .nodes
                .iter()
                .find(|n| n.port() == port)
                .unwrap_or_else(|| panic!("no node on port {port}"));
            keys.extend(node.scan_keys(pattern));
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::parse_nodes;

    #[test]
    fn parses_cluster_nodes() {
        let text = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                    b2 127.0.0.1:7001@17001 slave a1 0 0 1 connected\n\
                    c3 127.0.0.1:7002@17002 master,fail - 0 0 2 connected 5461-10922\n";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 2);
        assert!(nodes[0].primary && nodes[0].slots == vec![(0, 5460)]);
        assert_eq!(nodes[1].primary_id.as_deref(), Some("a1"));
    }
}
