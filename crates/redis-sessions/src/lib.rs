//! Redis-backed session storage for Rust web applications: the Rust counterpart of Node's
//! `connect-redis`, with its options and methods, and fixes where it is wrong.
//!
//! # Quickstart
//!
//! ```no_run
//! use std::time::Duration;
//! use redis_sessions::{RedisBackend, RedisStore, Session, SessionId};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = RedisBackend::connect("redis://127.0.0.1:6379").await?;
//! let store = RedisStore::builder(backend)
//!     .prefix("myapp:sess:")
//!     .ttl(Duration::from_secs(3600))
//!     .build();
//!
//! let id = SessionId::generate()?;
//! let mut session = Session::new();
//! session.insert("user_id", 42)?;
//! assert!(store.create(&id, &session).await?.is_written());
//!
//! let loaded = store.get(&id).await?.expect("just written");
//! assert_eq!(loaded.get::<u64>("user_id")?, Some(42));
//! store.destroy(&id).await?;
//! # Ok(()) }
//! ```
//!
//! Without Redis (tests, demos), use the in-memory backend, which has the same semantics,
//! expiry included:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> redis_sessions::Result<()> {
//! use redis_sessions::{MemoryBackend, RedisStore, Session, SessionId};
//! let store = RedisStore::new(MemoryBackend::new());
//! let id = SessionId::generate()?;
//! assert!(store.set(&id, &Session::new()).await?.is_written());
//! assert_eq!(store.length().await?, 1);
//! # Ok(()) }
//! ```
//!
//! # With axum and tower-sessions 0.15
//!
//! Enable the `tower-sessions-015` feature; the store is a `tower_sessions::SessionStore`.
//!
//! ```no_run
//! # #[cfg(feature = "tower-sessions-015")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use redis_sessions::{RedisBackend, RedisStore};
//! use tower_sessions::{Expiry, Session, SessionManagerLayer};
//!
//! let store = RedisStore::builder(RedisBackend::connect("redis://127.0.0.1:6379").await?)
//!     .idle_timeout(Duration::from_secs(30 * 60)) // server-side idle timeout, slid by GETEX
//!     .build();
//! let layer = SessionManagerLayer::new(store).with_expiry(Expiry::OnSessionEnd);
//! let app: Router = Router::new()
//!     .route("/", get(|session: Session| async move {
//!         let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0);
//!         session.insert("n", n + 1).await.ok();
//!         format!("visit {}", n + 1)
//!     }))
//!     .layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # With tower-sessions 0.14 (axum-login)
//!
//! Enable `tower-sessions-014` instead (or as well: both impls coexist). The code is the same
//! with `tower-sessions = "0.14"`; axum-login's `AuthManagerLayerBuilder::new(backend, layer)`
//! takes the same `SessionManagerLayer`.
//!
//! ```no_run
//! # #[cfg(feature = "tower-sessions-014")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use redis_sessions::{RedisBackend, RedisStore};
//! let store = RedisStore::new(RedisBackend::connect("redis://127.0.0.1:6379").await?);
//! fn takes_a_014_store(_: impl tower_sessions_core_014::SessionStore + Clone) {}
//! takes_a_014_store(store); // tower_sessions::SessionManagerLayer::new(store) in 0.14
//! # Ok(()) }
//! ```
//!
//! # With actix-web and actix-session 0.11
//!
//! Enable `actix`; the store is an `actix_session::storage::SessionStore`.
//!
//! ```no_run
//! # #[cfg(feature = "actix")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use actix_session::{Session, SessionMiddleware};
//! use actix_web::{cookie::Key, web, App, HttpServer};
//! use redis_sessions::{RedisBackend, RedisStore};
//!
//! let store = RedisStore::new(RedisBackend::connect("redis://127.0.0.1:6379").await?);
//! let key = Key::generate(); // load a persistent 64-byte key in production
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(SessionMiddleware::new(store.clone(), key.clone()))
//!         .route("/", web::get().to(|session: Session| async move {
//!             let n: u64 = session.get("n").ok().flatten().unwrap_or(0);
//!             session.insert("n", n + 1).ok();
//!             format!("visit {}", n + 1)
//!         }))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! # Sliding expiry without rewrites
//!
//! Recommended setup: a browser-session cookie (`Expiry::OnSessionEnd`) plus the store's
//! [`idle_timeout`](StoreBuilder::idle_timeout). A request that only reads the session costs one
//! command, `GETEX key PX idle`, which slides the idle timeout without rewriting the value; a
//! request that changes it costs one `SET XX PX`. tower-sessions' own way to slide an
//! `OnInactivity` expiry, `with_always_save(true)`, costs a `GET` plus a full `SET` on every
//! request. Under an idle timeout the session's explicit expiry is written into the value, and a
//! read after it deletes the session however recently it was used. It is written compactly, as
//! the reserved top-level member `__exp` (Unix milliseconds, `"__exp":1781245381504`: 22 bytes,
//! where `"cookie":{"expires":"…"}` took 48), so a typical session stays in a smaller
//! allocation class in Redis (the README's memory figures). `__exp` is never one of the
//! session's fields (tower-sessions' `Record` data, actix-session's state, [`Session`]'s
//! fields); a session with a field of that name is refused when written
//! ([`CodecError::Reserved`]), and a stored `__exp` that is not a Unix time in milliseconds is
//! a decode error ([`CodecError::Bound`]). Values written by earlier releases carry the bound
//! in `cookie.expires` and still load with it (the earlier of the two when a value has both);
//! their next save writes `__exp`. A [`Session::with_expiry`] session keeps its expiry in
//! `cookie.expires`, as connect-redis does. That bound is a fixed one only
//! when the expiry is fixed (`Expiry::AtDateTime`). With `Expiry::OnSessionEnd`, tower-sessions
//! sets it to the last write plus 14 days, so it moves forward with every write; with
//! `Expiry::OnInactivity` it is the last write plus the inactivity period, so do not combine
//! that with `idle_timeout` (reads would slide the TTL, yet the session would end one period
//! after its last write). The README's "What ends a session" has the table for every setup.
//!
//! # Absolute timeout
//!
//! The stored expiry is a bound on the time since the last *write*, not on the session's age.
//! For a bound on its age (OWASP's absolute timeout: re-authenticate after, say, 8 hours
//! however active the user was), add [`absolute_timeout`](StoreBuilder::absolute_timeout):
//!
//! - the store records the session's creation once, in the value, as the reserved top-level
//!   field `__created` (Unix ms; [`Session::created`]), at its first write, and never moves it.
//!   The framework adapters carry it from a load to the next save in their own map (it is one
//!   of the fields tower-sessions and actix-session hand back), through every serializer,
//!   compression and encryption; a save of a session that lacks it (data rebuilt by the
//!   application) reads the stored one back first, and an id cycled at login keeps it;
//! - every write's TTL is the smaller of its own (the expiry, `ttl`, `idle_timeout`) and what
//!   is left of the absolute timeout; a write past it deletes the session;
//! - a sliding read (`GETEX PX idle`: [`load`](RedisStore::load) under an idle timeout,
//!   [`get_and_refresh`](RedisStore::get_and_refresh)), `refresh` and actix's `update_ttl`
//!   set the TTL back down to what is left (a second command, `PEXPIRE`, only in the last idle
//!   period of a session's life), so Redis drops the key at the bound;
//! - any read past the bound deletes the session and returns none, and the per-user
//!   listings show the recorded creation time and leave such sessions out.
//!
//! A session written before the option was turned on has no record until its next write.
//!
//! # Framework semantics
//!
//! - New sessions are written with `SET NX`: a colliding id is replaced by a fresh one, never
//!   overwritten.
//! - Saves of existing sessions are `SET XX`. When a concurrent logout (or expiry) removed the
//!   session, nothing is written, a warning with the session's fingerprint is logged, and the
//!   save returns `Ok`: the request completes, and the next request with that cookie has no
//!   session ("logout wins"). An error would only turn a race into a 500 page.
//! - A corrupt value loads as no session (logged with the fingerprint; the value is left in
//!   Redis until its TTL ends), so the user gets a fresh session instead of an error page.
//! - Redis down: a load or save fails with the framework's store error (tower-sessions answers
//!   500, as does actix-session); the handler can map errors of `session.get` to a 503 as the
//!   demo does. The connection reconnects by itself.
//! - actix-session: keys are `prefix + id` with our ids, values one JSON object of the fields
//!   (not JSON strings nested in JSON), and `update_ttl` is a `PEXPIRE`.
//!
//! # Options
//!
//! | builder method | default | meaning |
//! |---|---|---|
//! | [`prefix`](StoreBuilder::prefix) | `"sess:"` | key prefix; may be empty (then `clear` refuses) |
//! | [`ttl`](StoreBuilder::ttl) / [`ttl_with`](StoreBuilder::ttl_with) | 86,400 s | lifetime of a session without explicit expiry, fixed or a function of the session |
//! | [`disable_ttl`](StoreBuilder::disable_ttl) | `false` | write without expiry; `touch` does nothing |
//! | [`disable_touch`](StoreBuilder::disable_touch) | `false` | `touch` does nothing |
//! | [`serializer`](StoreBuilder::serializer) | [`Json`] | [`Json`], `MsgPack` (feature `msgpack`) or your own [`Serializer`] |
//! | [`scan_count`](StoreBuilder::scan_count) | 100 | `SCAN COUNT` and the batch size of `MGET` / `UNLINK` |
//! | [`hash_ids`](StoreBuilder::hash_ids) | [`IdHashing::Off`] | keys hold a hash of the id, not the id |
//! | [`idle_timeout`](StoreBuilder::idle_timeout) | off | sliding idle timeout: every [`load`](RedisStore::load) re-arms it in its `GETEX` |
//! | [`absolute_timeout`](StoreBuilder::absolute_timeout) | off | a session ends this long after its recorded creation, however active ([Absolute timeout](#absolute-timeout)) |
//! | [`max_value_size`](StoreBuilder::max_value_size) | 64 KiB | larger sessions are refused ([`Error::TooLarge`]) and larger values not decoded |
//! | `compress_above` | off | LZ4 above a size (feature `compression`) |
//! | `encrypt`, `require_encryption` | off | XChaCha20-Poly1305 with a `KeyRing` (feature `encryption`) |
//! | [`cache`](StoreBuilder::cache) / [`cache_with`](StoreBuilder::cache_with) | off | client-side cache of loads, invalidated by Redis ([Client-side cache](#client-side-cache)) |
//!
//! # Methods and their Redis commands
//!
//! | method | commands | result |
//! |---|---|---|
//! | [`get`](RedisStore::get) | `GET` | `None` when missing, expired or empty |
//! | [`load`](RedisStore::load) | `GET`, or `GETEX PX` with an idle timeout | the adapters' read: corrupt loads as `None` |
//! | [`get_and_refresh`](RedisStore::get_and_refresh) | `GETEX PX` | read + sliding expiry in one command |
//! | [`set`](RedisStore::set) | `SET PX` (plain `SET` with `disable_ttl`; `UNLINK` when TTL ≤ 0) | create or overwrite, as connect-redis |
//! | [`create`](RedisStore::create) | `SET NX PX` | [`Outcome::Exists`] on an id collision, never an overwrite |
//! | [`update`](RedisStore::update) | `SET XX PX` | [`Outcome::Gone`] when it was destroyed: never resurrected |
//! | [`get_versioned`](RedisStore::get_versioned) | `GET` | the session and its [`Version`] (SHA-1 of the stored bytes, computed here) |
//! | [`update_if`](RedisStore::update_if) | one script (`EVALSHA`): compare `sha1hex`, `SET PX` | [`Conditional::Conflict`] with what is stored now, never an overwrite |
//! | [`modify`](RedisStore::modify) | `GET`, then the `update_if` script per attempt | read-modify-write without lost updates; [`Error::Contended`] after [`MODIFY_ATTEMPTS`] |
//! | [`touch`](RedisStore::touch) | `PEXPIRE` | TTL only, the value is not rewritten |
//! | [`destroy`](RedisStore::destroy) | `UNLINK` | `true` if it existed |
//! | [`length`](RedisStore::length), [`ids`](RedisStore::ids), [`ids_stream`](RedisStore::ids_stream) | `SCAN MATCH` | each session once, as a [`StoredId`]; `length` stays exact across a failover, a listing may repeat a shard that failed over mid-scan |
//! | [`all`](RedisStore::all), [`all_stream`](RedisStore::all_stream) | `SCAN` + `MGET` per `scan_count` ids | |
//! | [`get_listed`](RedisStore::get_listed), [`ttl_listed`](RedisStore::ttl_listed), [`destroy_listed`](RedisStore::destroy_listed) | `GET`, `PTTL`, `UNLINK` | by a listed [`StoredId`], never hashed again |
//! | [`check`](RedisStore::check) | `INFO` per server ([`Backend::info`]), then `SET NX`, `GETEX`, `PEXPIRE`, `PTTL`, `MGET`, `SCAN`, `UNLINK` on a scratch key under the prefix | a [`Diagnosis`]: one [`Check`] (ok / warning / failure, reason, fix) per finding; the CLI's `doctor` |
//! | [`clear`](RedisStore::clear) | `SCAN` + `UNLINK` per `scan_count` ids | number deleted (the per-user indexes go too, uncounted) |
//! | [`user_sessions`](RedisStore::user_sessions), [`user_session_count`](RedisStore::user_session_count) | `HGETALL` index, `MGET`, `PTTL` each | one user's sessions, most recently used first |
//! | [`revoke_user_session`](RedisStore::revoke_user_session), [`revoke_user_sessions`](RedisStore::revoke_user_sessions) | the listing, then per session `UNLINK` + `HDEL` (one script on one server) | `true` / how many ended |
//!
//! # Semantics
//!
//! **TTL.** A session's explicit expiry ([`Session::with_expiry`], what a cookie's `expires` is,
//! or [`Session::with_key_expiry`], which leaves it out of the value and in the TTL alone; the
//! framework adapters use that) wins; otherwise the `ttl` option (fixed or computed); otherwise
//! 86,400 s. The TTL is set in
//! milliseconds (`PX`). A TTL under one millisecond deletes the session instead of writing it
//! (`create` then writes nothing). With `disable_ttl`, sessions are written without expiry, but a
//! past explicit expiry still deletes.
//!
//! **Touch** refreshes the TTL from the same rule without rewriting the value. It reports
//! [`Outcome::Gone`] for a session that no longer exists (it never creates one), deletes a session
//! whose expiry has passed (connect-redis's `EXPIRE key -1`), and does nothing with
//! `disable_touch` or `disable_ttl`.
//!
//! **Clear, length, ids, all** scan `escape(prefix) + "*"` with every glob metacharacter of the
//! prefix escaped, then check each key again: it must start with the prefix and the rest must be
//! a valid [`SessionId`]. Another application's `sess:admin:1` or `a?b:x` is never counted,
//! listed or deleted. `clear` deletes only keys its own scan returned, `scan_count` at a time,
//! and refuses an empty prefix ([`Error::EmptyPrefix`]). Nothing uses `KEYS`, `FLUSHDB`,
//! `FLUSHALL` or `CONFIG`.
//!
//! **Concurrency.** The last writer wins between two live requests (as every peer), but a
//! destroyed session stays destroyed: use [`create`](RedisStore::create) for new sessions and
//! [`update`](RedisStore::update) for existing ones. A request that saves after a concurrent
//! logout gets [`Outcome::Gone`] and nothing is written ("logout wins"). `set` keeps
//! connect-redis's create-or-overwrite meaning for callers that want it.
//! To keep every concurrent change, write conditionally: [`get_versioned`](RedisStore::get_versioned)
//! gives a [`Version`] (the SHA-1 of the stored bytes: nothing is added to the value, so
//! connect-redis's format, encryption and compression are unchanged), and
//! [`update_if`](RedisStore::update_if) writes only while the session is still at that
//! version, in one script (on one server folded into the per-user index script; on Cluster on
//! the session's slot, after its index member as every write), otherwise returning
//! [`Conditional::Conflict`] with the value stored now. [`modify`](RedisStore::modify) loops
//! on it: 64 concurrent increments of one counter end at exactly 64 on every backend.
//!
//! **Errors.** A value that is not a session (not JSON, truncated, another Redis type) is an
//! [`Error::Decode`] naming the session by its [`Fingerprint`], never by its id; the value is left
//! in place. Redis down or slow is an [`Error::Backend`] within the connection's timeouts
//! ([`RedisConfig`]: 1 s connect, 500 ms per reply); the connection manager reconnects by
//! itself. No error message contains a session id or session contents.
//!
//! **Ids.** [`SessionId::generate`] gives 128 bits from the OS CSPRNG as 22 base64url
//! characters (earlier releases gave 192 bits, 32 characters; those ids still load).
//! [`SessionId::parse`] accepts 16 to 128 characters of `A-Z a-z 0-9 - _` and rejects
//! anything else before it can reach Redis. `Debug` of an id prints its fingerprint only.
//! Sessions made through the tower-sessions adapter have tower-sessions' own ids, of the same
//! size. Listings return [`StoredId`]s (the key's rest after the prefix: the id, or its
//! hash with [`hash_ids`](StoreBuilder::hash_ids)), a type of their own so that a listed hash
//! is never hashed again.
//!
//! **Round trips.** A session read and written back unchanged keeps its JSON: member order,
//! `null`s, every member of a `cookie` object and the text of `cookie.expires` (only a changed
//! expiry rewrites it), and the bound `__exp` of one read with it. Numbers keep their value
//! exactly; a float's text may be normalized.
//!
//! **Reserved names.** Two top-level names of a stored session belong to the store: `__exp`
//! (the idle timeout's bound, see above; never a field, refused as one) and `__created` (the
//! [absolute timeout](#absolute-timeout)'s creation record, carried as a field by the
//! framework shapes).
//!
//! **Per-user sessions.** With [`index_by`](StoreBuilder::index_by) a session whose field names
//! a user is written together with its member in that user's index: a hash under
//! `prefix + "~user~" + hash(user)` (HMAC under the id-hashing key when there is one), in one
//! Lua script on one server and in ordered steps on a cluster (index first, then the session;
//! revokes delete the session first), so a live session with a user is always in its user's
//! index and a failure leaves at most a stale member, removed when found. An index lives as
//! long as its longest-lived member plus [`INDEX_SLACK`]. Sliding reads of a session with an
//! explicit expiry cost nothing extra; of one without, one `PEXPIRE index GT` more.
//! [`max_sessions_per_user`](StoreBuilder::max_sessions_per_user) ends the least recently used
//! sessions or refuses the new one ([`Outcome::LimitReached`]). The README's "Per-user
//! sessions" gives the full guarantees.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `redis` | yes | [`RedisBackend`] on redis-rs 1.x (`ConnectionManager`, `MultiplexedConnection`) |
//! | `msgpack` | no | the `MsgPack` serializer |
//! | `tower-sessions-015` | no | `impl SessionStore` for tower-sessions(-core) 0.15 |
//! | `tower-sessions-014` | no | `impl SessionStore` for tower-sessions(-core) 0.14 (axum-login) |
//! | `actix` | no | `impl SessionStore` for actix-session 0.11 |
//! | `cluster` | no | `ClusterBackend`: Redis Cluster, `SCAN` over every primary, `redis+cluster://` URLs |
//! | `sentinel` | no | `SentinelBackend`: follows failovers (`+switch-master`, `READONLY`), `redis+sentinel://` URLs |
//! | `encryption` | no | `KeyRing`, `StoreBuilder::encrypt`: encryption at rest with key rotation |
//! | `compression` | no | `StoreBuilder::compress_above`: LZ4 |
//! | `tls` | no | `rediss://` URLs, [`TlsConfig`] (custom CA, client certificates): rustls with the `ring` provider |
//!
//! # Deployments
//!
//! [`connect`] takes one URL for any topology and returns an [`AnyBackend`]:
//!
//! | URL | deployment |
//! |---|---|
//! | `redis://[user:password@]host:port[/db]` | one server ([`RedisBackend`]) |
//! | `rediss://host:port[?tls_ca_file=ca.crt&tls_cert_file=client.crt&tls_key_file=client.key]` | one server over TLS (feature `tls`) |
//! | `redis+cluster://[user:password@]host1:port1,host2:port2` | Redis Cluster, any nodes as seeds (`ClusterBackend`) |
//! | `redis+sentinel://[user:password@]s1:port1,s2:port2/master-name[/db]` | the primary behind these sentinels (`SentinelBackend`) |
//! | `rediss+sentinel://s1:port1,.../master-name[?tls_ca_file=...]` | the same over TLS, to the sentinels and the primary (features `sentinel`, `tls`) |
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
//! let store = redis_sessions::RedisStore::new(redis_sessions::connect(&url).await?);
//! # Ok(()) }
//! ```
//!
//! **TLS** (feature `tls`): the server's certificate is checked against the system's roots,
//! or against `tls_ca_file` (PEM); `tls_cert_file` and `tls_key_file` present a client
//! certificate (mutual TLS); `tls_insecure=true` skips verification (tests only; logged as a
//! warning). The same settings in code: [`RedisConfig::tls`] with a [`TlsConfig`]. If the
//! application has installed a rustls `CryptoProvider` as the process default it is used,
//! otherwise the first TLS connect installs `ring`'s. A TLS failure (untrusted or wrong-host
//! certificate, a missing client certificate, TLS against a plain port or plain text against
//! a TLS port, a TLS URL without the feature) is a [`BackendErrorKind::Tls`] error
//! ([`Error::is_tls`]) within the connect timeout. `rediss+cluster://` takes the same options
//! (or `ClusterConfig::tls`), and so does `rediss+sentinel://` (or `SentinelConfig::tls`), for
//! the sentinels and the primary they name.
//!
//! **ACL**: the README's "ACL: least privilege" part gives the exact `ACL SETUSER` lines for
//! the store's user (keys `~<prefix>*`), the admin CLI's and the sentinels'. A command or key
//! the user may not use is a [`BackendErrorKind::PermissionDenied`] error
//! ([`Error::is_permission_denied`]; [`Error::denied_command`] names the command), never
//! retried and logged once per command at `warn`.
//!
//! On a cluster, keys are routed by slot, `MGET`/`UNLINK` are split per slot (never a
//! `CROSSSLOT` error) and admin scans walk every primary with its own cursor. On Sentinel, the
//! backend switches to the new primary when a sentinel announces it, and on `READONLY` or a
//! connection error asks the sentinels again and retries the command once.
//!
//! # Security at rest
//!
//! With [`hash_ids`](StoreBuilder::hash_ids) a Redis dump holds no usable session ids; with
//! encryption it holds no session contents either, and values cannot be forged or moved to
//! another session's key. Encrypting keys rotate without logging anyone out: the first key of
//! the ring encrypts, any key decrypts. Readers accept every stored form (plain JSON as
//! connect-redis writes it, plain MessagePack, and every envelope), so options can be turned
//! on without a migration. The byte format is in the [`codec`] docs.
//!
//! ```no_run
//! # #[cfg(all(feature = "encryption", feature = "compression"))]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use redis_sessions::{codec::DEFAULT_COMPRESS_ABOVE, IdHashing, KeyRing, RedisBackend, RedisStore};
//! let keys = KeyRing::from_base64_list(&std::env::var("SESSION_KEYS")?)?; // "new,old"
//! let store = RedisStore::builder(RedisBackend::connect("redis://127.0.0.1:6379").await?)
//!     .hash_ids(IdHashing::Sha256)
//!     .compress_above(DEFAULT_COMPRESS_ABOVE)
//!     .encrypt(keys)
//!     .build();
//! # Ok(()) }
//! ```
//!
//! # Client-side cache
//!
//! [`StoreBuilder::cache`] keeps recently used sessions in process memory, so a
//! [`load`](RedisStore::load) (what both framework adapters call) of a session this process
//! read or saved recently costs no Redis command. It needs a backend that keeps RESP3
//! `CLIENT TRACKING` on: [`RedisBackend::connect_tracked`] (one server),
//! `SentinelBackend::connect_tracked_with` (feature `sentinel`; the cache is emptied on every
//! switch of primary), `ClusterBackend::connect_tracked_with` (feature `cluster`), or
//! [`connect_tracked`] with any of their URLs. Other backends are refused when the store is
//! built ([`Error::CacheUnsupported`]).
//!
//! On Cluster a tracked connection to every primary serves the cache's reads and saves,
//! routed by hash slot, and the cache is emptied on every topology change the backend sees:
//! a tracked connection lost, a cache command refused by its primary (`MOVED`, `ASK`,
//! `TRYAGAIN`, `CLUSTERDOWN`, answered then through the cluster connection, installing
//! nothing), a slot map that differs when read again, and a check every second of each
//! primary's `CLUSTER INFO` and `ROLE` that finds any change. So after a failover or a
//! resharding a hit may return a session as it was before a change made on the new primary
//! for at most about one second (plus a response timeout) after the old primary learned of
//! it, lost its connection, or (cut off from the cluster) declared it failed, which takes
//! `cluster-node-timeout`. [`RedisStore::health`] is the fence: once it returns `Ok`, every
//! invalidation each primary sent before it has been applied.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use redis_sessions::{RedisBackend, RedisStore};
//! let store = RedisStore::builder(RedisBackend::connect_tracked("redis://127.0.0.1:6379").await?)
//!     .idle_timeout(Duration::from_secs(30 * 60))
//!     .cache(10_000)? // sessions; 2 KiB each at most in bytes (CacheConfig::bytes)
//!     .build();
//! println!("{:?}", store.cache_stats()); // hits, misses, invalidations, evictions, flushes
//! # Ok(()) }
//! ```
//!
//! - **What is cached**: the decoded session (after decryption and decompression, in the
//!   adapter's own shape, so a hit is a clone), only when it decoded and its stored expiry had
//!   not passed; and a session this store has just written (`set`, `create`, `update`, the
//!   adapters' saves): the adapter's record or state as it holds it when a load would read
//!   exactly that back (JSON values), else decoded from the bytes written. A value that does not decode under this
//!   store's key ring is never cached; the ring cannot change while the store lives (a new
//!   ring is a new store with an empty cache).
//! - **How Redis reports changes**: the tracked connection asks Redis to broadcast changes of
//!   every key under the prefixes of the stores whose caches use it (`CLIENT TRACKING ON
//!   BCAST PREFIX sess: NOLOOP`), so the cache's own commands are the plain ones and a session
//!   this process only wrote is reported like one it read. The cost: each application
//!   instance hears of the other instances' session writes (a push of the key's name each),
//!   including those of sessions it does not hold, and Redis does the broadcast work for every
//!   write under the prefix. Tracking goes by key name in every database: use a prefix no
//!   other application uses on the server, even in another database.
//! - **When an entry is dropped**: Redis's invalidation of its key (any change, delete,
//!   expiry or eviction by any client, reported by `CLIENT TRACKING`); any write of the key
//!   by this process (the store's write path tells every cache on the connection, since
//!   `NOLOOP` keeps Redis from telling the writer); the key's TTL running out as far as this
//!   process knows (the `PTTL` read with the value); least recently used eviction past the
//!   entries or bytes bound.
//! - **When the cache is emptied**: the tracked connection failed or was closed (a kill, a
//!   restart, a network error: the next command reconnects, and only after `CLIENT TRACKING`
//!   is on again); Redis invalidating everything; a write that ended sessions it does not name
//!   (the per-user limit's least-recently-used policy).
//! - **Races**: a read installs its value only if no invalidation, write or flush of that
//!   key happened between sending it and installing (see the `cache` module's install rule),
//!   so a read racing a change never keeps the old value. An invalidation is applied the moment
//!   this process reads it from the socket, ahead of any later reply: a load that starts after
//!   Redis's invalidation reached the process never returns the old session. Between Redis
//!   executing a change and its invalidation arriving (a loopback or LAN hop), a hit elsewhere
//!   can still return the session as it was, as a read from a replica would.
//! - **Concurrent requests of one session** in one process: its saves take turns (a save
//!   waits until the previous save of the session through this store has its reply), so
//!   each save leaves the session cached; a load that finds a save of the session in flight
//!   waits for that save's reply (which comes before the reply to any read it could send)
//!   and takes the saved session. So a request served from the cache costs one command, its
//!   save, however its requests overlap.
//! - **Sliding expiry**: under [`idle_timeout`](StoreBuilder::idle_timeout) *i*, a hit
//!   refreshes the TTL (one `GETEX PX`, which reads the session again as it refreshes) only
//!   when [`CacheConfig::refresh_fraction`] *f* (default
//!   0.1) of *i* has passed since the last refresh this process saw. A session's effective
//!   idle timeout is therefore between `(1 - f) × i` and *i*: at most *f* × *i* shorter than
//!   configured, never longer. The stored expiry (the bound `__exp`, or `cookie.expires`) is
//!   checked on every hit, so it is never passed.
//! - **Commands**: a hit sends nothing; a miss one `GETEX PX` under an idle timeout (`GET`
//!   and `PTTL` in one round trip without); a save of a session one `SET`, after which the next
//!   load is a hit. A write that is a script (a session with a user under
//!   [`index_by`](StoreBuilder::index_by), a merged save under
//!   [`merge_concurrent_saves`](StoreBuilder::merge_concurrent_saves)) installs nothing:
//!   Redis 7 reports a script's writes back to the writing connection under broadcast
//!   tracking (`NOLOOP` covers plain commands only), so the next load reads the session again.
//!   With merging, each entry keeps the version it was read at, so a save of a session the
//!   cache served is one conditional write without a read or a conflict. The Redis user needs
//!   `+client|tracking` (in the README's ACL lines).
//! - **Not seen by the cache**: commands of your own on the same tracked connection
//!   ([`RedisBackend::command`]) that change session keys; send those on another connection.
//!
//! # Layout
//!
//! Top to bottom; a layer only calls the one below it.
//!
//! - `adapters/`: `tower.rs` (both tower-sessions versions) and `actix.rs`: translate the
//!   frameworks' types and map errors, nothing more (no policy, no bytes).
//! - `store/`: [`RedisStore`], the policy. `mod.rs` holds the type and the reads, `builder.rs`
//!   the options ([`StoreBuilder`]), `write.rs` the one write path (every change of Redis
//!   state: create, update, set, touch, refresh, destroy, revoke by listed id, `clear`'s
//!   batches, the delete of a session found expired on read), `scan.rs` the listings,
//!   `length` and `clear`, `index.rs` the per-user listings and revokes (`durable.rs`: the
//!   revokes that wait for replicas), `raw.rs` a
//!   session's key and bytes as stored ([`RedisStore::raw`]), and `check.rs`
//!   [`RedisStore::check`], the deployment checks of `doctor`.
//! - `cache/`: the client-side cache (the bounded LRU, the install rule, the [`Tracker`] the
//!   backend feeds with invalidations); `store/cached.rs` is the store's side of it, and
//!   `backend/tracking.rs` the tracked connection and its read and write.
//! - `keyspace.rs`: ids to keys and back, glob escaping. The only place that builds keys.
//! - `codec/`: sessions to bytes, the only place that touches payload bytes: the serializers,
//!   the envelope (compression, encryption), and each framework's shape of a session
//!   (`tower.rs`, `actix.rs`) decoded and encoded straight from and into the stored bytes.
//! - `backend/`: the [`Backend`] trait, `index.rs` (the per-user index operations' types and
//!   Lua scripts), `redis.rs`, `cluster/` (the backend; `topology.rs` reads
//!   and checks the primaries; `tracked.rs` the client-side cache's tracked connections), `sentinel/` (the backend;
//!   `resolve.rs` asks the sentinels) and `memory.rs`.
//! - `deployment.rs`: [`Deployment`] URLs, [`connect`] and [`AnyBackend`]; `tls.rs`:
//!   [`TlsConfig`], the `tls_*` URL options, the rustls provider, which errors are TLS ones.
//! - `session.rs`, `id.rs` (ids, listed [`StoredId`]s, randomness), `keytext.rs` (keys given
//!   as base64 text), `error.rs`: the value types.
//! - `fuzzing.rs`: the entry functions of the fuzz targets in `fuzz/` (feature `fuzzing`, not
//!   API; the tests replay the committed corpus through them).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod adapters;
pub mod backend;
mod cache;
pub mod codec;
#[cfg(feature = "redis")]
mod deployment;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod keyspace;
mod keytext;
mod redact;
mod session;
mod store;
mod timefmt;
#[cfg(feature = "redis")]
mod tls;

