//! Listings, `length` and `clear`: `SCAN MATCH escape(prefix)*` page by page, with memory
//! bounded by configuration, never by the number of sessions (invariant 9).
//!
//! `SCAN` returns every key that exists for the whole scan at least once, and may return a key
//! again when Redis shrinks its hash table during the scan: the repeats are then keys of the
//! bucket the scan was in, returned moments before. A window of the most recently listed keys
//! ([`RECENT_KEYS`] keyed hashes, about 300 KiB) drops those repeats, so each session is listed
//! once unless the database shrinks by more than that factor during one scan.
//!
//! On a cluster or through Sentinel a server's scan can start over on a new primary (a
//! failover between two pages; the backend marks that page [`restarted`]). `length` then
//! counts that server again from zero (one counter per server, so it stays exact); a listing
//! has already yielded what that server returned, so keys it returned before the failover and
//! longer ago than the window may be listed twice.
//!
//! [`restarted`]: crate::ScanPage::restarted

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use futures_util::stream::{self, Stream, StreamExt, TryChunksError, TryStreamExt};

use super::observe::Op;
use super::{RedisStore, Target};
use crate::backend::{Backend, ScanCursor};
use crate::error::{Error, Result};
use crate::id::StoredId;
use crate::session::Session;

/// How many of the most recently listed keys a scan remembers to drop `SCAN`'s repeats.
pub const RECENT_KEYS: usize = 16_384;

/// The last [`RECENT_KEYS`] listed keys, as 64-bit keyed hashes.
struct Recent {
    hasher: RandomState,
    order: VecDeque<u64>,
    seen: HashSet<u64>,
}

impl Recent {
    fn new() -> Recent {
        Recent {
            hasher: RandomState::new(),
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    fn forget(&mut self) {
        self.order.clear();
        self.seen.clear();
    }

    /// `true` the first time `id` is offered within the window.
    fn first(&mut self, id: &StoredId) -> bool {
        let hash = self.hasher.hash_one(id);
        if !self.seen.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        if self.order.len() > RECENT_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// One page of a scan, with where it stands among the servers.
struct Page {
    ids: Vec<StoredId>,
    /// Per-user index keys the page held (never sessions; only `clear` uses them).
    indexes: Vec<String>,
    /// The first page of a server's scan: the servers before it are done.
    starts_server: bool,
    /// The server's scan started over (a failover): it returns its keys again.
    restarted: bool,
}

/// What the window does when a server's scan starts over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnRestart {
    /// Keep it: repeats of what was just listed are dropped (listings).
    Keep,
    /// Forget it: the server is counted again from zero (`length`).
    Forget,
}

impl<B: Backend> RedisStore<B> {
    /// Pages of stored ids under the prefix, `SCAN`'s repeats dropped. The window is emptied
    /// whenever a server's scan starts: keys of finished servers never come again.
    fn id_pages(&self, on_restart: OnRestart) -> impl Stream<Item = Result<Page>> + Send + '_ {
        let start = (Some(ScanCursor::default()), Recent::new());
        stream::try_unfold(start, move |(cursor, mut recent)| async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let inner = &*self.inner;
            let page = inner
                .backend
                .scan(cursor, inner.keyspace.scan_pattern(), inner.scan_count)
                .await?;
            let starts_server = cursor.position == 0;
            if starts_server || (page.restarted && on_restart == OnRestart::Forget) {
                recent.forget();
            }
            let ids = page
                .keys
                .iter()
                .filter_map(|key| inner.keyspace.id_of(key))
                .filter(|id| recent.first(id))
                .collect();
            let indexes = page
                .keys
                .iter()
                .filter(|key| inner.keyspace.is_index_key(key))
                .filter_map(|key| String::from_utf8(key.clone()).ok())
                .collect();
            let page_out = Page {
                ids,
                indexes,
                starts_server,
                restarted: page.restarted,
            };
            Ok(Some((page_out, (page.next, recent))))
        })
    }

    /// Every stored id under the prefix, streamed page by page (bounded memory).
    ///
    /// Keys under the prefix whose rest is not a valid session id (another application's
    /// `sess:admin:1`) are skipped.
    pub fn ids_stream(&self) -> impl Stream<Item = Result<StoredId>> + Send + '_ {
        self.id_pages(OnRestart::Keep)
            .map_ok(|page| stream::iter(page.ids.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Every stored id under the prefix (connect-redis `ids`): the session ids, or with
    /// [`hash_ids`](super::StoreBuilder::hash_ids) the hashes the keys hold. Address them with
    /// [`get_listed`](RedisStore::get_listed), [`ttl_listed`](RedisStore::ttl_listed) and
    /// [`destroy_listed`](RedisStore::destroy_listed).
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn ids(&self) -> Result<Vec<StoredId>> {
        self.observed_many(Op::Ids, self.ids_unobserved()).await
    }

    async fn ids_unobserved(&self) -> Result<Vec<StoredId>> {
        self.ids_stream().try_collect().await
    }

    /// Number of sessions under the prefix (connect-redis `length`). Exact across failovers:
    /// a server whose scan starts over is counted again from zero.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn length(&self) -> Result<u64> {
        self.observed_many(Op::Length, self.length_unobserved())
            .await
    }

    async fn length_unobserved(&self) -> Result<u64> {
        // Sessions of the finished servers, and of the one being scanned.
        let (done, current) = self
            .id_pages(OnRestart::Forget)
            .try_fold((0u64, 0u64), |(mut done, mut current), page| async move {
                if page.starts_server {
                    done += current;
                    current = 0;
                }
                if page.restarted {
                    current = 0;
                }
                Ok((done, current + page.ids.len() as u64))
            })
            .await?;
        Ok(done + current)
    }

    /// Every session with its stored id, streamed: values are fetched with `MGET` in batches
    /// of `scan_count`. A value that does not decode yields an [`Error::Decode`] item and the
    /// stream goes on; a backend failure ends it.
    pub fn all_stream(&self) -> impl Stream<Item = Result<(StoredId, Session)>> + Send + '_ {
        self.id_batches()
            .and_then(move |ids| self.fetch(ids))
            .map_ok(stream::iter)
            .try_flatten()
    }

    /// Ids in batches of exactly `scan_count` (the last one shorter), across `SCAN` pages: a
    /// page holds about `COUNT` keys, often a few more, so batching page by page would send
    /// two `MGET`/`UNLINK` for many pages (121 instead of 100 for 10,000 sessions).
    fn id_batches(&self) -> impl Stream<Item = Result<Vec<StoredId>>> + Send + '_ {
        self.ids_stream()
            .try_chunks(self.inner.scan_count as usize)
            .map_err(|TryChunksError(_, e)| e)
    }

