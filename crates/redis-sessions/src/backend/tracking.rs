//! A redis-rs connection with RESP3 client-side tracking on, for the store's cache:
//! [`TrackedConnection`], and the read and write it does for the cache.
//!
//! Why our own connection rather than redis-rs's `cache-aio` or its `ConnectionManager`:
//! `cache-aio` caches raw replies of `GET` (not `GETEX`, and a hit would still be decrypted
//! and parsed every time), and the `ConnectionManager` forwards push messages through a task
//! of its own, so an invalidation or a disconnection can reach the cache after the reply of a
//! later command. Here the connection's driver hands every push to the [`Tracker`]
//! synchronously, in the order it reads them, so once any reply has arrived every
//! invalidation Redis sent before it has been applied; and a new connection is used only
//! after `CLIENT TRACKING ON` succeeded on it, so no read is ever installed from an untracked
//! connection. Losing a connection (an error that drops it, or the driver noticing it is
//! closed) empties every cache before anything else happens on it.
//!
//! Broadcasting mode (`BCAST PREFIX p ... NOLOOP`, with the [prefixes](Tracker::prefixes) of
//! the stores whose caches are registered): Redis reports every change of any key under those
//! prefixes by another connection, whether or not this connection read it. So the cache's
//! commands are the plain ones (a miss is one `GETEX`, or `GET` and `PTTL` pipelined; a save
//! one `SET`), where the default mode needs a script that reads a key again after each
//! change of it (a change ends the key's tracking, for the writer too). The cost: every
//! application instance hears of the other instances' writes of sessions, including sessions
//! it does not hold (a push of the key's name each). `NOLOOP`: Redis does not tell a
//! connection about the keys it changed itself, so the store drops (or replaces) its own
//! entries on its writes, and tells every other cache on the same connection
//! ([`Tracker::wrote`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, PushKind, RedisFuture, Value};

use super::{Backend, BackendResult, KeyTtl};
use crate::cache::Tracker;

/// A connection with tracking on.
struct Current {
    conn: MultiplexedConnection,
    /// The generation of the tracker's prefixes it tracks.
    generation: u64,
    /// Set once a connection tracking more prefixes replaced it: its closing is no loss.
    retired: Arc<AtomicBool>,
}

struct Shared {
    client: Client,
    config: AsyncConnectionConfig,
    tracker: Arc<Tracker>,
    /// The connection in use, tracking on.
    current: Mutex<Option<Current>>,
    /// Held while a new connection is made, so concurrent callers wait for one.
    connecting: futures_util::lock::Mutex<()>,
    db: i64,
}

