//! The per-user index on a cluster: the index and its sessions live in different hash slots,
//! so a write with its index update runs as ordered steps, each atomic on its own slot (see
//! [`Backend::write_indexed`](super::super::Backend::write_indexed) on [`ClusterBackend`]).
//!
//! The limit is not atomic with the write here; its steps run so that racing logins of one
//! user cannot leave more than `max` sessions once they have returned. Each login's step
//! after its write reads the index when every write that completed before it is there (a
//! member is added before its `SET`, and members younger than
//! [`INDEX_PENDING`](crate::INDEX_PENDING) are never removed as dead), so the last of them
//! sees all the others:
//!
//! - [`LimitPolicy::Refuse`] is checked before the write (past the limit, nothing is written)
//!   and, for a create, again after it: a new session that finds more than `max` live
//!   sessions is ended again and refused, so logins racing at the limit may all be refused.
//!   A write that gives an existing session its user is checked before it only (the session
//!   is never ended for it), so racing ones of those may pass the limit.
//! - [`LimitPolicy::EndLeastRecentlyUsed`] runs only after a successful write of a member new
//!   to the index, so a write that fails (`SET NX` on a taken id, a compare-and-set that
//!   lost) ends nothing. It keeps the `max` most recently used live members, the new one
//!   among them, ties broken by member, so every step makes the same choice of what it sees:
//!   the user is left with exactly the `max` most recently used when last use is the recorded
//!   write time (no idle timeout, no rewrites during the logins).

use super::super::index::{
    choose_evictions, evalsha, indexed_delete, last_used_ms, millis_or_zero, past_the_limit,
    value_sha1, IndexMember, LimitPolicy, DELETE_IF_VALUE, INDEX_ADD, INDEX_READD, INDEX_UNDO,
};
use super::super::{Backend, BackendResult, KeyTtl, SetMode};
use super::super::{IndexedDelete, IndexedReply, IndexedWrite, SessionLimit, ValueSwap};
use super::ClusterBackend;

/// A live member the limit counts: its name, the SHA-1 of its session's value (a delete
/// ends the session only while it holds that value) and when it was last used (Unix ms).
type LiveMember = ((String, String), u64);

impl ClusterBackend {
    /// The steps of `write_indexed`, in the order its documentation gives.
    pub(super) async fn write_indexed_in_steps(
        &self,
        w: &IndexedWrite<'_>,
    ) -> BackendResult<IndexedReply> {
        // Refuse: checked before the write, so that a login past the limit writes nothing.
        if let Some(limit) = w.limit.filter(|l| l.policy == LimitPolicy::Refuse) {
            if !self.limit_allows(w, limit).await? {
                return Ok(IndexedReply::refused());
            }
        }
        let (now, index_ttl, sha) = (
            w.now_ms.to_string(),
            millis_or_zero(w.index_ttl).to_string(),
            value_sha1(w.value),
        );
        let old: Vec<u8> = evalsha!(
            self.keys,
            INDEX_ADD,
            [w.index],
            [w.member, now.as_str(), index_ttl.as_str(), sha.as_str()]
        )?;
        let mut current = None;
        let written = match w.expected_sha1 {
            None => self.keys.set(w.key, w.value, w.ttl, w.mode).await?,
            Some(expected) => match self
                .keys
                .set_if_value(w.key, w.value, w.ttl, expected)
                .await?
            {
                ValueSwap::Written => true,
                ValueSwap::Changed(now) => {
                    current = Some(now);
                    false
                }
                _ => false,
            },
        };
        let created = IndexMember::parse(&old).map_or(w.now_ms, |m| m.created_ms);
        let put = format!("{created}:{now}:{sha}");
        if written {
            // Step three: a listing between the two steps may have removed the member.
            let readded: i64 = evalsha!(
                self.keys,
                INDEX_READD,
                [w.index],
                [w.member, put.as_str(), index_ttl.as_str()]
            )?;
            if readded == 1 {
                tracing::debug!("index member put back after a listing ran between the steps");
            }
        } else {
            let _undone: i64 = evalsha!(
                self.keys,
                INDEX_UNDO,
                [w.index],
                [w.member.as_bytes(), put.as_bytes(), old.as_slice()]
            )?;
        }
        let mut evicted = 0;
        // After the write, and only when it succeeded for a member new to the index.
        match w.limit {
            Some(limit) if written && old.is_empty() => match limit.policy {
                // A create only: a session that existed before this write (given its user
                // now) is not ended for it.
                LimitPolicy::Refuse if w.mode == SetMode::IfAbsent => {
                    if self.withdrawn_past_the_limit(w, limit, &sha).await? {
                        return Ok(IndexedReply::refused());
                    }
                }
                LimitPolicy::Refuse => {}
                _ => evicted = self.end_least_recently_used(w, limit).await?,
            },
            _ => {}
        }
        Ok(match current {
            Some(current) => IndexedReply::changed(current),
            None => IndexedReply::with_evicted(written, evicted),
        })
    }

