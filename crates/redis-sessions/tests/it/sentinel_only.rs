//! Sentinel cases: the store follows a failover during a read/write loop and loses no session
//! whose write a replica acknowledged (`WAIT`) before the switch, nor any written after it; on
//! a plain group and on a TLS one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_sessions::{RedisStore, SentinelBackend, SessionId};

use crate::support::{self, id, sentinel_backend as sentinel, session};

/// Time allowed for a condition the test waits on; it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

/// `WAIT 1 1000` on the connection of generation `generation`, if that is still the one in use.
async fn acknowledged(backend: &SentinelBackend, generation: u64) -> bool {
    let (now, mut conn) = backend.connection();
    if now != generation {
        return false;
    }
    let replicas: redis::RedisResult<i64> = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query_async(&mut conn)
        .await;
    matches!(replicas, Ok(n) if n >= 1)
}

/// Where the failover stands, as the test observed it (not a time).
const BEFORE: u8 = 0;
/// `SENTINEL FAILOVER` was sent.
const DURING: u8 = 1;
/// Every sentinel names the new primary, it answers as master, and the backend uses it.
const AFTER: u8 = 2;

/// An acknowledged write of the load.
#[derive(Debug)]
struct Ack {
    id: SessionId,
    n: i64,
    /// A replica acknowledged it (`WAIT`) on the connection that wrote it.
    replicated: bool,
    /// The phase read before the write was sent.
    sent_in: u8,
}

/// Writes, `WAIT`s and reads sessions until stopped, counting what succeeds.
struct Load {
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    worker: tokio::task::JoinHandle<Vec<Ack>>,
}

impl Load {
    fn start(store: &RedisStore<SentinelBackend>) -> Load {
        let phase = Arc::new(AtomicU8::new(BEFORE));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let worker = {
            let store = store.clone();
            let (phase, stop) = (phase.clone(), stop.clone());
            let (ok, failed) = (ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                let mut n = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let new = id();
                    let sent_in = phase.load(Ordering::SeqCst);
                    let (generation, _) = store.backend().connection();
                    match store.set(&new, &session(n)).await {
                        Ok(o) if o.is_written() => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            let replicated = acknowledged(store.backend(), generation).await;
                            acks.push(Ack {
                                id: new.clone(),
                                n,
                                replicated,
                                sent_in,
                            });
                        }
                        Ok(o) => panic!("a new id was not written: {o:?}"),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    match store.get(&new).await {
                        Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                        Err(_) => failed.fetch_add(1, Ordering::SeqCst),
                    };
                    // Pacing only: every step of the test waits on the counters, never on this.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                acks
            })
        };
        Load {
            phase,
            stop,
            ok,
            failed,
            worker,
        }
    }

    /// Waits until `more` further operations have succeeded.
    async fn progress(&self, more: u64, what: &str) {
        support::progress(&self.ok, &self.failed, more, what, PATIENCE).await;
    }

    async fn finish(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::SeqCst);
        self.worker.await.unwrap()
    }
}

