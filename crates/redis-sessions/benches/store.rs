//! Store vs the raw redis-rs client on the same connection: `get`/`GET`, `set`/`SET PX`,
//! `touch`/`PEXPIRE`, at 1 and 64 concurrent tasks, with a ~150-byte session; and the admin
//! operations `length`, `ids`, `all`, `clear` over 10,000 and 100,000 sessions, with the round
//! trips each makes (`SCAN`/`MGET`/`UNLINK` calls from `INFO commandstats`, printed to stderr).
//!
//! With feature `cluster`, the same store operations also run on a 3-primary Redis Cluster
//! next to the standalone server, in groups `topology/tasks=N`.
//!
//! Run with `cargo bench -p redis-sessions --bench store` (starts its own redis-servers);
//! `-- tasks=`, `-- admin/` or (with `--features cluster`) `-- topology` runs one part.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark setup; criterion macros generate undocumented items"
)]

use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis_harness::RedisServer;
use redis_sessions::{RedisBackend, RedisStore, Session, SessionId};

const TTL: Duration = Duration::from_secs(3600);

fn sample() -> Session {
    let mut s = Session::new();
    s.insert("user_id", 4242).unwrap();
    s.insert("name", "Ada Lovelace").unwrap();
    s.insert("roles", ["admin", "editor", "viewer"]).unwrap();
    s.insert("counter", 17).unwrap();
    s.insert("csrf", "b7f3c1d9e2a84f6b9c0d1e2f3a4b5c6d")
        .unwrap();
    s
}

/// A private redis-server, a one-worker runtime, the raw connection and a store on it.
fn standalone() -> (
    RedisServer,
    tokio::runtime::Runtime,
    ConnectionManager,
    RedisStore<RedisBackend>,
) {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let backend = rt.block_on(RedisBackend::connect(&server.url())).unwrap();
    let conn: ConnectionManager = backend.connection().clone();
    let store = RedisStore::builder(backend).ttl(TTL).build();
    (server, rt, conn, store)
}

fn bench(c: &mut Criterion) {
    let (server, rt, conn, store) = standalone();
    let session = sample();
    let bytes = serde_json::to_vec(&session).unwrap();
    eprintln!("session payload: {} bytes", bytes.len());
    let ids: Vec<SessionId> = (0..64).map(|_| SessionId::generate().unwrap()).collect();
    let keys: Vec<String> = ids.iter().map(|id| store.keyspace().key(id)).collect();
    rt.block_on(async {
        for id in &ids {
            assert!(store.set(id, &session).await.unwrap().is_written());
        }
    });

    for tasks in [1usize, 64] {
        let mut group = c.benchmark_group(format!("tasks={tasks}"));
        group.throughput(Throughput::Elements(tasks as u64));
        let ids = &ids[..tasks];
        let keys = &keys[..tasks];

        group.bench_function(BenchmarkId::new("get", "store"), |b| {
            b.to_async(&rt).iter(|| {
                join_all(
                    ids.iter()
                        .map(|id| async { store.get(id).await.unwrap().unwrap() }),
                )
            })
        });
        group.bench_function(BenchmarkId::new("get", "raw"), |b| {
            b.to_async(&rt).iter(|| {
                join_all(keys.iter().map(|key| {
                    let mut conn = conn.clone();
                    async move {
                        let v: Vec<u8> = redis::cmd("GET")
                            .arg(key)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        serde_json::from_slice::<serde_json::Value>(&v).unwrap()
                    }
                }))
            })
        });
        group.bench_function(BenchmarkId::new("set", "store"), |b| {
            b.to_async(&rt).iter(|| {
                join_all(
                    ids.iter()
                        .map(|id| async { store.set(id, &session).await.unwrap() }),
                )
            })
        });
        group.bench_function(BenchmarkId::new("set", "raw"), |b| {
            b.to_async(&rt).iter(|| {
                join_all(keys.iter().map(|key| {
                    let mut conn = conn.clone();
                    let bytes = &bytes;
                    async move {
                        let _: () = redis::cmd("SET")
                            .arg(key)
                            .arg(bytes)
                            .arg("PX")
                            .arg(3_600_000)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    }
                }))
            })
        });
        group.bench_function(BenchmarkId::new("touch", "store"), |b| {
            b.to_async(&rt).iter(|| {
                join_all(
                    ids.iter()
                        .map(|id| async { store.touch(id, &session).await.unwrap() }),
                )
            })
        });
        group.bench_function(BenchmarkId::new("touch", "raw"), |b| {
            b.to_async(&rt).iter(|| {
                join_all(keys.iter().map(|key| {
                    let mut conn = conn.clone();
                    async move {
                        let _: bool = redis::cmd("PEXPIRE")
                            .arg(key)
                            .arg(3_600_000)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    }
                }))
            })
        });
        group.finish();
    }
    #[cfg(feature = "cluster")]
    topology::bench(c, &rt, &store, &ids);
    drop(server);
}

