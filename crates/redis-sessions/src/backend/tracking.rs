//! A redis-rs connection with RESP3 client-side tracking on, for the store's cache:
//! [`TrackedConnection`], and the two scripts that read and write a key so that Redis keeps
//! tracking it for this connection.
//!
//! Why our own connection rather than redis-rs's `cache-aio` or its `ConnectionManager`:
//! `cache-aio` caches raw replies of `GET` (not `GETEX`, and a hit would still be decrypted
//! and parsed every time), and the `ConnectionManager` forwards push messages through a task
//! of its own, so an invalidation or a disconnection can reach the cache after the reply of a
//! later command. Here the connection's driver hands every push to the [`Tracker`]
//! synchronously, in the order it reads them, so once any reply has arrived every
//! invalidation Redis sent before it has been applied; and a new connection is used only
//! after `CLIENT TRACKING ON NOLOOP` succeeded on it, so no read is ever installed from an
//! untracked connection. Losing a connection (an error that drops it, or the driver noticing
//! it is closed) empties every cache before anything else happens on it.
//!
//! `NOLOOP`: Redis does not tell a connection about the keys it changed itself, so the store
//! drops (or replaces) its own entries on its writes, and tells every other cache on the same
//! connection ([`Tracker::wrote`]). Any change of a key ends its tracking in Redis, for the
//! writer too; the scripts read the key again after changing it, so the connection keeps
//! tracking what the cache holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, PushKind, RedisFuture, Value};

use super::index::{evalsha, LuaScript};
use super::{BackendResult, KeyTtl, SetMode};
use crate::cache::Tracker;

/// `[PEXPIRE key ttl]`, then `GET key` (which makes Redis track the key again after the
/// `PEXPIRE`, a change, ended its tracking), then its `PTTL`: one round trip.
static READ: LuaScript = LuaScript::new(
    r"
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
",
);

/// `SET key value PX ttl XX` (the adapters' save), then, when written, `PTTL key` to track
/// the key again. One fixed script per form of `SET`: a script that builds its command from
/// its arguments costs Redis noticeably more per call.
static WRITE_XX_PX: LuaScript = LuaScript::new(
    "if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'XX') then return redis.call('PTTL', KEYS[1]) end return false",
);
/// `SET key value PX ttl NX` (a create), then `PTTL key`.
static WRITE_NX_PX: LuaScript = LuaScript::new(
    "if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return redis.call('PTTL', KEYS[1]) end return false",
);
/// Any other `SET key value [PX ttl] [NX|XX]`, then `PTTL key`.
static WRITE: LuaScript = LuaScript::new(
    r"
local args = {'SET', KEYS[1], ARGV[1]}
if ARGV[2] ~= '' then args[#args + 1] = 'PX'; args[#args + 1] = ARGV[2] end
if ARGV[3] ~= '' then args[#args + 1] = ARGV[3] end
if not redis.call(unpack(args)) then return false end
return redis.call('PTTL', KEYS[1])
",
);

struct Shared {
    client: Client,
    config: AsyncConnectionConfig,
    tracker: Arc<Tracker>,
    /// The connection in use, tracking on.
    current: Mutex<Option<MultiplexedConnection>>,
    /// Held while a new connection is made, so concurrent callers wait for one.
    connecting: futures_util::lock::Mutex<()>,
    db: i64,
}

/// A redis-rs multiplexed connection with `CLIENT TRACKING ON NOLOOP`, reconnecting on demand
/// (the next command after a lost connection connects again, within the connect timeout).
/// Made by [`RedisBackend::connect_tracked`](crate::RedisBackend::connect_tracked).
#[derive(Clone)]
pub struct TrackedConnection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TrackedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackedConnection").finish_non_exhaustive()
    }
}

