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
    /// The limit's [`LimitPolicy::Refuse`] refused the session; nothing was written.
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

/// The write with its index update on one server, atomically.
///
/// KEYS: session key, index key. ARGV: value, session TTL ms (0: none), mode (`A`, `N`, `X`),
/// member, now ms, index TTL ms (0: the index must not expire), limit (0: none), policy (`L`
/// end the least recently used, `R` refuse), idle ms (0: none), prefix, expected SHA-1 of the
/// stored value (empty: no compare-and-set).
///
/// Returns `{status, evicted, current}`: status 1 written, 0 `SET`'s condition failed (or,
/// with an expected SHA-1, the session is gone), -1 refused by the limit, 2 the session holds
/// another value than expected (`current`, nothing written); `current` is nil otherwise. The limit counts a member only while its session exists and, when the member
/// records a hash, still holds the value it records: a member whose session was rewritten
/// without this user (moved, or unindexed) is stale and removed.
/// The members the limit ends are read and deleted by `prefix .. member`: keys not declared
/// in KEYS, which one server allows (the script never runs on a cluster).
#[cfg(feature = "redis")]
pub(crate) static WRITE_INDEXED: LuaScript = LuaScript::new(
    r"
local key, idx = KEYS[1], KEYS[2]
local mode = ARGV[3]
if ARGV[11] ~= '' then
  local v = redis.call('GET', key)
  if v == false then return {0, 0, false} end
  if redis.sha1hex(v) ~= ARGV[11] then return {2, 0, v} end
end
local exists = redis.call('EXISTS', key) == 1
if (mode == 'N' and exists) or (mode == 'X' and not exists) then
  return {0, 0, false}
end
local member, now = ARGV[4], tonumber(ARGV[5])
local old = redis.call('HGET', idx, member)
local created = now
if old then
  created = tonumber(string.match(old, '^(%d+):')) or now
end
local evicted = 0
local limit = tonumber(ARGV[7])
if not old and limit > 0 then
  local idle = tonumber(ARGV[9])
  local all = redis.call('HGETALL', idx)
  local live = {}
  for i = 1, #all, 2 do
    local m, times = all[i], all[i + 1]
    local skey = ARGV[10] .. m
    local pttl = redis.call('PTTL', skey)
    local sha = string.match(times, '^%d+:%d+:(%x+)$')
    local moved = false
    if pttl ~= -2 and sha then
      local v = redis.pcall('GET', skey)
      moved = type(v) ~= 'string' or redis.sha1hex(v) ~= sha
    end
    if pttl == -2 or moved then
      redis.call('HDEL', idx, m)
    else
      local written = tonumber(string.match(times, '^%d+:(%d+)')) or 0
      local used = written
      if idle > 0 and pttl >= 0 then
        used = math.max(written, now - math.max(idle - pttl, 0))
      end
      live[#live + 1] = {m, used}
    end
  end
  if #live >= limit then
    if ARGV[8] == 'R' then
      return {-1, 0, false}
    end
    table.sort(live, function(a, b) return a[2] < b[2] end)
    for i = 1, #live + 1 - limit do
      redis.call('UNLINK', ARGV[10] .. live[i][1])
      redis.call('HDEL', idx, live[i][1])
      evicted = evicted + 1
    end
  end
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', key, ARGV[1], 'PX', ttl)
else
  redis.call('SET', key, ARGV[1])
end
local had_index = redis.call('EXISTS', idx) == 1
redis.call('HSET', idx, member, created .. ':' .. now .. ':' .. redis.sha1hex(ARGV[1]))
local ittl = tonumber(ARGV[6])
if ittl == 0 then
  redis.call('PERSIST', idx)
elseif had_index then
  redis.call('PEXPIRE', idx, ittl, 'GT')
else
  redis.call('PEXPIRE', idx, ittl)
end
return {1, evicted, false}
",
);

/// The index half of a write, on the index's own server (Cluster, step one).
///
/// KEYS: index key. ARGV: member, now ms, index TTL ms (0: must not expire), the value's
/// SHA-1. Returns the member's previous value, or an empty string when it is new to the
/// index (so a failed `SET` can put the index back as it was).
#[cfg(feature = "cluster")]
pub(crate) static INDEX_ADD: LuaScript = LuaScript::new(
    r"
local idx, member, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local had_index = redis.call('EXISTS', idx) == 1
local old = redis.call('HGET', idx, member)
local created = now
if old then
  created = tonumber(string.match(old, '^(%d+):')) or now
end
redis.call('HSET', idx, member, created .. ':' .. now .. ':' .. ARGV[4])
local ittl = tonumber(ARGV[3])
if ittl == 0 then
  redis.call('PERSIST', idx)
elseif had_index then
  redis.call('PEXPIRE', idx, ittl, 'GT')
else
  redis.call('PEXPIRE', idx, ittl)
end
return old or ''
",
);

/// Puts a member back after a successful `SET` (Cluster, step three) when it is missing: a
/// listing or revoke that ran between steps one and two found the member without its session
/// (a create not landed yet) or naming another user (a move not landed yet), judged it stale
/// and removed it; without this the session would be live and unindexed. A member present is
/// left as it is (a later write of the session may have put its own value there).
///
/// KEYS: index key. ARGV: member, the member's value, index TTL ms (0: must not expire).
/// Returns 1 when the member was put back, else 0.
#[cfg(feature = "cluster")]
pub(crate) static INDEX_READD: LuaScript = LuaScript::new(
    r"
local idx, member = KEYS[1], ARGV[1]
if redis.call('HGET', idx, member) then return 0 end
local had_index = redis.call('EXISTS', idx) == 1
redis.call('HSET', idx, member, ARGV[2])
local ittl = tonumber(ARGV[3])
if ittl == 0 then
  redis.call('PERSIST', idx)
elseif had_index then
  redis.call('PEXPIRE', idx, ittl, 'GT')
else
  redis.call('PEXPIRE', idx, ittl)
end
return 1
",
);

/// Puts a member back after a failed `SET` (Cluster): the previous value when it had one,
/// else removed; only while the member still holds what this write put there.
///
/// KEYS: index key. ARGV: member, the value this write put, the previous value (empty: none).
#[cfg(feature = "cluster")]
pub(crate) static INDEX_UNDO: LuaScript = LuaScript::new(
    r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
",
);

/// Deletes a session only while it holds the value with the expected SHA-1 (Cluster: the
/// session's own slot; its index member is removed by a second command).
///
/// KEYS: session key. ARGV: expected SHA-1. Returns 1 deleted, 0 missing, 2 changed.
#[cfg(feature = "cluster")]
pub(crate) static DELETE_IF_VALUE: LuaScript = LuaScript::new(
    r"
local v = redis.pcall('GET', KEYS[1])
if v == false then return 0 end
if type(v) ~= 'string' or redis.sha1hex(v) ~= ARGV[1] then return 2 end
redis.call('UNLINK', KEYS[1])
return 1
",
);

/// Deletes a session and its index member, only while the session holds the value with the
/// expected SHA-1 (one server, atomically).
///
/// KEYS: session key, index key. ARGV: member, expected SHA-1. Returns 1 deleted (and the
/// member removed), 0 missing (the member removed), 2 changed (nothing done).
#[cfg(feature = "redis")]
pub(crate) static DELETE_INDEXED: LuaScript = LuaScript::new(
    r"
local v = redis.pcall('GET', KEYS[1])
if v == false then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
if type(v) ~= 'string' or redis.sha1hex(v) ~= ARGV[2] then return 2 end
redis.call('UNLINK', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
",
);

/// Compare-and-set of one key (one server, and a cluster key's own slot).
///
/// KEYS: session key. ARGV: value, expected SHA-1, TTL ms (0: none). Returns `{status,
/// current}`: 1 written, 0 missing, 2 changed (`current`: the value stored now).
#[cfg(feature = "redis")]
pub(crate) static SET_IF_VALUE: LuaScript = LuaScript::new(
    r"
local v = redis.call('GET', KEYS[1])
if v == false then return {0, false} end
if redis.sha1hex(v) ~= ARGV[2] then return {2, v} end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return {1, false}
",
);

/// A script's reply to a conditional delete (1 deleted, 0 missing, 2 changed).
#[cfg(feature = "redis")]
pub(crate) fn indexed_delete(status: i64) -> IndexedDelete {
    match status {
        1 => IndexedDelete::Deleted,
        0 => IndexedDelete::Missing,
        _ => IndexedDelete::Changed,
    }
}

/// A compare-and-set script's reply (1 written, 0 missing, 2 changed with the value now).
#[cfg(feature = "redis")]
pub(crate) fn value_swap(status: i64, current: Option<Vec<u8>>) -> ValueSwap {
    match (status, current) {
        (1, _) => ValueSwap::Written,
        (2, Some(current)) => ValueSwap::Changed(current),
        _ => ValueSwap::Missing,
    }
}

/// `EVALSHA` of `script`, loading it on `NOSCRIPT` (a restarted or flushed server), through
/// a backend's `command` (so the Sentinel backend's failover handling applies).
#[cfg(feature = "redis")]
macro_rules! evalsha {
    ($self:expr, $script:expr, $keys:expr, $args:expr) => {{
        let script: &$crate::backend::index::LuaScript = &$script;
        let sha = script.sha();
        let build = |sha: &str| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha).arg($keys.len());
            for k in $keys {
                cmd.arg(k);
            }
            for a in $args {
                cmd.arg(a);
            }
            cmd
        };
        match $self.command(&build(sha)).await {
            Err(e) if $crate::backend::index::is_noscript(&e) => {
                let _: String = $self
                    .command(redis::cmd("SCRIPT").arg("LOAD").arg(script.code))
                    .await?;
                $self.command(&build(sha)).await
            }
            other => other,
        }
    }};
}
#[cfg(feature = "redis")]
pub(crate) use evalsha;