/// The store on a 3-primary cluster next to the store on one server.
#[cfg(feature = "cluster")]
mod topology {
    use super::*;
    use redis_harness::RedisCluster;
    use redis_sessions::{Backend, ClusterBackend};

    async fn round<B: Backend>(store: &RedisStore<B>, ids: &[SessionId], op: &str) {
        let session = sample();
        join_all(ids.iter().map(|id| {
            let session = &session;
            async move {
                match op {
                    "get" => assert!(store.get(id).await.unwrap().is_some()),
                    "set" => assert!(store.set(id, session).await.unwrap().is_written()),
                    _ => assert!(store.touch(id, session).await.unwrap().is_written()),
                }
            }
        }))
        .await;
    }

    pub fn bench(
        c: &mut Criterion,
        rt: &tokio::runtime::Runtime,
        standalone: &RedisStore<RedisBackend>,
        ids: &[SessionId],
    ) {
        let cluster = RedisCluster::start();
        let backend = rt
            .block_on(ClusterBackend::connect(&cluster.urls()))
            .unwrap();
        let clustered = RedisStore::builder(backend).ttl(TTL).build();
        rt.block_on(async {
            for id in ids {
                assert!(clustered.set(id, &sample()).await.unwrap().is_written());
            }
        });
        for tasks in [1usize, 64] {
            let mut group = c.benchmark_group(format!("topology/tasks={tasks}"));
            group.throughput(Throughput::Elements(tasks as u64));
            let ids = &ids[..tasks];
            for op in ["get", "set", "touch"] {
                group.bench_function(BenchmarkId::new(op, "standalone"), |b| {
                    b.to_async(rt).iter(|| round(standalone, ids, op))
                });
                group.bench_function(BenchmarkId::new(op, "cluster"), |b| {
                    b.to_async(rt).iter(|| round(&clustered, ids, op))
                });
            }
            group.finish();
        }
        drop(cluster);
    }
}

/// Writes `n` sessions under the store's prefix with pipelined `SET PX` (not timed).
async fn populate(conn: &ConnectionManager, keys: &[String], value: &[u8]) {
    let mut conn = conn.clone();
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(3_600_000)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }
}

/// `SCAN`, `MGET` and `UNLINK` calls so far.
fn round_trips(server: &RedisServer) -> [u64; 3] {
    ["scan", "mget", "unlink"].map(|c| server.calls_of(c))
}

fn admin(c: &mut Criterion) {
    let (server, rt, conn, store) = standalone();
    let value = serde_json::to_vec(&sample()).unwrap();

    for n in [10_000usize, 100_000] {
        let keys: Vec<String> = (0..n)
            .map(|_| store.keyspace().key(&SessionId::generate().unwrap()))
            .collect();
        rt.block_on(populate(&conn, &keys, &value));
        assert_eq!(rt.block_on(store.length()).unwrap(), n as u64);

        // Round trips of one call of each operation, from the server's own counters.
        let mut report = Vec::new();
        for op in ["length", "ids", "all", "clear"] {
            let before = round_trips(&server);
            rt.block_on(async {
                match op {
                    "length" => assert_eq!(store.length().await.unwrap(), n as u64),
                    "ids" => assert_eq!(store.ids().await.unwrap().len(), n),
                    "all" => assert_eq!(store.all().await.unwrap().len(), n),
                    _ => assert_eq!(store.clear().await.unwrap(), n as u64),
                }
            });
            let after = round_trips(&server);
            let [scan, mget, unlink] = [0, 1, 2].map(|i| after[i] - before[i]);
            report.push(format!(
                "admin n={n} {op}: {scan} SCAN + {mget} MGET + {unlink} UNLINK = {} round trips",
                scan + mget + unlink
            ));
        }
        rt.block_on(populate(&conn, &keys, &value));
        for line in &report {
            eprintln!("{line}");
        }

        let mut group = c.benchmark_group("admin");
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("length", n), |b| {
            b.to_async(&rt)
                .iter(|| async { store.length().await.unwrap() })
        });
        group.bench_function(BenchmarkId::new("ids", n), |b| {
            b.to_async(&rt)
                .iter(|| async { store.ids().await.unwrap() })
        });
        group.bench_function(BenchmarkId::new("all", n), |b| {
            b.to_async(&rt)
                .iter(|| async { store.all().await.unwrap() })
        });
        group.bench_function(BenchmarkId::new("clear", n), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (store, conn, keys, value) = (&store, &conn, &keys, &value);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        populate(conn, keys, value).await;
                        let start = Instant::now();
                        assert_eq!(store.clear().await.unwrap(), n as u64);
                        total += start.elapsed();
                    }
                    total
                }
            })
        });
        group.finish();
        rt.block_on(store.clear()).unwrap();
    }
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_group! {
    name = admin_benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = admin
}
criterion_main!(benches, admin_benches);
