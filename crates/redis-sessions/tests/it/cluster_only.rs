//! Redis Cluster cases: a scan over every primary at scale, multi-key commands that span slots,
//! and failovers (manual and a killed primary) during a read/write loop.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis_harness::RedisCluster;
use redis_sessions::{
    Backend, ClusterBackend, ClusterConfig, KeyTtl, RedisStore, SessionId, SetMode, StoredId,
};

use crate::support::{self, cluster_backend as cluster, id, session};

/// `WAIT 1 1000` on the primary at `port`: how many replicas acknowledged every earlier write
/// sent on the backend's connection to that node.
async fn wait_replicated(backend: &ClusterBackend, port: u16) -> i64 {
    let mut conn = backend.connection().clone();
    let reply = conn
        .route_command(
            redis::cmd("WAIT").arg(1).arg(1000).clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: "127.0.0.1".into(),
                port,
            }),
        )
        .await
        .unwrap();
    redis::from_redis_value(reply).unwrap()
}

/// A cluster and a backend whose reply timeout leaves room for `WAIT 1 1000`.
async fn cluster_for_failover() -> (ClusterBackend, RedisCluster) {
    let (_, cluster) = cluster().await;
    connect_for_failover(cluster).await
}

async fn connect_for_failover(cluster: RedisCluster) -> (ClusterBackend, RedisCluster) {
    (connect_urls(&cluster.urls()).await, cluster)
}

/// Writes `n` sessions and waits until the replica of every primary that has one has them.
async fn write_replicated(
    cluster: &RedisCluster,
    store: &RedisStore<ClusterBackend>,
    n: usize,
) -> Vec<SessionId> {
    let ids: Vec<SessionId> = (0..n).map(|_| id()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(store
            .set(id, &session(i as i64))
            .await
            .unwrap()
            .is_written());
    }
    let topology = cluster.topology();
    for primary in topology.iter().filter(|n| n.primary && !n.slots.is_empty()) {
        // A shard whose replica was killed (and not restarted yet) has none to wait for.
        let replicas = topology
            .iter()
            .filter(|n| n.primary_id.as_ref() == Some(&primary.id))
            .count();
        if replicas > 0 {
            let port = primary.port;
            assert_eq!(wait_replicated(store.backend(), port).await, 1, "{port}");
        }
    }
    ids
}

/// Where a failover stands, as the test observed it (not a time).
const BEFORE: u8 = 0;
/// The failover was started (`CLUSTER FAILOVER` sent, or the primary killed).
const DURING: u8 = 1;
/// Every node reports the new primary (the harness saw the cluster settled).
const AFTER: u8 = 2;

/// An acknowledged write of the load.
#[derive(Debug, Clone)]
struct Ack {
    id: SessionId,
    n: i64,
    /// The failover phase read before the write was sent: `AFTER` means the write was sent
    /// when every node already named the new primary.
    sent_in: u8,
}

/// Reads and writes from a few concurrent workers until stopped; counts what succeeds, so the
/// test can wait for progress and see what ran during the failover.
struct Load {
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<Vec<Ack>>>,
}

const WORKERS: usize = 3;
/// Time allowed for a condition the test waits on (the load to make progress, the store to
/// answer again): generous, since it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

impl Load {
    fn start(store: &RedisStore<ClusterBackend>, known: &[SessionId]) -> Load {
        let phase = Arc::new(AtomicU8::new(BEFORE));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let workers = (0..WORKERS)
            .map(|w| {
                let (store, known) = (store.clone(), known.to_vec());
                let (phase, stop) = (phase.clone(), stop.clone());
                let (ok, failed) = (ok.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut acks = Vec::new();
                    let mut round = w;
                    while !stop.load(Ordering::SeqCst) {
                        match store.get(&known[round % known.len()]).await {
                            Ok(Some(_)) => ok.fetch_add(1, Ordering::SeqCst),
                            Ok(None) => panic!("a replicated session vanished during the failover"),
                            Err(_) => failed.fetch_add(1, Ordering::SeqCst),
                        };
                        let new = id();
                        let n = (1_000_000 + round) as i64;
                        let sent_in = phase.load(Ordering::SeqCst);
                        match store.set(&new, &session(n)).await {
                            Ok(o) if o.is_written() => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                acks.push(Ack {
                                    id: new,
                                    n,
                                    sent_in,
                                });
                            }
                            Ok(o) => panic!("a new id was not written: {o:?}"),
                            Err(_) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        round += WORKERS;
                        // Pacing only (a loaded 2-core machine): every step of the test waits on
                        // the counters, never on this.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    acks
                })
            })
            .collect();
        Load {
            phase,
            stop,
            ok,
            failed,
            workers,
        }
    }