impl TrackedConnection {
    /// A tracked connection to `client`'s server (RESP3), made at once.
    pub(crate) async fn connect(
        client: Client,
        connect_timeout: Duration,
        response_timeout: Duration,
        db: i64,
    ) -> redis::RedisResult<TrackedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        let conn = TrackedConnection {
            shared: Arc::new(Shared {
                client,
                config,
                tracker: Arc::new(Tracker::new()),
                current: Mutex::new(None),
                connecting: futures_util::lock::Mutex::new(()),
                db,
            }),
        };
        conn.connection().await?;
        Ok(conn)
    }

    /// The tracker this connection feeds.
    pub(crate) fn tracker(&self) -> &Arc<Tracker> {
        &self.shared.tracker
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The connection in use, or a new one with tracking on.
    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let _connecting = self.shared.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let tracker = Arc::clone(&self.shared.tracker);
        let sink = move |push: redis::PushInfo| -> Result<(), std::convert::Infallible> {
            on_push(&tracker, push);
            Ok(())
        };
        let config = self.shared.config.clone().set_push_sender(sink);
        let mut conn = self
            .shared
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("NOLOOP")
            .exec_async(&mut conn)
            .await?;
        // Whatever the caches hold came through a connection that is gone.
        self.shared.tracker.flush();
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// After an error: a lost connection is dropped (and the caches emptied) before the
    /// error is returned.
    fn check(&self, result: &redis::RedisResult<impl Sized>) {
        let Err(e) = result else { return };
        if e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_io_error() {
            self.shared
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            self.shared.tracker.flush();
        }
    }
}

/// Applies one push message to the caches: invalidated keys dropped; everything dropped on a
/// `null` key list (Redis flushed its tracking table) or a disconnection.
fn on_push(tracker: &Tracker, push: redis::PushInfo) {
    match push.kind {
        PushKind::Invalidate => match push.data.first() {
            Some(Value::Array(keys)) => {
                for key in keys {
                    match key {
                        Value::BulkString(key) => tracker.invalidate(key),
                        Value::SimpleString(key) => tracker.invalidate(key.as_bytes()),
                        _ => tracker.flush(),
                    }
                }
            }
            _ => tracker.flush(),
        },
        PushKind::Disconnection => tracker.flush(),
        _ => {}
    }
}

impl ConnectionLike for TrackedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let fut: BoxFuture<'a, redis::RedisResult<Value>> = Box::pin(async move {
            let mut conn = self.connection().await;
            let result = match &mut conn {
                Ok(conn) => conn.req_packed_command(cmd).await,
                Err(_) => return conn.map(|_| Value::Nil),
            };
            self.check(&result);
            result
        });
        fut
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let fut: BoxFuture<'a, redis::RedisResult<Vec<Value>>> = Box::pin(async move {
            let mut conn = self.connection().await?;
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            self.check(&result);
            result
        });
        fut
    }

    fn get_db(&self) -> i64 {
        self.shared.db
    }
}

fn ttl_of(ms: i64) -> KeyTtl {
    match ms {
        -2 => KeyTtl::Missing,
        -1 => KeyTtl::Persistent,
        ms => KeyTtl::Expires(Duration::from_millis(ms.max(0) as u64)),
    }
}

/// The read script on `backend`'s connection: the value and its TTL, `None` when missing.
pub(crate) async fn read<C>(
    backend: &super::RedisBackend<C>,
    key: &str,
    refresh: Option<Duration>,
) -> BackendResult<Option<(Vec<u8>, KeyTtl)>>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let refresh = refresh.map_or(String::new(), |ttl| super::redis::millis(ttl).to_string());
    let reply: Option<(Vec<u8>, i64)> = evalsha!(backend, READ, [key], [refresh.as_bytes()])?;
    Ok(reply.map(|(value, ms)| (value, ttl_of(ms))))
}

/// The write script: `true` when written (and the key tracked again).
pub(crate) async fn write<C>(
    backend: &super::RedisBackend<C>,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
    mode: SetMode,
) -> BackendResult<bool>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let reply: Option<i64> = match (ttl, mode) {
        (Some(ttl), SetMode::IfPresent) => {
            let ttl = super::redis::millis(ttl).to_string();
            evalsha!(backend, WRITE_XX_PX, [key], [value, ttl.as_bytes()])?
        }
        (Some(ttl), SetMode::IfAbsent) => {
            let ttl = super::redis::millis(ttl).to_string();
            evalsha!(backend, WRITE_NX_PX, [key], [value, ttl.as_bytes()])?
        }
        (ttl, mode) => {
            let ttl = ttl.map_or(String::new(), |ttl| super::redis::millis(ttl).to_string());
            let mode: &[u8] = match mode {
                SetMode::Always => b"",
                SetMode::IfAbsent => b"NX",
                SetMode::IfPresent => b"XX",
            };
            evalsha!(backend, WRITE, [key], [value, ttl.as_bytes(), mode])?
        }
    };
    Ok(reply.is_some())
}