/// The index operations on one server (standalone and Sentinel), for a backend with a
/// `command(&Cmd)` method.
#[cfg(feature = "redis")]
macro_rules! one_server_index_ops {
    () => {
        async fn write_indexed(
            &self,
            w: &$crate::backend::IndexedWrite<'_>,
        ) -> BackendResult<$crate::backend::IndexedReply> {
            use $crate::backend::index::{millis_or_zero, LimitPolicy};
            let (limit, policy) = match w.limit {
                Some(l) => (
                    l.max.max(1),
                    if l.policy == LimitPolicy::Refuse {
                        "R"
                    } else {
                        "L"
                    },
                ),
                None => (0, "L"),
            };
            let mode = match w.mode {
                SetMode::Always => "A",
                SetMode::IfAbsent => "N",
                SetMode::IfPresent => "X",
            };
            let (ttl, now, index_ttl, limit, idle) = (
                millis_or_zero(w.ttl).to_string(),
                w.now_ms.to_string(),
                millis_or_zero(w.index_ttl).to_string(),
                limit.to_string(),
                millis_or_zero(w.idle).to_string(),
            );
            let args: [&[u8]; 11] = [
                w.value,
                ttl.as_bytes(),
                mode.as_bytes(),
                w.member.as_bytes(),
                now.as_bytes(),
                index_ttl.as_bytes(),
                limit.as_bytes(),
                policy.as_bytes(),
                idle.as_bytes(),
                w.prefix.as_bytes(),
                w.expected_sha1.unwrap_or_default().as_bytes(),
            ];
            let (status, evicted, current): (i64, u64, Option<Vec<u8>>) =
                $crate::backend::index::evalsha!(
                self,
                $crate::backend::index::WRITE_INDEXED,
                [w.key, w.index],
                args
            )?;
            Ok(match (status, current) {
                (-1, _) => $crate::backend::IndexedReply::refused(),
                (2, Some(current)) => $crate::backend::IndexedReply::changed(current),
                (s, _) => $crate::backend::IndexedReply::with_evicted(s == 1, evicted),
            })
        }

        async fn set_if_value(
            &self,
            key: &str,
            value: &[u8],
            ttl: Option<Duration>,
            expected_sha1: &str,
        ) -> BackendResult<$crate::backend::ValueSwap> {
            let ttl = $crate::backend::index::millis_or_zero(ttl).to_string();
            let args: [&[u8]; 3] = [value, expected_sha1.as_bytes(), ttl.as_bytes()];
            let (status, current): (i64, Option<Vec<u8>>) = $crate::backend::index::evalsha!(
                self,
                $crate::backend::index::SET_IF_VALUE,
                [key],
                args
            )?;
            Ok($crate::backend::index::value_swap(status, current))
        }

        async fn index_members(&self, index: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
            self.command(redis::cmd("HGETALL").arg(index)).await
        }

        async fn delete_indexed(
            &self,
            key: &str,
            index: &str,
            member: &str,
            expected_sha1: &str,
        ) -> BackendResult<$crate::backend::IndexedDelete> {
            let status: i64 = $crate::backend::index::evalsha!(
                self,
                $crate::backend::index::DELETE_INDEXED,
                [key, index],
                [member, expected_sha1]
            )?;
            Ok($crate::backend::index::indexed_delete(status))
        }

        async fn index_remove(&self, index: &str, members: &[String]) -> BackendResult<u64> {
            if members.is_empty() {
                return Ok(0);
            }
            self.command(redis::cmd("HDEL").arg(index).arg(members))
                .await
        }

        async fn index_extend(&self, index: &str, ttl: Duration) -> BackendResult<()> {
            let _: i64 = self
                .command(
                    redis::cmd("PEXPIRE")
                        .arg(index)
                        .arg($crate::backend::redis::millis(ttl))
                        .arg("GT"),
                )
                .await?;
            Ok(())
        }
    };
}
#[cfg(feature = "redis")]
pub(crate) use one_server_index_ops;

/// Milliseconds of a duration, at least 1; 0 for none.
#[cfg(feature = "redis")]
pub(crate) fn millis_or_zero(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

#[cfg(feature = "redis")]
/// A Lua script and its SHA-1 (computed once), as `EVALSHA` names it.
pub(crate) struct LuaScript {
    /// The script's text, for `SCRIPT LOAD`.
    pub(crate) code: &'static str,
    sha: std::sync::OnceLock<String>,
}

#[cfg(feature = "redis")]
impl LuaScript {
    pub(crate) const fn new(code: &'static str) -> LuaScript {
        LuaScript {
            code,
            sha: std::sync::OnceLock::new(),
        }
    }

    /// The script's SHA-1 in hex.
    pub(crate) fn sha(&self) -> &str {
        self.sha
            .get_or_init(|| redis::Script::new(self.code).get_hash().to_owned())
    }
}

/// The server does not know the script (it restarted, or `SCRIPT FLUSH` ran).
#[cfg(feature = "redis")]
pub(crate) fn is_noscript(e: &crate::error::BackendError) -> bool {
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(|e| e.code() == Some("NOSCRIPT"))
}

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
}
