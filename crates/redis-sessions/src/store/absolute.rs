//! The absolute timeout ([`StoreBuilder::absolute_timeout`](super::StoreBuilder::absolute_timeout)):
//! a session ends a fixed time after its creation, however active it is.
//!
//! The creation time is recorded once, in the stored value (the reserved field `__created`,
//! see [`Session::created`]), at the session's first write under the option, and never moved:
//! the framework shapes carry it from a load to the next save as one of their fields, and a
//! save of a session that lacks it (one written before the option, or whose data the
//! application cleared) reads it back from Redis first. Every rule lives in the functions
//! below, so a read path of its own (a client-side cache) applies the same ones:
//!
//! - [`past_absolute`](RedisStore::past_absolute): a session read past its deadline is gone
//!   (the read deletes it through the write path);
//! - [`cap_sliding_read`](RedisStore::cap_sliding_read): a read that re-armed the key's TTL
//!   (`GETEX PX`) brings it back down to what is left before the deadline, when that is
//!   shorter (a second command, `PEXPIRE`, sent only in the last idle period of a session's
//!   life);
//! - [`creation_for_write`](RedisStore::creation_for_write): the record a write keeps or adds,
//!   and the deadline that caps the write's TTL.

use std::time::{Duration, SystemTime};

use super::write::now_ms;
use super::{RedisStore, Target};
use crate::backend::{Backend, SetMode};
use crate::codec::Encodable;
use crate::error::{BackendErrorKind, Result};
use crate::session::Session;

/// A write's creation record under an absolute timeout.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Creation {
    /// When the session must end (creation + absolute timeout); `None` without the option.
    pub(super) deadline: Option<SystemTime>,
    /// The record to write into the value (Unix ms), when the session does not carry a valid
    /// one already; `None` writes its fields as they are.
    pub(super) stamp: Option<u64>,
}

impl<B: Backend> RedisStore<B> {
    /// When a session created at `created` must end; `None` without an absolute timeout or
    /// without a record.
    pub(super) fn absolute_deadline(&self, created: Option<SystemTime>) -> Option<SystemTime> {
        Some(created? + self.inner.absolute_timeout?)
    }

    /// Whether a session created at `created` is past its absolute timeout: a read must then
    /// treat it as gone (and delete it). A cached read must ask the same of its copy.
    pub(super) fn past_absolute(&self, created: Option<SystemTime>) -> bool {
        self.absolute_deadline(created)
            .is_some_and(|deadline| deadline <= SystemTime::now())
    }

    /// What is left of a session's absolute timeout; `None` when it has none.
    pub(super) fn absolute_left(&self, created: Option<SystemTime>) -> Option<Duration> {
        let deadline = self.absolute_deadline(created)?;
        Some(
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        )
    }

    /// After a read that set the key's TTL to `refreshed` (`GETEX PX`): when less than that is
    /// left of the session's absolute timeout, sets the TTL to what is left (`PEXPIRE`), so no
    /// sliding read moves the key's end past the deadline. Between the two commands the key's
    /// TTL is briefly the longer one; reads check the record, so none of them passes it.
    pub(super) async fn cap_sliding_read(
        &self,
        target: &Target<'_>,
        created: Option<SystemTime>,
        refreshed: Duration,
    ) -> Result<()> {
        let Some(left) = self.absolute_left(created) else {
            return Ok(());
        };
        if left >= refreshed {
            return Ok(());
        }
        if left < Duration::from_millis(1) {
            // Called from inside the write path (a refresh) too: the delete step itself.
            let _expired = self.delete_expired(target).await?;
            return Ok(());
        }
        let _existed = self.inner.backend.pexpire(&target.key, left).await?;
        Ok(())
    }

    /// The creation record a write of `session` keeps or adds, and its deadline. A session
    /// that carries a record keeps it; a new one (`SET NX`) is created now; an update or `set`
    /// of a session without one reads the stored value's record first (one `GET`, only for
    /// sessions without a record), so clearing a session's data does not restart its clock.
    pub(super) async fn creation_for_write<E: Encodable>(
        &self,
        target: &Target<'_>,
        session: &E,
        mode: SetMode,
    ) -> Result<Creation> {
        if self.inner.absolute_timeout.is_none() {
            return Ok(Creation::default());
        }
        if let Some(created) = session.created() {
            return Ok(Creation {
                deadline: self.absolute_deadline(Some(created)),
                stamp: None,
            });
        }
        let stored = match mode {
            SetMode::IfAbsent => None,
            SetMode::IfPresent | SetMode::Always => self.stored_creation(target).await?,
        };
        let ms = stored.map_or_else(now_ms, |t| {
            u64::try_from(crate::timefmt::millis(t)).unwrap_or(u64::MAX)
        });
        let created = crate::codec::shape::created_at(ms);
        Ok(Creation {
            deadline: self.absolute_deadline(Some(created)),
            stamp: Some(ms),
        })
    }

    /// The creation record of the value stored under `target`, if it has one (a value that
    /// does not decode has none).
    async fn stored_creation(&self, target: &Target<'_>) -> Result<Option<SystemTime>> {
        let bytes = match self.inner.backend.get(&target.key).await {
            Ok(Some(bytes)) if !bytes.is_empty() => bytes,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == BackendErrorKind::WrongType => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .decode::<Session>(target, &bytes)
            .ok()
            .and_then(|s| s.created()))
    }
}
