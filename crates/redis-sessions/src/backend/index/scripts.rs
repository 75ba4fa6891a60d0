//! The Lua scripts that run the index operations on one server (and the Cluster's
//! single-slot steps), and how the backends call them: `EVALSHA`, loading the script on
//! `NOSCRIPT`.

use std::time::Duration;

use super::{IndexedDelete, ValueSwap};

/// The write with its index update on one server, atomically.
///
/// KEYS: session key, index key. ARGV: value, session TTL ms (0: none), mode (`A`, `N`, `X`),
/// member, now ms, index TTL ms (0: the index must not expire), limit (0: none), policy (`L`
/// end the least recently used, `R` refuse), idle ms (0: none), prefix, expected SHA-1 of the
/// stored value (empty: no compare-and-set).
///
/// Returns `{status, evicted, current}`: status 1 written, 0 `SET`'s condition failed (or,
/// with an expected SHA-1, the session is gone), -1 refused by the limit, 2 the session holds
/// another value than expected (`current`, nothing written); `current` is nil otherwise.
/// The limit counts a member only while its session exists and, when the member records a
/// hash, still holds the value it records: a member whose session was rewritten without this
/// user (moved, or unindexed) is stale and removed.
/// The members the limit ends are read and deleted by `prefix .. member`: keys not declared
/// in KEYS, which one server allows (the script never runs on a cluster).
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
pub(crate) fn indexed_delete(status: i64) -> IndexedDelete {
    match status {
        1 => IndexedDelete::Deleted,
        0 => IndexedDelete::Missing,
        _ => IndexedDelete::Changed,
    }
}

/// A compare-and-set script's reply (1 written, 0 missing, 2 changed with the value now).
pub(crate) fn value_swap(status: i64, current: Option<Vec<u8>>) -> ValueSwap {
    match (status, current) {
        (1, _) => ValueSwap::Written,
        (2, Some(current)) => ValueSwap::Changed(current),
        _ => ValueSwap::Missing,
    }
}

/// `EVALSHA` of `script`, loading it on `NOSCRIPT` (a restarted or flushed server), through
/// a backend's `command` (so the Sentinel backend's failover handling applies).
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
pub(crate) use evalsha;

/// The index operations on one server (standalone and Sentinel), for a backend with a
/// `command(&Cmd)` method.
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
pub(crate) use one_server_index_ops;

/// Milliseconds of a duration, at least 1; 0 for none.
pub(crate) fn millis_or_zero(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

/// A Lua script and its SHA-1 (computed once), as `EVALSHA` names it.
pub(crate) struct LuaScript {
    /// The script's text, for `SCRIPT LOAD`.
    pub(crate) code: &'static str,
    sha: std::sync::OnceLock<String>,
}

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
pub(crate) fn is_noscript(e: &crate::error::BackendError) -> bool {
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(|e| e.code() == Some("NOSCRIPT"))
}