/// A redis-rs multiplexed connection with `CLIENT TRACKING ON BCAST PREFIX ... NOLOOP` for the
/// prefixes of the stores whose caches use it, reconnecting on demand (the next command after
/// a lost connection connects again, within the connect timeout; so does the next command
/// after a store with a new prefix registered its cache).
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
    /// A tracked connection to `client`'s server (RESP3), made at once, with a tracker of its
    /// own.
    pub(crate) async fn connect(
        client: Client,
        connect_timeout: Duration,
        response_timeout: Duration,
        db: i64,
    ) -> redis::RedisResult<TrackedConnection> {
        let tracker = Arc::new(Tracker::new());
        Self::connect_feeding(client, connect_timeout, response_timeout, db, tracker).await
    }

    /// A tracked connection to `client`'s server (RESP3), made at once, feeding `tracker`
    /// (which may outlive it: a Sentinel backend gives the same tracker to the connection to
    /// each primary it switches to).
    pub(crate) async fn connect_feeding(
        client: Client,
        connect_timeout: Duration,
        response_timeout: Duration,
        db: i64,
        tracker: Arc<Tracker>,
    ) -> redis::RedisResult<TrackedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        let conn = TrackedConnection {
            shared: Arc::new(Shared {
                client,
                config,
                tracker,
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

    /// The connection in use, if it tracks the prefixes of `generation`.
    fn current(&self, generation: u64) -> Option<MultiplexedConnection> {
        match &*self
            .shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            Some(current) if current.generation == generation => Some(current.conn.clone()),
            _ => None,
        }
    }

    /// The multiplexed connection in use (tracking on), made first if there is none, for
    /// commands that need redis-rs's own handle (`WAIT` with a longer response timeout).
    #[cfg(feature = "sentinel")]
    pub(crate) async fn multiplexed(&self) -> redis::RedisResult<MultiplexedConnection> {
        let conn = self.connection().await;
        self.check(&conn);
        conn
    }

    /// The connection in use, or a new one with tracking on for the tracker's prefixes.
    ///
    /// A connection is replaced when a store registered a new prefix since it was made: the
    /// new one tracks a superset of its keys (the tracker's prefixes only ever cover more), and
    /// the old one is kept open, reporting changes, until tracking is on on the new one, so no
    /// change goes unreported and the caches keep their entries. A first connection, or one
    /// after a loss, empties the caches.
    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let tracker = Arc::clone(&self.shared.tracker);
        let (_, generation) = tracker.prefixes();
        if let Some(conn) = self.current(generation) {
            return Ok(conn);
        }
        let _connecting = self.shared.connecting.lock().await;
        let (prefixes, generation) = tracker.prefixes();
        if let Some(conn) = self.current(generation) {
            return Ok(conn);
        }
        // Nobody sends on the old one from here on (callers wait for the new one), but it
        // lives, reporting changes, until the new one tracks.
        let old = self
            .shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let retired = Arc::new(AtomicBool::new(false));
        let sink = {
            let retired = Arc::clone(&retired);
            move |push: redis::PushInfo| -> Result<(), std::convert::Infallible> {
                if !(push.kind == PushKind::Disconnection && retired.load(Ordering::Acquire)) {
                    on_push(&tracker, push);
                }
                Ok(())
            }
        };
        let config = self.shared.config.clone().set_push_sender(sink);
        let made = async {
            let mut conn = self
                .shared
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            tracking_on(&prefixes).exec_async(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = match made.await {
            Ok(conn) => conn,
            Err(e) => {
                // The old one (if any) closes with nothing tracking in its place.
                self.shared.tracker.flush();
                return Err(e);
            }
        };
        match old {
            Some(old) => old.retired.store(true, Ordering::Release),
            // Whatever the caches hold came through a connection that is gone.
            None => self.shared.tracker.flush(),
        }
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Current {
            conn: conn.clone(),
            generation,
            retired,
        });
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

/// `CLIENT TRACKING ON BCAST [PREFIX p]... NOLOOP`; with no prefix (no cache registered
/// yet) the default mode, which tracks only what the connection reads: it proves the
/// permission and the protocol, and nothing is cached until a store registers.
fn tracking_on(prefixes: &[String]) -> Cmd {
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("TRACKING").arg("ON");
    if !prefixes.is_empty() {
        cmd.arg("BCAST");
        // An empty prefix is every key: BCAST alone.
        for prefix in prefixes.iter().filter(|p| !p.is_empty()) {
            cmd.arg("PREFIX").arg(prefix);
        }
    }
    cmd.arg("NOLOOP");
    cmd
}

fn ttl_of(ms: i64) -> KeyTtl {
    match ms {
        -2 => KeyTtl::Missing,
        -1 => KeyTtl::Persistent,
        ms => KeyTtl::Expires(Duration::from_millis(ms.max(0) as u64)),
    }
}

/// A backend that can send several commands in one round trip (a pipeline, not a
/// transaction), for the cache's read without `GETEX`.
pub(crate) trait Pipelined: Backend {
    fn send_pipeline<T: redis::FromRedisValue + Send>(
        &self,
        pipe: &Pipeline,
    ) -> impl std::future::Future<Output = BackendResult<T>> + Send;
}

impl<C> Pipelined for super::RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn send_pipeline<T: redis::FromRedisValue + Send>(
        &self,
        pipe: &Pipeline,
    ) -> BackendResult<T> {
        self.pipeline(pipe).await
    }
}

/// A read for the cache on a tracked connection: the value and its TTL, `None` when missing.
/// With `refresh` one `GETEX PX` (the TTL is then the one just set); without, `GET` and
/// `PTTL` in one round trip.
pub(crate) async fn read<B: Pipelined>(
    backend: &B,
    key: &str,
    refresh: Option<Duration>,
) -> BackendResult<Option<(Vec<u8>, KeyTtl)>> {
    if let Some(ttl) = refresh {
        let value = backend.get_ex(key, ttl).await?;
        return Ok(value.map(|v| (v, KeyTtl::Expires(ttl))));
    }
    let mut pipe = redis::pipe();
    pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
    let (value, ms): (Option<Vec<u8>>, i64) = backend.send_pipeline(&pipe).await?;
    Ok(value.map(|value| (value, ttl_of(ms))))
}
