//! Sentinel cases: the store follows a failover during a read/write loop and loses no session
//! whose write a replica acknowledged (`WAIT`) before the switch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_sessions::{RedisStore, SentinelBackend, SessionId};

use crate::support::{id, sentinel_backend as sentinel, session};

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

#[derive(Debug, Default)]
struct LoopStats {
    ok: u64,
    failed: u64,
    /// (id, value number) of writes a replica acknowledged before any switch.
    acknowledged: Vec<(SessionId, i64)>,
}

/// Writes and reads sessions until `stop`, for at most 60 s and 3,000 rounds.
fn spawn_load(
    store: RedisStore<SentinelBackend>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<LoopStats> {
    tokio::spawn(async move {
        let mut stats = LoopStats::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        for round in 0..3_000i64 {
            if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                break;
            }
            let new = id();
            let (generation, _) = store.backend().connection();
            match store.set(&new, &session(round)).await {
                Ok(_) => {
                    stats.ok += 1;
                    if acknowledged(store.backend(), generation).await {
                        stats.acknowledged.push((new.clone(), round));
                    }
                }
                Err(_) => stats.failed += 1,
            }
            match store.get(&new).await {
                Ok(_) => stats.ok += 1,
                Err(_) => stats.failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stats
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_sentinel_failover() {
    let (backend, group) = sentinel().await;
    let store = RedisStore::new(backend.clone());
    let old = group.primary_port();
    assert_eq!(backend.primary().1, old);

    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(store.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (group, new) = tokio::task::spawn_blocking(move || {
        let new = group.failover();
        (group, new)
    })
    .await
    .unwrap();
    assert_ne!(new, old);
    // The backend switches to the new primary by itself (+switch-master or an error).
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.primary().1 != new {
        assert!(
            Instant::now() < deadline,
            "backend still on {:?}",
            backend.primary()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let stats = load.await.unwrap();
    eprintln!(
        "SENTINEL FAILOVER during load: {} ops ok, {} failed, {} writes acknowledged by a replica",
        stats.ok,
        stats.failed,
        stats.acknowledged.len()
    );
    assert!(!stats.acknowledged.is_empty());

    // Nothing a replica acknowledged is lost, and the same store writes to the new primary.
    for (id, n) in &stats.acknowledged {
        assert_eq!(
            store.get(id).await.unwrap(),
            Some(session(*n)),
            "acknowledged write lost"
        );
    }
    let fresh = id();
    assert!(store.set(&fresh, &session(7)).await.unwrap().is_written());
    let on_new = group.cmd(new, &["EXISTS", &store.keyspace().key(&fresh)]);
    assert_eq!(on_new.int(), Some(1), "written to the new primary");
    assert!(store.length().await.unwrap() > stats.acknowledged.len() as u64);
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
    // Kill the primary: the sentinels notice (1 s) and promote the replica.
    let mut group = group;
    group.kill(old);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failed = 0u32;
    let recovered = loop {
        assert!(
            Instant::now() < deadline,
            "store did not recover; {failed} failed ops"
        );
        match store.get(&ids[0]).await {
            Ok(Some(_)) if backend.primary().1 != old => break backend.primary().1,
            Ok(_) => {}
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("killed sentinel primary: {failed} failed reads before recovery");
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
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(store.get(id).await.unwrap(), Some(session(n as i64)));
    }
    assert!(store.set(&id(), &session(1)).await.unwrap().is_written());
    drop(group);
}
