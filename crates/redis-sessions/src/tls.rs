//! TLS settings: [`TlsConfig`], the `tls_*` URL options, the rustls crypto provider, and which
//! connect errors are TLS problems.

use std::fmt;
use std::path::Path;

use crate::error::{BackendError, BackendErrorKind};

/// TLS settings for a `rediss://` deployment (feature `tls`).
///
/// Without any of them, the server's certificate is checked against the system's trusted
/// roots. PEM contents are never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The certificate authorities (PEM) to trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate (PEM) for mutual TLS; needs `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// The client certificate's private key (PEM).
    pub client_key_pem: Option<Vec<u8>>,
    /// Accept any server certificate, unchecked. Only for tests: anyone on the path can read
    /// and change the traffic. A warning is logged at every connect.
    pub insecure: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<Vec<u8>>| if v.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("TlsConfig")
            .field("ca_pem", &set(&self.ca_pem))
            .field("client_cert_pem", &set(&self.client_cert_pem))
            .field("client_key_pem", &set(&self.client_key_pem))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsConfig {
    /// No custom settings: the system's trusted roots, no client certificate.
    pub fn new() -> Self {
        TlsConfig::default()
    }

    /// Trusts the certificate authorities in `pem` instead of the system's roots.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents a client certificate and its key (PEM) for mutual TLS.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client_cert_pem = Some(cert.into());
        self.client_key_pem = Some(key.into());
        self
    }

    /// Accepts any server certificate (see [`TlsConfig::insecure`], the field).
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Reads the CA, client certificate and key from PEM files (each optional), as the CLI's
    /// `--tls-ca-file`, `--tls-cert-file` and `--tls-key-file` do.
    ///
    /// # Errors
    /// A file cannot be read ([`BackendErrorKind::Tls`], naming the file).
    pub fn from_files(
        ca_file: Option<&Path>,
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Result<Self, BackendError> {
        Ok(TlsConfig {
            ca_pem: ca_file.map(read).transpose()?,
            client_cert_pem: cert_file.map(read).transpose()?,
            client_key_pem: key_file.map(read).transpose()?,
            insecure: false,
        })
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == TlsConfig::default()
    }

    /// `self`'s settings, each missing one taken from `other`.
    pub(crate) fn or(self, other: TlsConfig) -> TlsConfig {
        TlsConfig {
            ca_pem: self.ca_pem.or(other.ca_pem),
            client_cert_pem: self.client_cert_pem.or(other.client_cert_pem),
            client_key_pem: self.client_key_pem.or(other.client_key_pem),
            insecure: self.insecure || other.insecure,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BackendError> {
    std::fs::read(path)
        .map_err(|e| tls_error(format!("cannot read TLS file {}: {e}", path.display())))
}

pub(crate) fn tls_error(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Tls, message.into())
}

/// Takes the `tls_ca_file`, `tls_cert_file`, `tls_key_file` and `tls_insecure` options out of
/// a URL's query, reads the files, and returns the URL without them.
///
/// # Errors
/// A file cannot be read, or `tls_insecure` is not `true`/`false`.
pub(crate) fn take_url_options(url: &str) -> Result<(String, TlsConfig), BackendError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), TlsConfig::default()));
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut config = TlsConfig::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let file = || percent_decode(v);
        match k {
            "tls_ca_file" => config.ca_pem = Some(read(Path::new(&file()))?),
            "tls_cert_file" => config.client_cert_pem = Some(read(Path::new(&file()))?),
            "tls_key_file" => config.client_key_pem = Some(read(Path::new(&file()))?),
            "tls_insecure" => {
                config.insecure = match v {
                    "" | "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(tls_error("tls_insecure takes true or false")),
                }
            }
            _ => kept.push(pair),
        }
    }
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok((out, config))
}

/// Decodes `%XX` escapes.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Installs `ring` as rustls's process-wide crypto provider unless the application installed
/// one already (then that one is used).
#[cfg(feature = "tls")]
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread installed one between the check and here; that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The error for a TLS URL in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) fn feature_missing() -> BackendError {
    tls_error("rediss:// (TLS) needs the `tls` feature of redis-sessions")
}

/// Whether a redis-rs error text is a TLS failure: rustls's certificate, alert and
/// handshake errors.
pub(crate) fn is_tls_text(text: &str) -> bool {
    const MARKERS: [&str; 7] = [
        "invalid peer certificate",
        "peer is incompatible",
        "received corrupt message",
        "received fatal alert",
        "peer sent no certificates",
        "invalid certificate",
        "invalidcontenttype",
    ];
    let text = text.to_ascii_lowercase();
    MARKERS.iter().any(|m| text.contains(m))
}

/// A URL with its TLS settings: the `tls_*` options taken out and merged under `config`'s.
pub(crate) struct TlsUrl {
    /// The URL for redis-rs.
    pub(crate) url: String,
    /// `rediss://`.
    pub(crate) secure: bool,
    #[cfg_attr(
        not(feature = "tls"),
        allow(
            dead_code,
            reason = "without `tls` a TLS URL is refused before it is used"
        )
    )]
    pub(crate) config: TlsConfig,
}

