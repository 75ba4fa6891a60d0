//! What a command works with: the connection, the store options and the output mode.

use std::time::Duration;

use redis_sessions::{RedisStore, StoreBuilder};

use crate::cli::Global;
use crate::connect::{connect, Conn};

/// A connected store and the global options.
pub(crate) struct Context {
    /// The connection, cloned (cheaply) into the per-record stores of `import`.
    backend: Conn,
    prefix: String,
    scan_count: u32,
    /// `--json`: machine-readable output.
    pub(crate) json: bool,
    /// The store with the library's default options under `--prefix`.
    pub(crate) store: RedisStore<Conn>,
}

impl Context {
    /// Connects and builds the store.
    pub(crate) async fn connect(global: Global) -> anyhow::Result<Context> {
        let backend = connect(&global.url).await?;
        let mut context = Context {
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
        RedisStore::builder(self.backend.clone())
            .prefix(self.prefix.clone())
            .scan_count(self.scan_count)
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