pub use backend::{Backend, KeyTtl, MemoryBackend, ScanCursor, ScanPage, SetMode};
#[cfg(feature = "cluster")]
pub use backend::{ClusterBackend, ClusterConfig};
pub use backend::{IndexedDelete, IndexedReply, IndexedWrite, LimitPolicy, SessionLimit};
#[cfg(feature = "sentinel")]
pub use backend::{PrimaryConnection, SentinelBackend, SentinelConfig};
#[cfg(feature = "redis")]
pub use backend::{RedisBackend, RedisConfig, TrackedConnection};
pub use backend::{SentinelView, ServerInfo, ServerReport, Topology};
pub use cache::{CacheConfig, CacheStats, Tracker, DEFAULT_REFRESH_FRACTION};
#[cfg(feature = "encryption")]
pub use codec::KeyRing;
#[cfg(feature = "msgpack")]
pub use codec::MsgPack;
pub use codec::{Json, Serializer, StoredForm, DEFAULT_MAX_VALUE_SIZE};
#[cfg(feature = "redis")]
pub use deployment::{connect, connect_tracked, connect_with_tls, AnyBackend, Deployment};
pub use error::{BackendError, BackendErrorKind, CodecError, Error, Result};
pub use id::{Fingerprint, InvalidId, RandomError, SessionId, StoredId, MAX_ID_LEN, MIN_ID_LEN};
pub use keyspace::{escape_glob, IdHashing, Keyspace};
pub use keytext::KeyRingError;
pub use redact::redact_url;
pub use session::Session;
#[cfg(feature = "metrics")]
pub use store::metric;
#[cfg(any(
    feature = "tower-sessions-014",
    feature = "tower-sessions-015",
    feature = "actix"
))]
pub use store::MERGE_BASES;
pub use store::{Check, CheckLevel, Diagnosis};
pub use store::{Conditional, Version, Versioned, MODIFY_ATTEMPTS};
pub use store::{
    Endpoint, Outcome, RedisStore, StoreBuilder, TtlFn, DEFAULT_PREFIX, DEFAULT_SCAN_COUNT,
    DEFAULT_TTL,
};
pub use store::{FailFast, FailFastState};
pub use store::{RawSession, UserSession, INDEX_PENDING, INDEX_SLACK, REVOKE_ROUNDS};
pub use store::{Revoked, WaitForReplicas};
#[cfg(feature = "redis")]
pub use tls::TlsConfig;

/// The README's Rust snippets, compiled (and the runnable ones run) as doc tests, warnings
/// denied, so the README and the code cannot drift apart. They use these features.
#[cfg(all(
    doctest,
    feature = "redis",
    feature = "tower-sessions-015",
    feature = "actix"
))]
#[doc = include_str!("../../../README.md")]
#[doc(test(attr(deny(warnings))))]
struct ReadmeDoctests;