impl TlsUrl {
    /// Splits `url` and checks that TLS settings go with a TLS URL and the `tls` feature.
    ///
    /// # Errors
    /// A TLS URL without the `tls` feature, TLS options on a plain URL, or an unreadable file.
    pub(crate) fn parse(url: &str, config: &TlsConfig) -> Result<TlsUrl, BackendError> {
        let (url, from_url) = take_url_options(url)?;
        let secure = url.starts_with("rediss://") || url.starts_with("rediss+");
        let config = config.clone().or(from_url);
        if !secure && !config.is_empty() {
            return Err(tls_error(
                "TLS settings were given for a plain redis:// URL: use rediss://",
            ));
        }
        #[cfg(not(feature = "tls"))]
        if secure {
            return Err(feature_missing());
        }
        Ok(TlsUrl {
            url,
            secure,
            config,
        })
    }

    /// The redis-rs client for `info` (parsed from `self.url`) with these TLS settings.
    ///
    /// # Errors
    /// A PEM input redis-rs cannot use, or a client certificate without its key.
    pub(crate) fn client(
        &self,
        info: redis::ConnectionInfo,
    ) -> Result<redis::Client, BackendError> {
        if !self.secure {
            return redis::Client::open(info).map_err(crate::backend::redis::map_error);
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = info;
            Err(feature_missing())
        }
        #[cfg(feature = "tls")]
        {
            ensure_crypto_provider();
            let mut info = info;
            self.warn_if_insecure();
            if self.config.insecure {
                if let redis::ConnectionAddr::TcpTls { host, port, .. } = info.addr().clone() {
                    info = info.set_addr(redis::ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: true,
                        tls_params: None,
                    });
                }
            }
            let result = match self.certificates()? {
                None => redis::Client::open(info),
                Some(certs) => redis::Client::build_with_tls(info, certs),
            };
            result.map_err(|e| tls_error(format!("invalid TLS settings: {e}")))
        }
    }

    /// The CA and client certificate for redis-rs, if any is set.
    ///
    /// # Errors
    /// A client certificate without its key, or a key without its certificate.
    #[cfg(feature = "tls")]
    pub(crate) fn certificates(&self) -> Result<Option<redis::TlsCertificates>, BackendError> {
        let client_tls = match (&self.config.client_cert_pem, &self.config.client_key_pem) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(tls_error(
                    "a TLS client certificate needs its key, and a key its certificate",
                ))
            }
        };
        Ok(
            (client_tls.is_some() || self.config.ca_pem.is_some()).then(|| {
                redis::TlsCertificates {
                    client_tls,
                    root_cert: self.config.ca_pem.clone(),
                }
            }),
        )
    }

    /// Logs the warning of an insecure connection.
    #[cfg(feature = "tls")]
    pub(crate) fn warn_if_insecure(&self) {
        if self.config.insecure {
            tracing::warn!(
                "TLS certificate verification is off (insecure): the server is not authenticated"
            );
        }
    }

    /// Classifies an error of the first connect: TLS failures, and the symptoms of a
    /// plain/TLS mismatch with the server's port, are [`BackendErrorKind::Tls`].
    pub(crate) fn connect_error(&self, e: redis::RedisError) -> BackendError {
        let text = e.to_string();
        if is_tls_text(&text) {
            return tls_error(format!("TLS handshake failed: {text}"));
        }
        if self.secure
            && (e.is_timeout() || e.is_connection_dropped() || e.is_io_error())
            && !e.is_connection_refusal()
        {
            return tls_error(format!(
                "no TLS handshake with the server ({text}): is it a TLS port? Use redis:// for a plain one"
            ));
        }
        if !self.secure && e.is_connection_dropped() && !e.is_connection_refusal() {
            return tls_error(format!(
                "the server closed the connection before answering ({text}): if it is a TLS port, use rediss://"
            ));
        }
        crate::backend::redis::map_error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_options_are_taken_out() {
        let (url, config) = take_url_options("rediss://h:1/2?protocol=resp2&tls_insecure=true#x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url, "rediss://h:1/2?protocol=resp2#x");
        assert!(config.insecure);
        let (url, config) =
            take_url_options("rediss://h:1?tls_insecure=false").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url, "rediss://h:1");
        assert!(config.is_empty());
        let err = take_url_options("rediss://h:1?tls_ca_file=/no/such%20file")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/no/such file"), "{err}");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_feature() {
        let err = TlsUrl::parse("rediss://h:1", &TlsConfig::default()).err();
        assert!(
            matches!(&err, Some(e) if e.kind() == BackendErrorKind::Tls && e.to_string().contains("`tls` feature")),
            "{err:?}"
        );
    }

    /// The only test of this binary that touches rustls's process default.
    #[cfg(feature = "tls")]
    #[test]
    fn an_installed_provider_is_kept() {
        use std::sync::Arc;
        // The application's own provider, told apart by its single cipher suite.
        let mut mine = rustls::crypto::ring::default_provider();
        mine.cipher_suites.truncate(1);
        assert!(mine.install_default().is_ok(), "nothing installed before");
        let before = rustls::crypto::CryptoProvider::get_default().map(Arc::clone);
        ensure_crypto_provider();
        let after = rustls::crypto::CryptoProvider::get_default().map(Arc::clone);
        match (before, after) {
            (Some(b), Some(a)) => assert!(Arc::ptr_eq(&b, &a) && a.cipher_suites.len() == 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_hides_pem() {
        let c = TlsConfig::new().client_cert_pem("CERT", "SECRETKEY");
        let debug = format!("{c:?}");
        assert!(!debug.contains("SECRETKEY"), "{debug}");
    }
}
