//! The per-user index operations of the [`Backend`](super::Backend) trait: their argument and
//! reply types, the Lua scripts that run them on one server, and the limit's choice of whom
//! to end, shared by the backends that run the steps themselves (memory, cluster).
//!
//! An index is a Redis hash: field = the session's stored id (the key's suffix), value =
//! `"<created ms>:<written ms>:<sha1>"` (Unix milliseconds of the session's first indexed
//! write, never moved, and of its last write; the hex SHA-1 of the value bytes that write
//! stored). Its TTL follows its longest-lived member plus [`INDEX_SLACK`](crate::INDEX_SLACK).
//!
//! The hash tells whether a member still describes its session: a session rewritten without
//! this user (moved to another user, or its user field removed) has another value, so its
//! member no longer matches. The limit counts only matching members, and a revoke deletes a
//! session only while its value is the one it checked ([`Backend::delete_indexed`]). Values
//! written before the hash was recorded (`"<created>:<written>"`) parse with an unknown hash:
//! the store reads such a session to learn its user, and the limit counts it while it exists.
//!
//! [`Backend::delete_indexed`]: super::Backend::delete_indexed

use std::time::Duration;

use super::KeyTtl;

/// What to do when a new session would pass [`max_sessions_per_user`].
///
/// [`max_sessions_per_user`]: crate::StoreBuilder::max_sessions_per_user
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitPolicy {
    /// End the user's least recently used sessions to make room (Spring Security's default).
    EndLeastRecentlyUsed,
    /// Refuse the new session ([`Outcome::LimitReached`](crate::Outcome::LimitReached)).
    Refuse,
}

/// A limit on sessions per user, checked when a session joins its user's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimit {
    /// The most sessions a user may have (at least 1).
    pub max: u32,
    /// What happens to a session past the limit.
    pub policy: LimitPolicy,
}

/// One session write together with its index update ([`Backend::write_indexed`]).
///
/// [`Backend::write_indexed`]: super::Backend::write_indexed
#[derive(Clone, Copy, Debug)]
pub struct IndexedWrite<'a> {
    /// The session's key.
    pub key: &'a str,
    /// The session's encoded value.
    pub value: &'a [u8],
    /// The session key's TTL (`None`: no expiry).
    pub ttl: Option<Duration>,
    /// `SET`'s condition.
    pub mode: super::SetMode,
    /// The index's key.
    pub index: &'a str,
    /// The index member: the session's stored id (`key` without `prefix`).
    pub member: &'a str,
    /// The key prefix: `prefix + member` is a member's session key.
    pub prefix: &'a str,
    /// The index's TTL after this write, at least (`None`: the index must not expire).
    pub index_ttl: Option<Duration>,
    /// Now, in Unix milliseconds, as the store sees it (recorded as the write time).
    pub now_ms: u64,
    /// The idle timeout, to tell when a member was last used (`idle - PTTL` ago).
    pub idle: Option<Duration>,
    /// The limit to apply when `member` is new to the index.
    pub limit: Option<SessionLimit>,
    /// A compare-and-set: write only while the session holds the value with this hex SHA-1
    /// (`mode` is then [`SetMode::IfPresent`](super::SetMode::IfPresent)). On a mismatch
    /// nothing is written and [`IndexedReply::current`] carries the value stored now.
    pub expected_sha1: Option<&'a str>,
}

/// What [`Backend::write_indexed`](super::Backend::write_indexed) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexedReply {
    /// The session was written (else `SET`'s condition failed, or the limit refused it).
    pub written: bool,
    /// The limit's [`LimitPolicy::Refuse`] refused the session; nothing was written (on a
    /// cluster, a session written and then found past the limit was ended again).
    pub refused: bool,
    /// How many of the user's sessions the limit ended to make room.
    pub evicted: u64,
    /// A compare-and-set ([`IndexedWrite::expected_sha1`]) found another value: the value
    /// stored now (nothing was written). `None` with `written` false: the session is gone.
    pub current: Option<Vec<u8>>,
}

impl IndexedReply {
    /// A reply with only `written` set.
    pub fn written(written: bool) -> IndexedReply {
        IndexedReply {
            written,
            ..IndexedReply::default()
        }
    }

