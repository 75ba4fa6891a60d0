use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use clap::ArgAction;
use redis_sessions::IdHashing;

/// Command-line flags, each with an environment fallback.
#[derive(clap::Parser, Clone)]
#[command(version, about = "redis-sessions demo web app")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Redis URL: `redis://[user:password@]host:port[/db]`, `rediss://...`,
    /// `redis+cluster://h1:p1,h2:p2` or `redis+sentinel://s1:p1,s2:p2/master`; without it the app
    /// runs on the in-memory backend.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// PEM file of the certificate authorities to trust for `rediss://` (instead of the
    /// system's roots).
    #[arg(long, env = "REDIS_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file of a client certificate for mutual TLS (with `--tls-key-file`).
    #[arg(long, env = "REDIS_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(long, env = "REDIS_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Do not check Redis's TLS certificate (tests only: anyone on the path can read and
    /// change the traffic); logged as a warning.
    #[arg(long)]
    pub tls_insecure: bool,
    /// Key prefix of the sessions in Redis.
    #[arg(long, env = "SESSION_PREFIX", default_value = "sess:")]
    pub prefix: String,
    /// Server-side idle timeout in seconds: a session unused for this long expires. Every
    /// request slides it in the same Redis command as the read.
    #[arg(long, env = "IDLE_TIMEOUT", default_value_t = 1800)]
    pub idle_timeout: u64,
    /// Store sessions under the SHA-256 of their id, so Redis holds no usable session ids
    /// (`--hash-ids false` for connect-redis's plain keys).
    #[arg(long, env = "SESSION_HASH_IDS", default_value_t = true, action = ArgAction::Set)]
    pub hash_ids: bool,
    /// File with a base64 32-byte key (`openssl rand -base64 32`): ids are then hashed with
    /// HMAC-SHA-256 under it instead of SHA-256, so a Redis dump does not even tell whether a
    /// guessed id exists. The `SESSION_HASH_KEY` environment variable holds the key itself; the
    /// file wins.
    #[arg(long, env = "SESSION_HASH_KEY_FILE")]
    pub hash_key_file: Option<PathBuf>,
    /// The id hashing key itself; set by the `SESSION_HASH_KEY` environment variable only.
    #[arg(skip = std::env::var("SESSION_HASH_KEY").ok())]
    pub hash_key: Option<String>,
    /// File with the encryption key ring: base64 32-byte keys separated by commas or
    /// newlines, the current key first (`openssl rand -base64 32`). Sessions are then
    /// encrypted at rest. The `SESSION_KEYS` environment variable holds the same list; the
    /// file wins.
    #[arg(long, env = "SESSION_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// The key ring itself (comma-separated base64 keys); set by the `SESSION_KEYS`
    /// environment variable only, so keys never show in `ps`.
    #[arg(skip = std::env::var("SESSION_KEYS").ok())]
    pub keys: Option<String>,
    /// Refuse session values that are not encrypted, so whoever can write to Redis but has no
    /// key cannot plant a session (needs a key ring; turn it on once the sessions stored before
    /// encryption was turned on have expired).
    #[arg(long, env = "SESSION_REQUIRE_ENCRYPTION", default_value_t = false, action = ArgAction::Set)]
    pub require_encryption: bool,
    /// Largest session, in bytes, that is stored or read (larger ones are refused on save and
    /// treated as corrupt on load).
    #[arg(long, env = "SESSION_MAX_SIZE", default_value_t = redis_sessions::DEFAULT_MAX_VALUE_SIZE)]
    pub max_session_size: usize,
    /// Absolute timeout in seconds, counted from sign-in: however active, a session ends this
    /// long after it was created (OWASP). Default: none, only the idle timeout.
    #[arg(long, env = "SESSION_ABSOLUTE_TIMEOUT")]
    pub absolute_timeout: Option<u64>,
    /// The most sessions one user may have; past it, signing in ends that user's least
    /// recently used session. 0 (the default) means no limit.
    #[arg(long, env = "SESSION_MAX_PER_USER", default_value_t = 0)]
    pub max_sessions_per_user: u32,
    /// Fail fast while Redis is down or hung (the library's default: after 5 consecutive
    /// timeouts or connection failures, calls fail at once for 1 s, then one probe);
    /// `--fail-fast false` waits for Redis on every call (the reply timeout each), as
    /// `scripts/faults.sh` compares.
    #[arg(long, env = "SESSION_FAIL_FAST", default_value_t = true, action = ArgAction::Set)]
    pub fail_fast: bool,
    /// Merge concurrent saves of one session (the library's
    /// `StoreBuilder::merge_concurrent_saves`, off by default there): each request's save
    /// writes only the fields it changed onto the session as stored now, so parallel
    /// `PUT /api/fields/{name}` keep each other's fields. `false` shows the race every other
    /// store has (the last save wins whole).
    #[arg(long, env = "SESSION_MERGE_SAVES", default_value_t = true, action = ArgAction::Set)]
    pub merge_concurrent_saves: bool,
    /// Keep up to this many recently used sessions in process memory (the library's
    /// client-side cache, `StoreBuilder::cache`): a read of a cached session costs no Redis
    /// command, and Redis's invalidations (broadcast `CLIENT TRACKING`) drop an entry as soon
    /// as any client changes the session. Any Redis URL: one server, Sentinel or Cluster. 0
    /// (the default) turns it off.
    #[arg(long, env = "SESSION_CACHE", default_value_t = 0)]
    pub cache: usize,
    /// Test hook, not a flag (always `None` from the command line): see [`IncrementHook`].
    #[arg(skip)]
    pub increment_hook: Option<IncrementHook>,
    /// Test hook, not a flag: `PUT /api/fields/{name}` awaits it after it has loaded the
    /// session and set the field, before the session layer saves (a test makes every `PUT` of a
    /// round load before any saves, so their saves race every run).
    #[arg(skip)]
    pub field_hook: Option<IncrementHook>,
}

