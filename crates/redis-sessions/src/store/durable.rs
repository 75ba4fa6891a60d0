//! Durable revocation: a revoke that then waits for replicas to acknowledge its deletes
//! (`WAIT`, [`Backend::wait_for_replicas`]) and says how many did, so that a failover right
//! after "sign out everywhere" does not bring the ended sessions back.

use std::time::Duration;

use super::RedisStore;
use crate::backend::Backend;
use crate::error::Result;
use crate::id::StoredId;

/// How many replicas a durable revoke waits for, and for how long at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitForReplicas {
    /// Replicas that must acknowledge the revoke's deletes (`WAIT numreplicas`); 0 sends no
    /// `WAIT` at all.
    pub replicas: u32,
    /// The longest the revoke waits for them (`WAIT … timeout`); a backend cuts it to fit
    /// within its connection's response timeout ([`Backend::wait_for_replicas`]).
    pub timeout: Duration,
}

impl WaitForReplicas {
    /// Waits for `replicas` replicas, at most `timeout`.
    pub const fn new(replicas: u32, timeout: Duration) -> WaitForReplicas {
        WaitForReplicas { replicas, timeout }
    }
}

/// What a durable revoke did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revoked {
    /// How many sessions ended.
    pub ended: u64,
    /// How many replicas acknowledged every delete of the revoke (`WAIT`'s reply; on
    /// Cluster the smallest count of any primary); 0 when none was asked for, on the
    /// [`MemoryBackend`](crate::MemoryBackend), or when none answered within the timeout.
    pub acknowledged: u32,
    /// How many were asked for ([`WaitForReplicas::replicas`]).
    pub replicas: u32,
}

impl Revoked {
    /// Whether as many replicas acknowledged as were asked for: the ended sessions are then
    /// on that many replicas as well as on the primary. When not, the sessions still ended
    /// on the primary; a failover before they reach a replica could bring them back, so a
    /// caller that needs the guarantee revokes again (on the same store: its `WAIT` then also
    /// covers this revoke's deletes) or alerts.
    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged >= self.replicas
    }
}

impl<B: Backend> RedisStore<B> {
    /// [`revoke_user_sessions`](RedisStore::revoke_user_sessions), then `WAIT` for
    /// `wait.replicas` replicas to acknowledge its deletes, at most `wait.timeout`: how many
    /// sessions ended and how many replicas acknowledged.
    ///
    /// `WAIT` counts the acknowledgements of the writes made on the connection that made the
    /// deletes (every command of the store shares it), so it also covers that connection's
    /// earlier writes. While it waits, that connection holds every command sent after it:
    /// the store's other requests (on Cluster, those to any primary) wait up to
    /// `wait.timeout` behind it when replicas are slow. Keep the timeout short, or give
    /// revokes a store of their own on another connection. A revoke that ends nothing sends
    /// no delete, so its count says nothing about deletes made on other connections.
    ///
    /// ```no_run
    /// # async fn run(store: redis_sessions::RedisStore<redis_sessions::RedisBackend>, current: redis_sessions::StoredId) -> redis_sessions::Result<()> {
    /// use std::time::Duration;
    /// use redis_sessions::WaitForReplicas;
    /// let wait = WaitForReplicas::new(1, Duration::from_millis(200));
    /// let revoked = store.revoke_user_sessions_durably("ada", Some(&current), wait).await?;
    /// if !revoked.is_acknowledged() {
    ///     tracing::warn!(ended = revoked.ended, "sign-out not yet on a replica");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`revoke_user_sessions`](RedisStore::revoke_user_sessions); and
    /// [`Error::Backend`](crate::Error::Backend) when the `WAIT` itself fails (the sessions
    /// ended all the same: revoke again to learn how many replicas have it). Replicas that
    /// do not answer in time are not an error: they are not counted.
    pub async fn revoke_user_sessions_durably(
        &self,
        user: &str,
        except: Option<&StoredId>,
        wait: WaitForReplicas,
    ) -> Result<Revoked> {
        let ended = self.revoke_user_sessions(user, except).await?;
        self.acknowledged(ended, wait).await
    }

    /// [`revoke_user_session`](RedisStore::revoke_user_session) (one session by its listed
    /// id), then `WAIT` as [`revoke_user_sessions_durably`](RedisStore::revoke_user_sessions_durably):
    /// `ended` is 1 when it ended, 0 when it was not a live session of this user.
    ///
    /// # Errors
    /// As [`revoke_user_session`](RedisStore::revoke_user_session) and
    /// [`revoke_user_sessions_durably`](RedisStore::revoke_user_sessions_durably).
    pub async fn revoke_user_session_durably(
        &self,
        user: &str,
        id: &StoredId,
        wait: WaitForReplicas,
    ) -> Result<Revoked> {
        let ended = u64::from(self.revoke_user_session(user, id).await?);
        self.acknowledged(ended, wait).await
    }

    async fn acknowledged(&self, ended: u64, wait: WaitForReplicas) -> Result<Revoked> {
        let acknowledged = match wait.replicas {
            0 => 0,
            n => {
                let backend = &self.inner.backend;
                let acked = backend.wait_for_replicas(n, wait.timeout).await?;
                if acked < n {
                    tracing::warn!(
                        acknowledged = acked,
                        replicas = n,
                        ended,
                        "revoke not acknowledged by enough replicas within the timeout"
                    );
                }
                acked
            }
        };
        Ok(Revoked {
            ended,
            acknowledged,
            replicas: wait.replicas,
        })
    }
}