    /// A reply saying the limit refused the session.
    pub fn refused() -> IndexedReply {
        IndexedReply {
            refused: true,
            ..IndexedReply::default()
        }
    }

    /// A reply with `written` and how many sessions were ended.
    pub fn with_evicted(written: bool, evicted: u64) -> IndexedReply {
        IndexedReply {
            written,
            refused: false,
            evicted,
            current: None,
        }
    }

    /// A compare-and-set's mismatch: nothing written; the value stored now.
    pub fn changed(current: Vec<u8>) -> IndexedReply {
        IndexedReply {
            current: Some(current),
            ..IndexedReply::default()
        }
    }
}

/// What a compare-and-set ([`Backend::set_if_value`](super::Backend::set_if_value)) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueSwap {
    /// The key held the expected value: the new one is written.
    Written,
    /// The key holds another value (this one): nothing was written.
    Changed(Vec<u8>),
    /// The key does not exist: nothing was written.
    Missing,
}

/// An index member's value, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexMember {
    /// Unix ms of the session's first write with this user (never moved).
    pub created_ms: u64,
    /// Unix ms of its last write.
    pub written_ms: u64,
    /// The hex SHA-1 of the value that write stored; `None` for a member written before the
    /// hash was recorded (`"created:written"`).
    pub sha1: Option<String>,
}

impl IndexMember {
    /// Parses `"created:written:sha1"` or the older `"created:written"`; `None` for anything
    /// else.
    pub fn parse(value: &[u8]) -> Option<IndexMember> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.splitn(3, ':');
        let created_ms = parts.next()?.parse().ok()?;
        let written_ms = parts.next()?.parse().ok()?;
        let sha1 = match parts.next() {
            None => None,
            Some(h) if h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(h.to_ascii_lowercase())
            }
            Some(_) => return None,
        };
        Some(IndexMember {
            created_ms,
            written_ms,
            sha1,
        })
    }

    /// Whether the member still describes a session whose stored value is `value`: its
    /// hash matches, or it has none (an old member: unknown, counted as matching).
    pub fn matches(&self, value: &[u8]) -> bool {
        self.sha1.as_deref().is_none_or(|h| h == value_sha1(value))
    }
}

/// The created and written times of an index member (either format).
pub fn parse_member_times(value: &[u8]) -> Option<(u64, u64)> {
    IndexMember::parse(value).map(|m| (m.created_ms, m.written_ms))
}

/// An index member's value for a write of `value`.
pub fn member_value(created_ms: u64, written_ms: u64, value: &[u8]) -> String {
    format!("{created_ms}:{written_ms}:{}", value_sha1(value))
}

/// The lowercase hex SHA-1 of a stored session value, as Lua's `redis.sha1hex` gives it.
pub fn value_sha1(value: &[u8]) -> String {
    sha1_smol::Sha1::from(value).digest().to_string()
}

/// What [`Backend::delete_indexed`](super::Backend::delete_indexed) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexedDelete {
    /// The session held the expected value: it was deleted and its member removed.
    Deleted,
    /// The session did not exist; its member was removed.
    Missing,
    /// The session holds another value than expected (it was rewritten since it was
    /// read): nothing was deleted. Read it again to decide.
    Changed,
}

/// When a member was last used, in Unix ms: its last write, or under an idle timeout the
/// last read that re-armed its TTL (`idle - PTTL` ago), whichever is later.
pub fn last_used_ms(written_ms: u64, ttl: KeyTtl, idle: Option<Duration>, now_ms: u64) -> u64 {
    match (idle, ttl) {
        (Some(idle), KeyTtl::Expires(left)) => {
            let since = idle.saturating_sub(left).as_millis() as u64;
            written_ms.max(now_ms.saturating_sub(since))
        }
        _ => written_ms,
    }
}

/// The limit's decision for a new member, given the index's live members with their last
/// use: `None` to refuse, or the members to end, least recently used first.
pub fn choose_evictions<M>(mut live: Vec<(M, u64)>, limit: SessionLimit) -> Option<Vec<M>> {
    let max = limit.max.max(1) as usize;
    if live.len() < max {
        return Some(Vec::new());
    }
    if limit.policy == LimitPolicy::Refuse {
        return None;
    }
    live.sort_by_key(|(_, used)| *used);
    let excess = live.len() + 1 - max;
    Some(live.into_iter().take(excess).map(|(m, _)| m).collect())
}

