//! Starts the axum demo or the actix example on port 0 against a fresh redis-server.

use std::net::SocketAddr;

use redis_harness::RedisServer;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Axum,
    Actix,
}

/// A running app and its Redis; both stop on drop.
pub struct Running {
    pub addr: SocketAddr,
    pub redis: RedisServer,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(kind: Kind, idle_timeout: u64) -> Running {
    let redis = RedisServer::start();
    let mut config = demo::Config::new(Some(redis.url()));
    config.idle_timeout = idle_timeout;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let addr = match kind {
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
    };
    Running {
        addr,
        redis,
        stop: Some(stop),
    }
}

/// Calls per command, without the test's own CONFIG and INFO.
pub fn command_calls(redis: &RedisServer) -> Vec<(String, u64)> {
    redis
        .command_calls()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("config") && name != "info")
        .collect()
}
