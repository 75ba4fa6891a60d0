//! Test certificates for TLS servers, made with the `openssl` CLI once and shared by later test
//! processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::server::{temp_dir, HarnessError};

/// How to get `openssl` when it is missing.
const OPENSSL_HINT: &str = "the openssl command was not found on PATH; install it with \
`apt-get install -y openssl`";

/// A certificate authority, a server certificate for `127.0.0.1` signed by it, a client
/// certificate for mutual TLS, a certificate for another host signed by the same authority and
/// an unrelated authority: PEM files in one directory, made once and reused.
#[derive(Debug)]
pub struct TlsCerts {
    dir: PathBuf,
}

impl TlsCerts {
    /// The process's certificates, made on first use.
    ///
    /// # Panics
    /// When `openssl` is missing or fails: TLS tests cannot run without it.
    pub fn get() -> &'static TlsCerts {
        static CERTS: OnceLock<Result<TlsCerts, String>> = OnceLock::new();
        match CERTS.get_or_init(|| TlsCerts::make().map_err(|e| e.to_string())) {
            Ok(certs) => certs,
            Err(e) => panic!("test certificates: {e}"),
        }
    }

    /// Every file [`TlsCerts::make`] writes that a test uses.
    const FILES: [&'static str; 9] = [
        "ca.crt",
        "server.crt",
        "server.key",
        "client.crt",
        "client.key",
        "other-host.crt",
        "other-host.key",
        "wrong-ca.crt",
        "wrong-ca.key",
    ];

    /// The certificates in one shared directory of the system's temp dir: made once (into a
    /// directory of this process, then renamed into place, so concurrent test processes never
    /// see half of them) and reused by later processes, so no run leaves a directory behind.
    fn make() -> Result<TlsCerts, HarnessError> {
        let shared = std::env::temp_dir().join("redis-harness-tls-certs-v1");
        if Self::FILES.iter().all(|f| shared.join(f).is_file()) {
            return Ok(TlsCerts { dir: shared });
        }
        let fresh = Self::generate(temp_dir("tls-certs")?)?;
        let _ = std::fs::remove_dir_all(&shared);
        match std::fs::rename(&fresh.dir, &shared) {
            Ok(()) => Ok(TlsCerts { dir: shared }),
            // Another process put its certificates there first: use those.
            Err(_) if Self::FILES.iter().all(|f| shared.join(f).is_file()) => {
                let _ = std::fs::remove_dir_all(&fresh.dir);
                Ok(TlsCerts { dir: shared })
            }
            Err(_) => Ok(fresh),
        }
    }

    fn generate(dir: PathBuf) -> Result<TlsCerts, HarnessError> {
        let certs = TlsCerts { dir };
        let d = &certs.dir;
        let p = |name: &str| d.join(name).to_string_lossy().into_owned();
        for ca in ["ca", "wrong-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                &format!("/CN=redis-harness {ca}"),
                "-keyout",
                &p(&format!("{ca}.key")),
                "-out",
                &p(&format!("{ca}.crt")),
            ])?;
        }
        for (name, san) in [
            ("server", "subjectAltName=IP:127.0.0.1"),
            ("other-host", "subjectAltName=DNS:redis.example.com"),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &p(&format!("{name}.key")),
                "-out",
                &p(&format!("{name}.csr")),
            ])?;
            std::fs::write(d.join(format!("{name}.ext")), format!("{san}\n"))?;
            openssl(&[
                "x509",
                "-req",
                "-days",
                "3650",
                "-in",
                &p(&format!("{name}.csr")),
                "-CA",
                &p("ca.crt"),
                "-CAkey",
                &p("ca.key"),
                "-CAcreateserial",
                "-extfile",
                &p(&format!("{name}.ext")),
                "-out",
                &p(&format!("{name}.crt")),
            ])?;
        }
        Ok(certs)
    }

    /// The directory of the PEM files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of one file: `ca.crt`, `server.crt`/`.key`, `client.crt`/`.key`,
    /// `other-host.crt`/`.key` (valid for `redis.example.com` only), `wrong-ca.crt`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Path of one file as text, for command lines and URLs.
    pub fn path_str(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// The contents of one file.
    ///
    /// # Panics
    /// When the file cannot be read.
    pub fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }
}

fn openssl(args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HarnessError::Missing(format!("{OPENSSL_HINT} ({e})")),
            _ => HarnessError::Io(e),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::NotReady(format!(
            "openssl {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