/// Waits until the backend uses the primary on `port` (it switches by itself, on
/// `+switch-master` or an error).
async fn until_backend_on(backend: &SentinelBackend, port: u16) {
    let deadline = Instant::now() + PATIENCE;
    while backend.primary().1 != port {
        assert!(
            Instant::now() < deadline,
            "backend still on {:?} within {PATIENCE:?}, not on {port}",
            backend.primary()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_sentinel_failover() {
    let (backend, group) = sentinel().await;
    follows_a_failover(backend, group).await;
}

/// The same over TLS: the sentinels are asked, and the new primary connected to, over TLS with
/// a client certificate; the group replicates and fails over over TLS.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_failover_of_a_tls_sentinel_group() {
    let (backend, group) = support::sentinel_tls_backend().await;
    assert!(group.is_tls());
    assert_eq!(
        backend.primary().1,
        group.primary_port(),
        "on the TLS port the sentinels name"
    );
    // The `+switch-master` watchers subscribe on each sentinel's TLS port.
    for (plain, tls) in group
        .sentinel_ports()
        .into_iter()
        .zip(group.sentinel_tls_ports())
    {
        support::eventually(
            PATIENCE,
            "a subscription on a sentinel's TLS port",
            || async move { tokio::task::block_in_place(|| subscribed_on(plain, tls)) },
        )
        .await;
    }
    follows_a_failover(backend, group).await;
}

/// Whether the sentinel whose plain port is `plain` has a subscribed client that came in on
/// its port `port` (`CLIENT LIST`'s `laddr` and `sub`).
#[cfg(feature = "tls")]
fn subscribed_on(plain: u16, port: u16) -> bool {
    let list = redis_harness::Connection::open(plain)
        .and_then(|mut c| c.command(&["CLIENT", "LIST"]))
        .ok()
        .and_then(|r| r.text())
        .unwrap_or_default();
    list.lines().any(|client| {
        let fields: Vec<&str> = client.split(' ').collect();
        fields.contains(&format!("laddr=127.0.0.1:{port}").as_str()) && fields.contains(&"sub=1")
    })
}

async fn follows_a_failover(backend: SentinelBackend, group: redis_harness::RedisSentinelGroup) {
    let store = RedisStore::new(backend.clone());
    let old = group.primary_port();
    assert_eq!(backend.primary().1, old);

    let load = Load::start(&store);
    load.progress(50, "before the failover").await;
    // The failover window: from `SENTINEL FAILOVER` until every sentinel names the new primary
    // and it answers as master (the harness polls for that).
    let (phase, ok) = (load.phase.clone(), load.ok.clone());
    let (group, new, during) = tokio::task::spawn_blocking(move || {
        phase.store(DURING, Ordering::SeqCst);
        let started = ok.load(Ordering::SeqCst);
        let new = group.failover();
        (group, new, ok.load(Ordering::SeqCst) - started)
    })
    .await
    .unwrap();
    assert_ne!(new, old);
    until_backend_on(&backend, new).await;
    load.phase.store(AFTER, Ordering::SeqCst);
    load.progress(50, "after the switch").await;
    let failed = load.failed.load(Ordering::SeqCst);
    let acks = load.finish().await;
    let replicated = acks.iter().filter(|a| a.replicated).count();
    eprintln!(
        "SENTINEL FAILOVER during load: {during} ops ok during the failover, {failed} failed, \
         {} writes acknowledged, {replicated} of them by a replica",
        acks.len()
    );
    assert!(during > 0, "no operation succeeded while the failover ran");
    assert!(replicated > 0);

    // Replication is asynchronous and the old primary takes writes until it is demoted: a
    // write it acknowledged that no replica had acknowledged may be lost. Every write a
    // replica acknowledged (`WAIT`) survives, and so does every write sent once the backend
    // was on the new primary.
    let mut required = 0;
    for ack in acks.iter().filter(|a| a.replicated || a.sent_in == AFTER) {
        assert_eq!(
            store.get(&ack.id).await.unwrap(),
            Some(session(ack.n)),
            "acknowledged write lost (replicated: {}, sent after the switch: {})",
            ack.replicated,
            ack.sent_in == AFTER
        );
        required += 1;
    }
    assert!(acks.iter().any(|a| a.sent_in == AFTER));
    let fresh = id();
    assert!(store.set(&fresh, &session(7)).await.unwrap().is_written());
    let on_new = group.cmd(new, &["EXISTS", &store.keyspace().key(&fresh)]);
    assert_eq!(on_new.int(), Some(1), "written to the new primary");
    assert!(store.length().await.unwrap() > required as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_and_the_store_recovers() {
    let (backend, group) = sentinel().await;
    let store = RedisStore::new(backend.clone());
    let ids: Vec<SessionId> = (0..50).map(|_| id()).collect();
    for (n, id) in ids.iter().enumerate() {
        assert!(store
            .set(id, &session(n as i64))
            .await
            .unwrap()
            .is_written());
    }
    let (generation, _) = backend.connection();
    assert!(
        acknowledged(&backend, generation).await,
        "replica acknowledged"
    );
    let old = group.primary_port();
    // Kill the primary: the sentinels notice (1 s) and promote the replica. Until then reads
    // fail; the store answers again once the backend follows the promotion.
    let mut group = group;
    group.kill(old);
    let deadline = Instant::now() + PATIENCE;
    let (mut failed, mut failed_while_old_named) = (0u32, 0u32);
    let recovered = loop {
        assert!(
            Instant::now() < deadline,
            "store did not recover within {PATIENCE:?}; {failed} failed reads"
        );
        match store.get(&ids[0]).await {
            Ok(Some(_)) if backend.primary().1 != old => break backend.primary().1,
            Ok(_) => {}
            Err(_) => {
                failed += 1;
                // The failover window, observed: the sentinels still name the dead primary.
                if tokio::task::block_in_place(|| group.primary_port()) == old {
                    failed_while_old_named += 1;
                }
            }
        }
        // Poll interval of this wait-for-recovery loop.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "killed sentinel primary: {failed} failed reads before recovery, \
         {failed_while_old_named} while the sentinels named the dead primary"
    );
    assert!(
        failed_while_old_named > 0,
        "no read ran (and failed) while the sentinels still named the killed primary"
    );
    let group = tokio::task::spawn_blocking(move || {
        let new = group.wait_new_primary(old);
        assert_eq!(
            recovered, new,
            "the store uses the primary the sentinels agree on"
        );
        group
    })
    .await
    .unwrap();
    // Every session a replica acknowledged before the kill survives.
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(store.get(id).await.unwrap(), Some(session(n as i64)));
    }
    assert!(store.set(&id(), &session(1)).await.unwrap().is_written());
    drop(group);
}
