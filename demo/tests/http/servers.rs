//! Starts the axum demo or the actix example on port 0 against a fresh redis-server or a fresh
//! 3-primary Redis Cluster.

use std::net::SocketAddr;

use redis_harness::{parse_command_calls, RedisCluster, RedisServer, Reply};
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Axum,
    Actix,
}

#[derive(Clone, Copy, Debug)]
pub enum Topology {
    Standalone,
    Cluster,
}

/// The Redis side of a test, one server or a cluster, with what the cases inspect.
pub enum Redis {
    Server(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    fn url(&self) -> String {
        match self {
            Redis::Server(s) => s.url(),
            Redis::Cluster(c) => c.url(),
        }
    }

    /// Every key matching `pattern` (on a cluster: on every primary).
    pub fn scan_keys(&self, pattern: &str) -> Vec<String> {
        match self {
            Redis::Server(s) => s.scan_keys(pattern),
            Redis::Cluster(c) => c
                .primary_ports()
                .into_iter()
                .flat_map(|port| scan_node(c, port, pattern))
                .collect(),
        }
    }

    /// The session keys (the demo's prefix, per-user indexes left out).
    pub fn session_keys(&self) -> Vec<String> {
        let mut keys = self.scan_keys("sess:*");
        keys.retain(|k| !is_index(k));
        keys
    }

    /// A command about `key` (on a cluster: sent to the key's primary).
    pub fn cmd(&self, key: &str, args: &[&str]) -> Reply {
        match self {
            Redis::Server(s) => s.cmd(args),
            Redis::Cluster(c) => c.cmd(c.primary_for_key(key), args),
        }
    }

    /// `CONFIG RESETSTAT` everywhere.
    pub fn reset_stats(&self) {
        match self {
            Redis::Server(s) => {
                s.cmd(&["CONFIG", "RESETSTAT"]);
            }
            Redis::Cluster(c) => {
                for port in c.ports() {
                    c.cmd(port, &["CONFIG", "RESETSTAT"]);
                }
            }
        }
    }

    /// Data commands served since the last reset, summed over nodes; the test's own, the
    /// replicas' (`REPLCONF ACK` every second) and the
    /// cluster client's topology and health commands are left out.
    pub fn data_command_calls(&self) -> Vec<(String, u64)> {
        let infos: Vec<String> = match self {
            Redis::Server(s) => vec![s.cmd(&["INFO", "commandstats"]).text().unwrap_or_default()],
            // Primaries only: replicas count the replicated writes again.
            Redis::Cluster(c) => c
                .primary_ports()
                .into_iter()
                .map(|p| {
                    c.cmd(p, &["INFO", "commandstats"])
                        .text()
                        .unwrap_or_default()
                })
                .collect(),
        };
        let mut calls: Vec<(String, u64)> = Vec::new();
        for (name, n) in infos.iter().flat_map(|i| parse_command_calls(i)) {
            let control = [
                "config", "info", "cluster", "ping", "hello", "client", "readonly", "replconf",
                "psync", "sync",
            ];
            if control.iter().any(|c| name.starts_with(c)) {
                continue;
            }
            match calls.iter_mut().find(|(c, _)| *c == name) {
                Some((_, total)) => *total += n,
                None => calls.push((name, n)),
            }
        }
        calls
    }

    /// The single server, for outage tests.
    pub fn server(&mut self) -> &mut RedisServer {
        match self {
            Redis::Server(s) => s,
            Redis::Cluster(_) => panic!("this case needs a single server"),
        }
    }
}

/// A per-user index key (`prefix + "~user~" + hash`), not a session.
pub fn is_index(key: &str) -> bool {
    key.contains("~user~")
}

fn scan_node(cluster: &RedisCluster, port: u16, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let reply = cluster.cmd(port, &["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]);
        let Reply::Array(Some(parts)) = reply else {
            panic!("SCAN reply: {reply:?}")
        };
        cursor = parts[0].text().unwrap();
        if let Reply::Array(Some(page)) = &parts[1] {
            keys.extend(page.iter().filter_map(Reply::text));
        }
        if cursor == "0" {
            return keys;
        }
    }
}

/// A running app and its Redis; both stop on drop.
pub struct Running {
    pub addr: SocketAddr,
    pub redis: Redis,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(kind: Kind, topology: Topology, idle_timeout: u64) -> Running {
    start_with_hook(kind, topology, idle_timeout, None).await
}

/// [`start`], with the demo's increment hook (see `demo::IncrementHook`).
pub async fn start_with_hook(
    kind: Kind,
    topology: Topology,
    idle_timeout: u64,
    hook: Option<demo::IncrementHook>,
) -> Running {
    start_with(kind, topology, |config| {
        config.idle_timeout = idle_timeout;
        config.increment_hook = hook;
    })
    .await
}

/// The app on a fresh Redis, with `configure` applied to the test configuration.
pub async fn start_with(
    kind: Kind,
    topology: Topology,
    configure: impl FnOnce(&mut demo::Config),
) -> Running {
    let redis = match topology {
        Topology::Standalone => Redis::Server(RedisServer::start()),
        Topology::Cluster => Redis::Cluster(
            tokio::task::spawn_blocking(RedisCluster::start)
                .await
                .unwrap(),
        ),
    };
    let mut config = demo::Config::new(Some(redis.url()));
    configure(&mut config);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let addr = spawn_app(kind, config, shutdown).await;
    Running {
        addr,
        redis,
        stop: Some(stop),
    }
}

/// The app `kind` with `config` on port 0, until `shutdown` completes.
pub async fn spawn_app(
    kind: Kind,
    config: demo::Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> SocketAddr {
    match kind {
        Kind::Axum => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { demo::run(listener, config, shutdown).await.unwrap() });
            addr
        }
        Kind::Actix => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            std::thread::spawn(move || {
                actix_web::rt::System::new()
                    .block_on(demo::run_actix(listener, config, shutdown))
                    .unwrap();
            });
            addr
        }
    }
}