    /// Waits until `more` further operations have succeeded.
    async fn progress(&self, more: u64, what: &str) {
        support::progress(&self.ok, &self.failed, more, what, PATIENCE).await;
    }

    /// Stops the workers; returns every acknowledged write.
    async fn finish(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::SeqCst);
        let mut acks = Vec::new();
        for worker in self.workers {
            acks.extend(worker.await.unwrap());
        }
        acks
    }
}

/// Runs a failover (`run`, blocking: it returns when every node reports the new primary) while
/// `load` runs; returns the cluster and how many operations succeeded between the start of the
/// failover and its end, as the harness observed them.
async fn fail_over_under_load(
    load: &Load,
    cluster: RedisCluster,
    run: impl FnOnce(&mut RedisCluster) + Send + 'static,
) -> (RedisCluster, u64) {
    let (phase, ok) = (load.phase.clone(), load.ok.clone());
    let (cluster, during) = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        phase.store(DURING, Ordering::SeqCst);
        let started = ok.load(Ordering::SeqCst);
        run(&mut cluster);
        let during = ok.load(Ordering::SeqCst) - started;
        phase.store(AFTER, Ordering::SeqCst);
        (cluster, during)
    })
    .await
    .unwrap();
    (cluster, during)
}

/// Waits until `get` succeeds again (bounded).
async fn until_recovered(store: &RedisStore<ClusterBackend>, id: &SessionId) {
    let deadline = Instant::now() + PATIENCE;
    while store.get(id).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "store did not answer within {PATIENCE:?} after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_all_readable(store: &RedisStore<ClusterBackend>, ids: &[SessionId]) {
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.get(id).await.unwrap(),
            Some(session(i as i64)),
            "replicated session {i} lost"
        );
    }
}

/// Session keys on the primaries, counted by the harness (not by the store under test).
fn stored_sessions(cluster: &RedisCluster, store: &RedisStore<ClusterBackend>) -> usize {
    let keyspace = store.keyspace();
    cluster
        .scan_keys(keyspace.scan_pattern())
        .iter()
        .filter(|k| keyspace.id_of(k.as_bytes()).is_some())
        .count()
}