    /// The steps of `delete_indexed`: the session's own slot first, then the index's.
    pub(super) async fn delete_indexed_in_steps(
        &self,
        key: &str,
        index: &str,
        member: &str,
        expected_sha1: &str,
    ) -> BackendResult<IndexedDelete> {
        let status: i64 = evalsha!(self.keys, DELETE_IF_VALUE, [key], [expected_sha1])?;
        let outcome = indexed_delete(status);
        if outcome != IndexedDelete::Changed {
            self.keys.index_remove(index, &[member.to_owned()]).await?;
        }
        Ok(outcome)
    }

    /// The refuse policy's check before the write: `true` when the member is already in
    /// the index (not a new session) or the user has fewer than `limit.max` live sessions.
    async fn limit_allows(&self, w: &IndexedWrite<'_>, limit: SessionLimit) -> BackendResult<bool> {
        let (present, live) = self.live_members(w).await?;
        Ok(present || choose_evictions(live, limit).is_some())
    }

    /// The refuse policy's check after a create of a new member: when the user now has more
    /// than `limit.max` live sessions (logins racing this one passed the check before their
    /// writes too), the new session is ended again (`true`: refused). Each login's check
    /// sees every write that completed before it, so once racing logins have returned no
    /// more than `limit.max` are live; logins racing at the limit may all be refused.
    async fn withdrawn_past_the_limit(
        &self,
        w: &IndexedWrite<'_>,
        limit: SessionLimit,
        sha: &str,
    ) -> BackendResult<bool> {
        let (_, live) = self.live_members(w).await?;
        if live.len() <= limit.max.max(1) as usize {
            return Ok(false);
        }
        // Changed: rewritten since (by whoever learnt its id): kept, as written.
        let deleted = self.delete_indexed(w.key, w.index, w.member, sha).await?;
        Ok(deleted != IndexedDelete::Changed)
    }

    /// The least-recently-used policy after the write of a member new to the index: ends
    /// every live member but the `limit.max` most recently used (session first, then its
    /// member); how many ended.
    async fn end_least_recently_used(
        &self,
        w: &IndexedWrite<'_>,
        limit: SessionLimit,
    ) -> BackendResult<u64> {
        let (_, live) = self.live_members(w).await?;
        let mut n = 0;
        for (member, sha) in past_the_limit(live, limit.max) {
            let key = format!("{}{member}", w.prefix);
            n += u64::from(
                self.delete_indexed(&key, w.index, &member, &sha).await? == IndexedDelete::Deleted,
            );
        }
        Ok(n)
    }

    /// The index's members the limit counts, with their last use, and whether `w.member` is
    /// among the index's members. Members whose session is gone are removed on the way,
    /// unless written less than [`INDEX_PENDING`] ago (a write between its steps, whose `SET`
    /// may land after this read: removing its member then would leave the session
    /// unindexed).
    ///
    /// [`INDEX_PENDING`]: crate::INDEX_PENDING
    async fn live_members(&self, w: &IndexedWrite<'_>) -> BackendResult<(bool, Vec<LiveMember>)> {
        let members = self.keys.index_members(w.index).await?;
        let present = members.iter().any(|(m, _)| m == w.member);
        let keys: Vec<String> = members
            .iter()
            .map(|(m, _)| format!("{}{m}", w.prefix))
            .collect();
        let values = if keys.is_empty() {
            Vec::new()
        } else {
            self.mget(&keys).await?
        };
        let pending_ms = crate::INDEX_PENDING.as_millis() as u64;
        let mut live = Vec::with_capacity(members.len());
        let mut dead = Vec::new();
        for (((member, recorded), key), value) in members.into_iter().zip(keys).zip(values) {
            let parsed = IndexMember::parse(&recorded);
            let young = parsed
                .as_ref()
                .is_some_and(|m| m.written_ms + pending_ms > w.now_ms);
            let Some(value) = value else {
                if !young {
                    dead.push(member);
                }
                continue;
            };
            // Rewritten without this user, or a write of it between its two steps: not
            // counted, and left for a listing to judge (it reads the session's user).
            if parsed.as_ref().is_some_and(|m| !m.matches(&value)) {
                continue;
            }
            match self.keys.pttl(&key).await? {
                KeyTtl::Missing if young => {}
                KeyTtl::Missing => dead.push(member),
                ttl => {
                    let written = parsed.map_or(0, |m| m.written_ms);
                    let used = last_used_ms(written, ttl, w.idle, w.now_ms);
                    live.push(((member, value_sha1(&value)), used));
                }
            }
        }
        self.keys.index_remove(w.index, &dead).await?;
        Ok((present, live))
    }
}
