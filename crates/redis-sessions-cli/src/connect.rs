//! From a URL to a backend: the library's one deployment description (`redis://`, `rediss://`,
//! `redis+cluster://`, `redis+sentinel://`); the rest of the CLI only sees [`Conn`].

use anyhow::Context as _;
use redis_sessions::{AnyBackend, TlsConfig};

/// The backend every command works on.
pub(crate) type Conn = AnyBackend;

/// Connects to the deployment `url` names, with the `--tls-*` settings.
pub(crate) async fn connect(url: &str, tls: TlsConfig) -> anyhow::Result<Conn> {
    redis_sessions::connect_with_tls(url, tls)
        .await
        .with_context(|| format!("cannot connect to {}", redis_sessions::redact_url(url)))
}

/// The `--tls-*` options as the library's settings; warns on stderr about `--tls-insecure`.
pub(crate) fn tls_config(global: &crate::cli::Global) -> anyhow::Result<TlsConfig> {
    if global.tls_insecure {
        eprintln!("warning: --tls-insecure: the server's TLS certificate is not checked");
    }
    let files = TlsConfig::from_files(
        global.tls_ca_file.as_deref(),
        global.tls_cert_file.as_deref(),
        global.tls_key_file.as_deref(),
    )?;
    Ok(files.insecure(global.tls_insecure))
}
