//! What a command works with: the connection, the store options and the output mode.

use std::time::Duration;

use anyhow::Context as _;
use redis_sessions::{IdHashing, KeyRing, RedisStore, SessionId, StoreBuilder};

use crate::cli::Global;
use crate::connect::{connect, Conn};

/// A connected store and the global options.
pub(crate) struct Context {
    /// The connection, cloned (cheaply) into the per-record stores of `import`.
    backend: Conn,
    prefix: String,
    scan_count: u32,
    /// `--hash-ids`: how the application turns cookie ids into keys (for `--cookie`).
    hashing: IdHashing,
    /// The application's key ring, if given.
    keys: Option<KeyRing>,
    /// `--json`: machine-readable output.
    pub(crate) json: bool,
    /// The store with the library's default options under `--prefix`, and the key ring. It
    /// addresses sessions by *stored* id (the key after the prefix), so the hashes that `ids`
    /// lists work as they are, and every command sees what the application stored.
    pub(crate) store: RedisStore<Conn>,
}

impl Context {
    /// Connects and builds the store.
    pub(crate) async fn connect(global: Global) -> anyhow::Result<Context> {
        let keys = key_ring(&global)?;
        let backend = connect(&global.url).await?;
        let mut context = Context {
            hashing: match global.hash_ids {
                true => IdHashing::Sha256,
                false => IdHashing::Off,
            },
            keys,
            store: RedisStore::new(backend.clone()),
            backend,
            prefix: global.prefix,
            scan_count: global.scan_count,
            json: global.json,
        };
        context.store = context.builder().build();
        Ok(context)
    }

    fn builder(&self) -> StoreBuilder<Conn> {
        let builder = RedisStore::builder(self.backend.clone())
            .prefix(self.prefix.clone())
            .scan_count(self.scan_count);
        match &self.keys {
            Some(keys) => builder.encrypt(keys.clone()),
            None => builder,
        }
    }

    /// The stored ids of ids from the command line: hashed first when they are `cookie`
    /// values and the application hashes ids.
    pub(crate) fn stored_ids(&self, ids: Vec<SessionId>, cookie: bool) -> Vec<SessionId> {
        match cookie {
            true => ids.iter().map(|id| self.hashing.stored_id(id)).collect(),
            false => ids,
        }
    }

    /// A store that writes sessions without an explicit expiry with this TTL.
    pub(crate) fn store_with_ttl(&self, ttl: Duration) -> RedisStore<Conn> {
        self.builder().ttl(ttl).build()
    }

    /// A store that writes sessions without expiry.
    pub(crate) fn store_without_ttl(&self) -> RedisStore<Conn> {
        self.builder().disable_ttl(true).build()
    }
}

/// The key ring from `--keys-file` or `SESSION_KEYS`; errors name the key's position only.
fn key_ring(global: &Global) -> anyhow::Result<Option<KeyRing>> {
    let list = match &global.keys_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?,
        None => match std::env::var("SESSION_KEYS") {
            Ok(list) => list,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(
        KeyRing::from_base64_list(&list).context("session keys")?,
    ))
}
