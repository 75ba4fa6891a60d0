//! The store's backend behind its fail-fast [`Breaker`]: every call the store makes goes
//! through [`Guarded`], which implements [`Backend`] by asking the breaker first and telling
//! it the result after. `info` (the doctor's) goes straight through: a diagnosis must reach
//! the servers even while the store fails fast.

use std::future::Future;
use std::time::{Duration, Instant};

use super::breaker::{Admission, Breaker, FailFast, FailFastState, Verdict};
use super::Endpoint;
use crate::backend::{
    Backend, BackendResult, IndexedDelete, IndexedReply, IndexedWrite, KeyTtl, ScanCursor,
    ScanPage, ServerReport, SetMode,
};

/// A backend and its breaker (`None`: fail-fast disabled).
pub(crate) struct Guarded<B> {
    pub(crate) backend: B,
    breaker: Option<Breaker>,
}

/// Tells the breaker the probe was abandoned when its future is dropped before the result.
struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breaker.abandon_probe(Instant::now());
        }
    }
}

impl<B: Backend> Guarded<B> {
    pub(crate) fn new(backend: B, fail_fast: Option<FailFast>) -> Guarded<B> {
        Guarded {
            backend,
            breaker: fail_fast.map(Breaker::new),
        }
    }

    pub(crate) fn state(&self) -> Option<FailFastState> {
        self.breaker.as_ref().map(Breaker::state)
    }

    async fn guard<T>(&self, call: impl Future<Output = BackendResult<T>>) -> BackendResult<T> {
        let Some(breaker) = &self.breaker else {
            return call.await;
        };
        let admission = breaker.admit(Instant::now())?;
        let mut probe = ProbeGuard {
            breaker,
            armed: admission == Admission::Probe,
        };
        let result = call.await;
        probe.armed = false;
        breaker.record(admission, Verdict::of(&result), Instant::now());
        result
    }
}

impl<B: Backend> Backend for Guarded<B> {
    async fn get(&self, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.guard(self.backend.get(key)).await
    }

    async fn get_ex(&self, key: &str, ttl: Duration) -> BackendResult<Option<Vec<u8>>> {
        self.guard(self.backend.get_ex(key, ttl)).await
    }

    async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        self.guard(self.backend.set(key, value, ttl, mode)).await
    }

    async fn set_if_value(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        expected_sha1: &str,
    ) -> BackendResult<crate::backend::ValueSwap> {
        self.guard(self.backend.set_if_value(key, value, ttl, expected_sha1))
            .await
    }

    async fn pexpire(&self, key: &str, ttl: Duration) -> BackendResult<bool> {
        self.guard(self.backend.pexpire(key, ttl)).await
    }

    async fn pttl(&self, key: &str) -> BackendResult<KeyTtl> {
        self.guard(self.backend.pttl(key)).await
    }

    async fn delete(&self, keys: &[String]) -> BackendResult<u64> {
        self.guard(self.backend.delete(keys)).await
    }

    async fn mget(&self, keys: &[String]) -> BackendResult<Vec<Option<Vec<u8>>>> {
        self.guard(self.backend.mget(keys)).await
    }

    async fn scan(&self, cursor: ScanCursor, pattern: &str, count: u32) -> BackendResult<ScanPage> {
        self.guard(self.backend.scan(cursor, pattern, count)).await
    }

    fn endpoint(&self) -> Option<Endpoint> {
        self.backend.endpoint()
    }

    async fn ping(&self) -> BackendResult<()> {
        self.guard(self.backend.ping()).await
    }

    async fn write_indexed(&self, write: &IndexedWrite<'_>) -> BackendResult<IndexedReply> {
        self.guard(self.backend.write_indexed(write)).await
    }

    async fn index_members(&self, index: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        self.guard(self.backend.index_members(index)).await
    }

    async fn delete_indexed(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> BackendResult<IndexedDelete> {
        self.guard(
            self.backend
                .delete_indexed(key, index, member, expected_sha1),
        )
        .await
    }

    async fn index_remove(&self, index: &str, members: &[String]) -> BackendResult<u64> {
        self.guard(self.backend.index_remove(index, members)).await
    }

    async fn index_extend(&self, index: &str, ttl: Duration) -> BackendResult<()> {
        self.guard(self.backend.index_extend(index, ttl)).await
    }

    fn index_in_steps(&self) -> bool {
        self.backend.index_in_steps()
    }

    async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> BackendResult<u32> {
        self.guard(self.backend.wait_for_replicas(replicas, timeout))
            .await
    }

    fn tracker(&self) -> Option<&crate::cache::Tracker> {
        self.backend.tracker()
    }

    async fn tracked_read(
        &self,
        key: &str,
        refresh: Option<Duration>,
    ) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
        self.guard(self.backend.tracked_read(key, refresh)).await
    }

    async fn tracked_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> BackendResult<bool> {
        self.guard(self.backend.tracked_set(key, value, ttl, mode))
            .await
    }

    async fn info(&self, sections: &[&str]) -> BackendResult<ServerReport> {
        self.backend.info(sections).await
    }
}