/// A test hook: `/api/increment` awaits it after it has read the session and changed the
/// counter, before it answers, so before the session layer saves the change. A test holds
/// saves in flight with it while another request (a logout) runs, so races happen in a known
/// order. Outside tests it is `None`, which costs one branch per increment.
#[derive(Clone)]
pub struct IncrementHook(Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>);

impl IncrementHook {
    /// A hook that runs `f` and awaits the future it returns.
    pub fn new<F, Fut>(f: F) -> IncrementHook
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        IncrementHook(Arc::new(move || Box::pin(f())))
    }

    /// Runs the hook, if there is one.
    pub(crate) async fn run(hook: Option<&IncrementHook>) {
        if let Some(hook) = hook {
            (hook.0)().await;
        }
    }
}

impl Config {
    /// A configuration for tests: in-memory or `redis_url`, prefix `sess:`, 30 min idle.
    pub fn new(redis_url: Option<String>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis_url,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_insecure: false,
            prefix: "sess:".into(),
            idle_timeout: 1800,
            hash_ids: true,
            hash_key_file: None,
            hash_key: None,
            keys_file: None,
            keys: None,
            require_encryption: false,
            max_session_size: redis_sessions::DEFAULT_MAX_VALUE_SIZE,
            absolute_timeout: None,
            max_sessions_per_user: 0,
            fail_fast: true,
            merge_concurrent_saves: true,
            cache: 0,
            increment_hook: None,
            field_hook: None,
        }
    }

    /// The encryption key ring from `--keys-file` or `SESSION_KEYS`, if either is set.
    ///
    /// # Errors
    /// The file cannot be read, or a key is not 32 bytes of base64 (named by position only).
    pub fn key_ring(&self) -> anyhow::Result<Option<redis_sessions::KeyRing>> {
        let Some(list) = secret(&self.keys_file, &self.keys)? else {
            return Ok(None);
        };
        let ring = redis_sessions::KeyRing::from_base64_list(&list)
            .map_err(|e| anyhow::anyhow!("session keys: {e}"))?;
        Ok(Some(ring))
    }

    /// How ids become keys: HMAC-SHA-256 with `--hash-key-file` / `SESSION_HASH_KEY`,
    /// SHA-256 with `--hash-ids` (the default), or the ids themselves.
    ///
    /// # Errors
    /// The key file cannot be read, the key is not base64 of 32 bytes, or a key is given
    /// with `--hash-ids false`.
    pub fn id_hashing(&self) -> anyhow::Result<IdHashing> {
        match secret(&self.hash_key_file, &self.hash_key)? {
            Some(_) if !self.hash_ids => {
                anyhow::bail!("a session hash key is set, but --hash-ids is false")
            }
            Some(key) => IdHashing::hmac_from_base64(&key)
                .map_err(|e| anyhow::anyhow!("session hash key: {e}")),
            None if self.hash_ids => Ok(IdHashing::Sha256),
            None => Ok(IdHashing::Off),
        }
    }

    /// The `--tls-*` settings for the library.
    ///
    /// # Errors
    /// A file cannot be read.
    pub fn tls(&self) -> anyhow::Result<redis_sessions::TlsConfig> {
        let files = redis_sessions::TlsConfig::from_files(
            self.tls_ca_file.as_deref(),
            self.tls_cert_file.as_deref(),
            self.tls_key_file.as_deref(),
        )?;
        Ok(files.insecure(self.tls_insecure))
    }

    /// The Redis URL without its password, for logs and the page.
    pub fn redacted_url(&self) -> String {
        self.redis_url
            .as_deref()
            .map_or_else(|| "-".into(), redis_sessions::redact_url)
    }
}

/// A secret from its file (which wins) or from its environment variable's value.
fn secret(file: &Option<PathBuf>, value: &Option<String>) -> anyhow::Result<Option<String>> {
    match (file, value) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("cannot read the key file {}: {e}", path.display())),
        (None, value) => Ok(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_hashing_from_the_flags() {
        let mut c = Config::new(None);
        assert!(matches!(c.id_hashing().unwrap(), IdHashing::Sha256));
        c.hash_key = Some("AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=".into());
        assert!(matches!(c.id_hashing().unwrap(), IdHashing::HmacSha256(k) if k == [3; 32]));
        c.hash_ids = false;
        assert!(c.id_hashing().is_err(), "a key with --hash-ids false");
        c.hash_key = None;
        assert!(matches!(c.id_hashing().unwrap(), IdHashing::Off));
        c.hash_key = Some("c2hvcnQ=".into());
        c.hash_ids = true;
        let err = c.id_hashing().unwrap_err().to_string();
        assert!(
            err.contains("session hash key") && !err.contains("c2hvcnQ"),
            "{err}"
        );
    }

    #[test]
    fn redacts_credentials() {
        let mut c = Config::new(Some("redis://user:secret@127.0.0.1:6379/0".into()));
        assert_eq!(c.redacted_url(), "redis://user:***@127.0.0.1:6379/0");
        c.redis_url = Some("redis://127.0.0.1:6379".into());
        assert_eq!(c.redacted_url(), "redis://127.0.0.1:6379");
    }
}