    async fn fetch(&self, ids: Vec<StoredId>) -> Result<Vec<Result<(StoredId, Session)>>> {
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.inner.keyspace.stored_key(id))
            .collect();
        let values = self.inner.backend.mget(&keys).await?;
        let mut out = Vec::with_capacity(ids.len());
        for ((id, key), value) in ids.iter().zip(keys).zip(values) {
            // Missing: expired or destroyed since the scan saw it.
            let Some(bytes) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let target = Target {
                key,
                id: id.as_str(),
            };
            out.push(self.decode(&target, &bytes).map(|s| (id.clone(), s)));
        }
        Ok(out)
    }

    /// Every session with its stored id (connect-redis `all`).
    ///
    /// # Errors
    /// [`Error::Backend`], or [`Error::Decode`] for the first value that does not decode (use
    /// [`RedisStore::all_stream`] to skip such values).
    pub async fn all(&self) -> Result<Vec<(StoredId, Session)>> {
        self.observed_many(Op::All, self.all_unobserved()).await
    }

    async fn all_unobserved(&self) -> Result<Vec<(StoredId, Session)>> {
        self.all_stream().try_collect().await
    }

    /// Deletes every session under the prefix, in batches of `scan_count` (`UNLINK`), and only
    /// keys its own scan returned, with the per-user indexes under the prefix. Returns how
    /// many sessions were deleted (indexes are not counted).
    ///
    /// # Errors
    /// [`Error::EmptyPrefix`] when the prefix is empty (that would delete every key of the
    /// database); [`Error::Backend`].
    pub async fn clear(&self) -> Result<u64> {
        self.observed_many(Op::Clear, self.clear_unobserved()).await
    }

    async fn clear_unobserved(&self) -> Result<u64> {
        if self.inner.keyspace.prefix().is_empty() {
            return Err(Error::EmptyPrefix);
        }
        let batch = self.inner.scan_count as usize;
        let mut pages = std::pin::pin!(self.id_pages(OnRestart::Keep));
        let (mut keys, mut indexes) = (Vec::new(), Vec::new());
        let mut deleted = 0;
        loop {
            let page = pages.next().await.transpose()?;
            let done = page.is_none();
            if let Some(page) = page {
                keys.extend(page.ids.iter().map(|id| self.inner.keyspace.stored_key(id)));
                indexes.extend(page.indexes);
            }
            // Batches of exactly `scan_count` (see `id_batches`), the rest at the end.
            while keys.len() >= batch || (done && !keys.is_empty()) {
                let rest = keys.split_off(batch.min(keys.len()));
                deleted += self.delete_batch(&keys).await?;
                keys = rest;
            }
            // Per-user indexes: deleted too, never counted.
            if indexes.len() >= batch || (done && !indexes.is_empty()) {
                let _indexes = self.delete_batch(&std::mem::take(&mut indexes)).await?;
            }
            if done {
                return Ok(deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_drops_recent_repeats_and_forgets_old_keys() {
        let mut recent = Recent::new();
        let id = |n: usize| StoredId::parse(&format!("{n:016}")).unwrap();
        assert!(recent.first(&id(0)));
        assert!(!recent.first(&id(0)));
        for n in 1..=RECENT_KEYS {
            assert!(recent.first(&id(n)));
        }
        assert_eq!(recent.order.len(), RECENT_KEYS);
        assert_eq!(recent.seen.len(), RECENT_KEYS);
        assert!(!recent.first(&id(RECENT_KEYS)), "recent: still remembered");
        assert!(recent.first(&id(0)), "pushed out of the window");
    }
}
