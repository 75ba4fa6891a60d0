//! What a command works with: the connection, the store options and the output mode.

use std::time::Duration;

use anyhow::Context as _;
use redis_sessions::{IdHashing, KeyRing, RedisStore, SessionId, StoreBuilder, StoredId};

use crate::cli::Global;
use crate::connect::{connect, tls_config, Conn};

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
    /// The store with the library's default options under `--prefix`, and the key ring.
    /// Commands address sessions by *stored* id (the key after the prefix: `get_listed`,
    /// `ttl_listed`, `destroy_listed`), so the hashes that `ids` lists work as they are.
    pub(crate) store: RedisStore<Conn>,
}

impl Context {
    /// Connects and builds the store.
    pub(crate) async fn connect(global: Global) -> anyhow::Result<Context> {
        let keys = key_ring(&global)?;
        let hashing = id_hashing(&global)?;
        let backend = connect(&global.url, tls_config(&global)?).await?;
        let mut context = Context {
            hashing,
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
    /// values and the application hashes ids, else taken as listed.
    pub(crate) fn stored_ids(&self, ids: &[SessionId], cookie: bool) -> Vec<StoredId> {
        let hashing = match cookie {
            true => &self.hashing,
            false => &IdHashing::Off,
        };
        ids.iter().map(|id| hashing.stored_id(id)).collect()
    }

    /// A store that writes sessions without an explicit expiry with this TTL.
    pub(crate) fn store_with_ttl(&self, ttl: Duration) -> RedisStore<Conn> {
        self.builder().ttl(ttl).build()
    }

    /// The store for `user` commands: the application's index field and id hashing (its
    /// HMAC key names the index), sessions still addressed by stored id.
    pub(crate) fn user_store(&self, field: &str) -> RedisStore<Conn> {
        self.builder()
            .hash_ids(self.hashing.clone())
            .index_by(field)
            .build()
    }

    /// A store that writes sessions without expiry.
    pub(crate) fn store_without_ttl(&self) -> RedisStore<Conn> {
        self.builder().disable_ttl(true).build()
    }
}

/// The key ring from `--keys-file` or `SESSION_KEYS`; errors name the key's position only.
fn key_ring(global: &Global) -> anyhow::Result<Option<KeyRing>> {
    let Some(list) = secret(global.keys_file.as_ref(), "SESSION_KEYS")? else {
        return Ok(None);
    };
    Ok(Some(
        KeyRing::from_base64_list(&list).context("session keys")?,
    ))
}

/// How the application turns cookie ids into keys: HMAC-SHA-256 with `--hash-key-file` or
/// `SESSION_HASH_KEY`, SHA-256 with `--hash-ids`, else the ids themselves.
fn id_hashing(global: &Global) -> anyhow::Result<IdHashing> {
    match secret(global.hash_key_file.as_ref(), "SESSION_HASH_KEY")? {
        Some(key) => IdHashing::hmac_from_base64(&key).context("session hash key"),
        None if global.hash_ids => Ok(IdHashing::Sha256),
        None => Ok(IdHashing::Off),
    }
}

/// A secret from its file (which wins) or from the environment variable `var`.
fn secret(file: Option<&std::path::PathBuf>, var: &str) -> anyhow::Result<Option<String>> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(Some)
            .with_context(|| format!("cannot read the key file {}", path.display())),
        None => Ok(std::env::var(var).ok()),
    }
}