/// The members past the limit once the new member is written (the Cluster backend ends them
/// after the write): given the index's live members
/// with their last use, the new one among them, every member but the `max` most recently
/// used, least recently used first. Ties in last use go by member, so every step that sees
/// the same members makes the same choice (a new member may then be among those ended).
pub fn past_the_limit<M: Ord>(mut live: Vec<(M, u64)>, max: u32) -> Vec<M> {
    let max = max.max(1) as usize;
    if live.len() <= max {
        return Vec::new();
    }
    live.sort_by(|(a, used_a), (b, used_b)| used_a.cmp(used_b).then_with(|| a.cmp(b)));
    let excess = live.len() - max;
    live.into_iter().take(excess).map(|(m, _)| m).collect()
}

#[cfg(feature = "redis")]
mod scripts;
#[cfg(feature = "redis")]
pub(crate) use scripts::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_values_round_trip_and_reject_garbage() {
        let value = member_value(5, 9, b"{}");
        let member = IndexMember::parse(value.as_bytes()).unwrap();
        assert_eq!((member.created_ms, member.written_ms), (5, 9));
        // SHA-1 of "{}", as `redis.sha1hex('{}')` gives it.
        assert_eq!(
            member.sha1.as_deref(),
            Some("bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f")
        );
        assert!(member.matches(b"{}"));
        assert!(!member.matches(b"{ }"));
        // The format before the hash: accepted, hash unknown (matches anything).
        let old = IndexMember::parse(b"5:9").unwrap();
        assert_eq!(old.sha1, None);
        assert!(old.matches(b"anything"));
        assert_eq!(parse_member_times(b"5:9"), Some((5, 9)));
        assert_eq!(parse_member_times(b"5:9:nothex"), None);
        assert_eq!(parse_member_times(b"5"), None);
        assert_eq!(parse_member_times(b"a:b"), None);
        assert_eq!(parse_member_times(b"\xff:1"), None);
    }

    #[test]
    fn last_use_comes_from_the_ttl_under_an_idle_timeout() {
        let idle = Some(Duration::from_secs(10));
        let left = KeyTtl::Expires(Duration::from_secs(7));
        assert_eq!(last_used_ms(1_000, left, idle, 100_000), 97_000);
        assert_eq!(last_used_ms(99_000, left, idle, 100_000), 99_000);
        assert_eq!(last_used_ms(1_000, left, None, 100_000), 1_000);
    }

    #[test]
    fn the_limit_ends_the_least_recently_used_or_refuses() {
        let live = vec![("a".into(), 3), ("b".into(), 1), ("c".into(), 2)];
        let lru = SessionLimit {
            max: 3,
            policy: LimitPolicy::EndLeastRecentlyUsed,
        };
        assert_eq!(
            choose_evictions(live.clone(), lru),
            Some(vec!["b".to_owned()])
        );
        let two = SessionLimit { max: 2, ..lru };
        assert_eq!(
            choose_evictions(live.clone(), two),
            Some(vec!["b".to_owned(), "c".to_owned()])
        );
        let refuse = SessionLimit {
            max: 3,
            policy: LimitPolicy::Refuse,
        };
        assert_eq!(choose_evictions(live.clone(), refuse), None);
        let four = SessionLimit { max: 4, ..refuse };
        assert_eq!(choose_evictions(live, four), Some(vec![]));
    }

    #[test]
    fn past_the_limit_keeps_the_most_recently_used_and_breaks_ties_by_member() {
        let live = vec![("new", 5), ("a", 3), ("b", 1), ("c", 5)];
        assert_eq!(past_the_limit(live.clone(), 4), Vec::<&str>::new());
        assert_eq!(past_the_limit(live.clone(), 3), ["b"]);
        assert_eq!(past_the_limit(live.clone(), 2), ["b", "a"]);
        // "c" and "new" were used in the same millisecond: "c" sorts first, so it goes.
        assert_eq!(past_the_limit(live.clone(), 1), ["b", "a", "c"]);
        // The order the members come in does not change the choice.
        let mut reversed = live;
        reversed.reverse();
        assert_eq!(past_the_limit(reversed, 1), ["b", "a", "c"]);
    }
}
