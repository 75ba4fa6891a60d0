//! A backend wrapper that runs a test's step right before each conditional delete
//! ([`Backend::delete_indexed`]), so a test can fix the interleaving "the revoke read the
//! session, then something rewrote it, then the revoke's delete runs" on any backend. It
//! also notes when each index read (`Backend::index_members`) started.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis_sessions::backend::{BackendResult, IndexedReply, IndexedWrite};
use redis_sessions::{Backend, IndexedDelete, KeyTtl, ScanCursor, ScanPage, SetMode};

/// The step: given how many conditional deletes ran before this one.
pub type Step = Box<dyn FnMut(usize) -> BoxFuture<'static, ()> + Send>;

/// `inner`, with `step` run before each `delete_indexed`.
#[derive(Clone)]
pub struct Hooked<B> {
    pub inner: B,
    step: Arc<Mutex<Option<Step>>>,
    /// Run before each `index_remove` (a listing's removal of stale members).
    remove_step: Arc<Mutex<Option<Step>>>,
    deletes: Arc<AtomicUsize>,
    reads: Arc<Mutex<Vec<Instant>>>,
}

impl<B: Backend + Clone> Hooked<B> {
    pub fn new(inner: B) -> Hooked<B> {
        Hooked {
            inner,
            step: Arc::new(Mutex::new(None)),
            remove_step: Arc::new(Mutex::new(None)),
            deletes: Arc::new(AtomicUsize::new(0)),
            reads: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs `step` before every later conditional delete (replacing any earlier step).
    pub fn before_delete(&self, step: Step) {
        *self.step.lock().unwrap() = Some(step);
    }

    /// Runs `step` before every later removal of index members (`index_remove`).
    pub fn before_remove(&self, step: Step) {
        *self.remove_step.lock().unwrap() = Some(step);
    }

    /// When each index read started, in order.
    pub fn reads(&self) -> Vec<Instant> {
        self.reads.lock().unwrap().clone()
    }

    /// How many conditional deletes ran.
    pub fn deletes(&self) -> usize {
        self.deletes.load(Ordering::SeqCst)
    }
}

impl<B: Backend + Clone> Backend for Hooked<B> {
    fn index_in_steps(&self) -> bool {
        self.inner.index_in_steps()
    }
    async fn get(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
        self.inner.get_ex(key, ttl).await
    }
    async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        self.inner.set(key, value, ttl, mode).await
    }
    async fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> BackendResult<redis_sessions::backend::ValueSwap> {
        self.inner
            .set_if_value(key, value, ttl, expected_sha1)
            .await
    }
    async fn pexpire(&self, key: &str, ttl: Duration) -> BackendResult<bool> {
        self.inner.pexpire(key, ttl).await
    }
    async fn pttl(&self, key: &str) -> BackendResult<KeyTtl> {
        self.inner.pttl(key).await
    }
    async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
        self.inner.delete(keys).await
    }
    async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
        self.inner.mget(keys).await
    }
    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        self.inner.scan(cursor, pattern, count).await
    }
    async fn write_indexed(&self, w: &IndexedWrite<'_>) -> BackendResult<IndexedReply> {
        self.inner.write_indexed(w).await
    }
    async fn index_members(&self, index: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        self.reads.lock().unwrap().push(Instant::now());
        self.inner.index_members(index).await
    }
    async fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> BackendResult<IndexedDelete> {
        let n = self.deletes.fetch_add(1, Ordering::SeqCst);
        let step = self.step.lock().unwrap().as_mut().map(|step| step(n));
        if let Some(step) = step {
            step.await;
        }
        self.inner
            .delete_indexed(key, index, member, expected_sha1)
            .await
    }
    async fn index_remove(&self, index: &str, members: &[String]) -> BackendResult<u64> {
        let step = self
            .remove_step
            .lock()
            .unwrap()
            .as_mut()
            .map(|step| step(0));
        if let Some(step) = step {
            step.await;
        }
        self.inner.index_remove(index, members).await
    }
    async fn index_extend(&self, index: &str, ttl: Duration) -> BackendResult<()> {
        self.inner.index_extend(index, ttl).await
    }
    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        self.inner.wait_for_replicas(replicas, timeout).await
    }
}
