//! The per-user index on a cluster: the index and its sessions live in different hash slots,
//! so a write with its index update runs as ordered steps, each atomic on its own slot (see
//! [`Backend::write_indexed`](super::super::Backend::write_indexed) on [`ClusterBackend`]).

use super::super::index::{
    choose_evictions, evalsha, indexed_delete, last_used_ms, millis_or_zero, value_sha1,
    IndexMember, DELETE_IF_VALUE, INDEX_ADD, INDEX_READD, INDEX_UNDO,
};
use super::super::{Backend, BackendResult, KeyTtl};
use super::super::{IndexedDelete, IndexedReply, IndexedWrite, SessionLimit, ValueSwap};
use super::ClusterBackend;

impl ClusterBackend {
    /// The steps of `write_indexed`, in the order its documentation gives.
    pub(super) async fn write_indexed_in_steps(
        &self,
        w: &IndexedWrite<'_>,
    ) -> BackendResult<IndexedReply> {
        let mut evicted = 0;
        if let Some(limit) = w.limit {
            match self.limit_step(w, limit).await? {
                Some(n) => evicted = n,
                None => return Ok(IndexedReply::refused()),
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

    /// The limit for a member new to the index: dead members dropped, then the least
    /// recently used ended (session first) or `None` to refuse.
    async fn limit_step(
        &self,
        w: &IndexedWrite<'_>,
        limit: SessionLimit,
    ) -> BackendResult<Option<u64>> {
        let members = self.keys.index_members(w.index).await?;
        if members.iter().any(|(m, _)| m == w.member) {
            return Ok(Some(0));
        }
        let keys: Vec<String> = members
            .iter()
            .map(|(m, _)| format!("{}{m}", w.prefix))
            .collect();
        let values = if keys.is_empty() {
            Vec::new()
        } else {
            self.mget(&keys).await?
        };
        let mut live = Vec::with_capacity(members.len());
        let mut dead = Vec::new();
        for (((member, recorded), key), value) in members.into_iter().zip(keys).zip(values) {
            let parsed = IndexMember::parse(&recorded);
            let Some(value) = value else {
                dead.push(member);
                continue;
            };
            // Rewritten without this user, or a write of it between its two steps: not
            // counted, and left for a listing to judge (it reads the session's user).
            if parsed.as_ref().is_some_and(|m| !m.matches(&value)) {
                continue;
            }
            match self.keys.pttl(&key).await? {
                KeyTtl::Missing => dead.push(member),
                ttl => {
                    let written = parsed.map_or(0, |m| m.written_ms);
                    let used = last_used_ms(written, ttl, w.idle, w.now_ms);
                    live.push(((member, value_sha1(&value)), used));
                }
            }
        }
        self.keys.index_remove(w.index, &dead).await?;
        let Some(ended) = choose_evictions(live, limit) else {
            return Ok(None);
        };
        let mut n = 0;
        for (member, sha) in &ended {
            let key = format!("{}{member}", w.prefix);
            n += u64::from(
                self.delete_indexed(&key, w.index, member, sha).await? == IndexedDelete::Deleted,
            );
        }
        Ok(Some(n))
    }
}