/// One `clear` deletes every session that exists, reports exactly that number, and leaves none.
async fn assert_exact_clear(cluster: &RedisCluster, store: &RedisStore<ClusterBackend>, ctx: &str) {
    let existing = stored_sessions(cluster, store);
    let deleted = store.clear().await.unwrap();
    let left = stored_sessions(cluster, store);
    assert_eq!(
        (deleted, left),
        (existing as u64, 0),
        "{ctx}: clear of {existing} sessions reported {deleted} deleted and left {left}"
    );
    assert_eq!(store.length().await.unwrap(), 0, "{ctx}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sessions_over_every_slot_and_node() {
    let (backend, cluster) = cluster().await;
    let store = RedisStore::new(backend.clone());
    let ids: Vec<SessionId> = (0..10_000).map(|_| id()).collect();
    for (c, chunk) in ids.chunks(500).enumerate() {
        let values: Vec<_> = (0..chunk.len())
            .map(|i| session((c * 500 + i) as i64))
            .collect();
        let writes = chunk.iter().zip(&values).map(|(id, s)| store.set(id, s));
        for outcome in futures_util::future::join_all(writes).await {
            assert!(outcome.unwrap().is_written());
        }
    }
    // Foreign keys under similar prefixes, spread over every node.
    let valid = "0123456789abcdefghij";
    let mut foreign = Vec::new();
    for n in 0..40 {
        foreign.push(format!("sess:admin:{n}"));
        foreign.push(format!("sess:{n}:{valid}"));
        foreign.push(format!("sessions:{n}{valid}"));
        foreign.push(format!("{{sess:}}{n}{valid}"));
    }
    for key in &foreign {
        assert!(backend
            .set(key, b"{}", None, SetMode::Always)
            .await
            .unwrap());
    }
    let foreign_nodes: HashSet<u16> = foreign
        .iter()
        .take(20)
        .map(|k| cluster.primary_for_key(k))
        .collect();
    assert_eq!(foreign_nodes.len(), 3, "foreign keys on every primary");
    for port in cluster.primary_ports() {
        let size = cluster.cmd(port, &["DBSIZE"]).int().unwrap();
        assert!(size > 3_000, "primary {port} holds only {size} keys");
    }

    assert_eq!(store.length().await.unwrap(), 10_000);
    let listed = store.ids().await.unwrap();
    assert_eq!(listed.len(), 10_000, "ids lists each session once");
    let listed: HashSet<StoredId> = listed.into_iter().collect();
    assert_eq!(
        listed,
        support::listed(&ids).into_iter().collect::<HashSet<_>>()
    );
    let all: HashMap<StoredId, _> = store.all().await.unwrap().into_iter().collect();
    assert_eq!(all.len(), 10_000);
    for (i, id) in support::listed(&ids).iter().enumerate() {
        assert_eq!(all.get(id), Some(&session(i as i64)));
    }
    assert_eq!(store.clear().await.unwrap(), 10_000);
    assert_eq!(store.length().await.unwrap(), 0);
    for key in &foreign {
        assert_ne!(backend.pttl(key).await.unwrap(), KeyTtl::Missing, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_key_commands_spanning_slots_never_fail_crossslot() {
    let (backend, _cluster) = cluster().await;
    let keys: Vec<String> = (0..500).map(|n| format!("k:{n}")).collect();
    for (n, key) in keys.iter().enumerate().filter(|(n, _)| n % 3 != 0) {
        let value = n.to_string();
        assert!(backend
            .set(key, value.as_bytes(), None, SetMode::Always)
            .await
            .unwrap());
    }
    let values = backend.mget(&keys).await.unwrap();
    for (n, value) in values.iter().enumerate() {
        let want = (n % 3 != 0).then(|| n.to_string().into_bytes());
        assert_eq!(value, &want, "MGET keeps key order across slots");
    }
    let existing = keys.iter().enumerate().filter(|(n, _)| n % 3 != 0).count();
    assert_eq!(backend.delete(&keys).await.unwrap(), existing as u64);
    assert!(backend
        .mget(&keys)
        .await
        .unwrap()
        .iter()
        .all(Option::is_none));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_during_load_loses_nothing() {
    let (backend, cluster) = cluster_for_failover().await;
    let store = RedisStore::new(backend);
    let replicated = write_replicated(&cluster, &store, 300).await;
    let primary = cluster.primary_for_key(&store.keyspace().key(&replicated[0]));
    let replica = cluster.replica_of(primary);

    let load = Load::start(&store, &replicated);
    load.progress(50, "before the failover").await;
    let (cluster, during) =
        fail_over_under_load(&load, cluster, move |c| c.failover(replica)).await;
    load.progress(50, "after the failover").await;
    let failed = load.failed.load(Ordering::SeqCst);
    let acks = load.finish().await;
    eprintln!(
        "CLUSTER FAILOVER during load: {during} ops ok during the failover, {} acknowledged \
         writes, {failed} failed ops",
        acks.len()
    );
    assert!(during > 0, "no operation succeeded while the failover ran");

    assert_eq!(
        cluster.primary_for_key(&store.keyspace().key(&replicated[0])),
        replica
    );
    until_recovered(&store, &replicated[0]).await;
    assert_all_readable(&store, &replicated).await;
    // A manual failover waits until the replica has every write the primary acknowledged
    // (and pauses writes meanwhile): every acknowledged write survives, whenever it was sent.
    for ack in &acks {
        assert_eq!(
            store.get(&ack.id).await.unwrap(),
            Some(session(ack.n)),
            "write acknowledged {} the failover lost",
            ["before", "during", "after"][usize::from(ack.sent_in)]
        );
    }
    let fresh = id();
    assert!(store.set(&fresh, &session(1)).await.unwrap().is_written());
    // Writes that failed may still have been applied: the harness counts what exists.
    let existing = stored_sessions(&cluster, &store);
    assert!(existing > replicated.len() + acks.len());
    assert_eq!(store.length().await.unwrap(), existing as u64);
    assert_exact_clear(&cluster, &store, "after a manual failover").await;
}

/// Rounds of the killed-primary scenario on one cluster: each kills the primary of the next
/// shard; after every third round the three killed nodes are restarted (they rejoin as
/// replicas) for the next three.
const KILL_ROUNDS: usize = 9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_is_replaced_and_the_store_recovers() {
    // A 1 s node timeout: a killed primary is replaced in about 2 s, so the rounds stay short.
    let cluster = tokio::task::spawn_blocking(|| {
        RedisCluster::start_with_node_timeout(Duration::from_secs(1))
    })
    .await
    .unwrap();
    let (backend, mut cluster) = connect_for_failover(cluster).await;
    let store = RedisStore::new(backend);
    let started = Instant::now();
    let mut killed = Vec::new();
    for round in 0..KILL_ROUNDS {
        let ctx = format!("round {round}");
        // Replicated (`WAIT`) before the kill: these must survive it.
        let replicated = write_replicated(&cluster, &store, 300).await;
        let primary = cluster.primary_for_slot([0, 8_000, 16_000][round % 3]);
        let replica = cluster.replica_of(primary);

        let load = Load::start(&store, &replicated);
        load.progress(50, &ctx).await;
        let ok = load.ok.clone();
        let (back, during) = fail_over_under_load(&load, cluster, move |c| {
            c.kill(primary);
            // The shards still up keep serving while the killed one is being replaced: wait
            // for operations to succeed after the kill before waiting for the new primary, so
            // a loaded machine that elects the replica before the load runs again cannot make
            // the window empty.
            let (since, deadline) = (ok.load(Ordering::SeqCst), Instant::now() + PATIENCE);
            while ok.load(Ordering::SeqCst) < since + 5 {
                assert!(
                    Instant::now() < deadline,
                    "no operation succeeded within {PATIENCE:?} of the kill"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            c.wait_primary(replica);
        })
        .await;
        cluster = back;
        // Odd rounds keep the load running on the new primary for a while; even rounds stop it
        // at once, so the first requests to the replaced shard are the checks and `clear` below
        // (what found redis-rs's slot map still naming the killed primary).
        if round % 2 == 1 {
            load.progress(50, &ctx).await;
        }
        let failed = load.failed.load(Ordering::SeqCst);
        let acks = load.finish().await;
        assert!(
            during > 0,
            "{ctx}: no operation succeeded while the failover ran"
        );

        until_recovered(&store, &replicated[0]).await;
        assert_all_readable(&store, &replicated).await;
        // Replication is asynchronous: a write the killed primary acknowledged but had not yet
        // sent to its replica is lost legitimately. Every other acknowledged write survives:
        // those to the other shards, and those sent once every node named the new primary.
        let mut lost = 0;
        for ack in &acks {
            let value = store.get(&ack.id).await.unwrap();
            if value == Some(session(ack.n)) {
                continue;
            }
            let key = store.keyspace().key(&ack.id);
            let shard_was_killed = cluster.primary_for_key(&key) == replica;
            assert!(
                shard_was_killed && ack.sent_in != AFTER,
                "{ctx}: acknowledged write lost ({value:?}; on the killed shard: \
                 {shard_was_killed}; sent {})",
                ["before", "during", "after"][usize::from(ack.sent_in)]
            );
            lost += 1;
        }
        // The scan walks the new primary: every replicated session is listed.
        let listed: HashSet<StoredId> = store.ids().await.unwrap().into_iter().collect();
        assert!(
            support::listed(&replicated)
                .iter()
                .all(|id| listed.contains(id)),
            "{ctx}"
        );
        let fresh = id();
        assert!(store.set(&fresh, &session(1)).await.unwrap().is_written());
        assert_eq!(store.get(&fresh).await.unwrap(), Some(session(1)), "{ctx}");
        assert_exact_clear(&cluster, &store, &ctx).await;
        eprintln!(
            "{ctx}: killed {primary}, {replica} took over; {during} ops ok during the \
             failover, {failed} failed, {} writes acknowledged ({lost} unreplicated lost); \
             {:?} so far",
            acks.len(),
            started.elapsed()
        );
        killed.push(primary);
        if killed.len() == 3 && round + 1 < KILL_ROUNDS {
            let ports = std::mem::take(&mut killed);
            cluster = tokio::task::spawn_blocking(move || {
                cluster.restart(&ports);
                cluster
            })
            .await
            .unwrap();
        }
    }
}

/// Takes `n` ids from a running scan.
async fn take<S>(stream: &mut std::pin::Pin<&mut S>, n: usize, seen: &mut Vec<StoredId>)
where
    S: futures_util::Stream<Item = redis_sessions::Result<StoredId>>,
{
    use futures_util::StreamExt;
    for _ in 0..n {
        seen.push(stream.next().await.unwrap().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_survives_failovers_between_its_pages() {
    use futures_util::StreamExt;

    let (backend, cluster) = cluster_for_failover().await;
    let store = RedisStore::builder(backend).scan_count(10).build();
    let ids = write_replicated(&cluster, &store, 300).await;
    let want: HashSet<StoredId> = support::listed(&ids).into_iter().collect();
    let first = cluster.primary_for_slot(0);

    // 1. A manual failover of the first shard mid-scan, noticed through another scan's
    //    topology refresh: the paused scan restarts that shard on its new primary.
    let mut seen = Vec::new();
    let mut paused = std::pin::pin!(store.ids_stream());
    take(&mut paused, 25, &mut seen).await;
    let replica = cluster.replica_of(first);
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.failover(replica);
        cluster
    })
    .await
    .unwrap();
    assert_eq!(store.length().await.unwrap(), 300);
    while let Some(id) = paused.next().await {
        seen.push(id.unwrap());
    }
    assert_eq!(seen.len(), 300, "each id once, none skipped");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), want);

    // 2. The first shard's primary is killed mid-scan: the next page fails over to the
    //    promoted replica instead of failing the scan.
    let first = cluster.primary_for_slot(0);
    let replica = cluster.replica_of(first);
    let mut seen = Vec::new();
    let mut paused = std::pin::pin!(store.ids_stream());
    take(&mut paused, 25, &mut seen).await;
    let cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.kill(first);
        cluster.wait_primary(replica);
        cluster
    })
    .await
    .unwrap();
    while let Some(id) = paused.next().await {
        seen.push(id.unwrap());
    }
    assert_eq!(seen.len(), 300, "each id once, none skipped");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), want);
    drop(cluster);
}

/// A cluster backend that runs `between` once, after its `after`th scan page: a failover in
/// the middle of one `length` call. It also notes whether a page started a shard over.
struct BetweenPages {
    inner: ClusterBackend,
    pages: std::sync::atomic::AtomicUsize,
    after: usize,
    between: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    restarted: AtomicBool,
}

impl Backend for BetweenPages {
    async fn get(&self, key: &str) -> redis_sessions::backend::BackendResult<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn get_ex(
        &self,
        key: &str,
        ttl: Duration,
    ) -> redis_sessions::backend::BackendResult<Option<Vec<u8>>> {
        self.inner.get_ex(key, ttl).await
    }
    async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> redis_sessions::backend::BackendResult<bool> {
        self.inner.set(key, value, ttl, mode).await
    }
    async fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> redis_sessions::backend::BackendResult<redis_sessions::backend::ValueSwap> {
        self.inner
            .set_if_value(key, value, ttl, expected_sha1)
            .await
    }
    async fn pexpire(
        &self,
        key: &str,
        ttl: Duration,
    ) -> redis_sessions::backend::BackendResult<bool> {
        self.inner.pexpire(key, ttl).await
    }
    async fn pttl(&self, key: &str) -> redis_sessions::backend::BackendResult<KeyTtl> {
        self.inner.pttl(key).await
    }
    async fn delete(&self, keys: &[String]) -> redis_sessions::backend::BackendResult<u64> {
        self.inner.delete(keys).await
    }
    async fn mget(
        &self,
        keys: &[String],
    ) -> redis_sessions::backend::BackendResult<Vec<Option<Vec<u8>>>> {
        self.inner.mget(keys).await
    }
    async fn scan(
        &self,
        cursor: redis_sessions::ScanCursor,
        pattern: &str,
        count: u32,
    ) -> redis_sessions::backend::BackendResult<redis_sessions::ScanPage> {
        if self.pages.fetch_add(1, Ordering::SeqCst) == self.after {
            let between = self.between.lock().unwrap().take();
            if let Some(between) = between {
                tokio::task::spawn_blocking(between).await.unwrap();
            }
        }
        let page = self.inner.scan(cursor, pattern, count).await?;
        if page.restarted {
            self.restarted.store(true, Ordering::SeqCst);
        }
        Ok(page)
    }
    async fn write_indexed(
        &self,
        write: &redis_sessions::IndexedWrite<'_>,
    ) -> redis_sessions::backend::BackendResult<redis_sessions::IndexedReply> {
        self.inner.write_indexed(write).await
    }
    async fn index_members(
        &self,
        index: &str,
    ) -> redis_sessions::backend::BackendResult<Vec<(String, Vec<u8>)>> {
        self.inner.index_members(index).await
    }
    async fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> redis_sessions::backend::BackendResult<redis_sessions::IndexedDelete> {
        self.inner
            .delete_indexed(key, index, member, expected_sha1)
            .await
    }
    async fn index_remove(
        &self,
        index: &str,
        members: &[String],
    ) -> redis_sessions::backend::BackendResult<u64> {
        self.inner.index_remove(index, members).await
    }
    async fn index_extend(
        &self,
        index: &str,
        ttl: Duration,
    ) -> redis_sessions::backend::BackendResult<()> {
        self.inner.index_extend(index, ttl).await
    }
}

/// `length` stays exact when the shard it is scanning fails over in the middle of the call:
/// that shard is counted again from zero on its new primary, with memory per shard, not per
/// session (the restart is asserted, so the test exercises it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_is_exact_across_a_failover_in_the_middle_of_its_scan() {
    let (backend, cluster) = cluster_for_failover().await;
    let writer = RedisStore::builder(backend).scan_count(10).build();
    write_replicated(&cluster, &writer, 300).await;
    let first = cluster.primary_for_slot(0);
    let replica = cluster.replica_of(first);
    let cluster = Arc::new(std::sync::Mutex::new(cluster));
    let in_test = Arc::clone(&cluster);
    let urls = cluster.lock().unwrap().urls();
    let inner = connect_urls(&urls).await;
    let backend = BetweenPages {
        inner,
        pages: Default::default(),
        after: 3,
        between: std::sync::Mutex::new(Some(Box::new(move || {
            let mut cluster = in_test.lock().unwrap();
            cluster.kill(first);
            cluster.wait_primary(replica);
        }))),
        restarted: AtomicBool::new(false),
    };
    let store = RedisStore::builder(backend).scan_count(10).build();
    assert_eq!(store.length().await.unwrap(), 300);
    assert!(
        store.backend().restarted.load(Ordering::SeqCst),
        "the failover did not restart the shard's scan: the test did not exercise the restart"
    );
}

/// A second client of the cluster, with the failover tests' timeouts.
async fn connect_urls(urls: &[String]) -> ClusterBackend {
    let config = ClusterConfig {
        response_timeout: Duration::from_secs(2),
        ..ClusterConfig::default()
    };
    ClusterBackend::connect_with(urls, config).await.unwrap()
}
