//! TLS: mutual TLS, URL options, insecure mode, and a one-line typed TLS error (never a hang
//! or a panic) for each way a TLS connect goes wrong.

use std::time::Duration;

use redis_harness::{RedisServer, TlsCerts, TlsMode};
use redis_sessions::{Error, RedisBackend, RedisConfig, RedisStore, Session, TlsConfig};

use crate::support::id;

/// Longer than the 1 s connect timeout plus the 500 ms handshake reply: a connect that takes
/// this long is a hang.
pub(crate) const NO_HANG: Duration = Duration::from_secs(5);

async fn connect(url: &str, tls: TlsConfig) -> redis_sessions::Result<RedisBackend> {
    let config = RedisConfig {
        tls,
        ..Default::default()
    };
    tokio::time::timeout(NO_HANG, RedisBackend::connect_with(url, config))
        .await
        .unwrap_or_else(|_| panic!("connect to {url} hung"))
        .map_err(Error::from)
}

fn ca() -> TlsConfig {
    TlsConfig::new().ca_pem(TlsCerts::get().pem("ca.crt"))
}

async fn round_trip(backend: RedisBackend) {
    let store = RedisStore::new(backend);
    let id = id();
    assert!(store.set(&id, &Session::new()).await.unwrap().is_written());
    assert!(store.get(&id).await.unwrap().is_some());
}

/// The error of a connect that must fail with a TLS problem, checked to be one line.
async fn tls_failure(url: &str, tls: TlsConfig) -> String {
    let err = connect(url, tls)
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} connected"));
    let text = err.to_string();
    assert!(err.is_tls(), "not a TLS error: {text}");
    assert!(!text.contains('\n'), "more than one line: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate() {
    let server =
        tokio::task::spawn_blocking(|| RedisServer::start_tls_mode(TlsMode::RequireClientCert))
            .await
            .unwrap();
    let certs = TlsCerts::get();
    let mtls = ca().client_cert_pem(certs.pem("client.crt"), certs.pem("client.key"));
    round_trip(connect(&server.tls_url(), mtls).await.unwrap()).await;
    let text = tls_failure(&server.tls_url(), ca()).await;
    println!("without a client certificate: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_options_name_the_pem_files() {
    let server =
        tokio::task::spawn_blocking(|| RedisServer::start_tls_mode(TlsMode::RequireClientCert))
            .await
            .unwrap();
    let certs = TlsCerts::get();
    let url = format!(
        "{}?tls_ca_file={}&tls_cert_file={}&tls_key_file={}",
        server.tls_url(),
        certs.path_str("ca.crt"),
        certs.path_str("client.crt"),
        certs.path_str("client.key")
    );
    let backend = redis_sessions::connect(&url).await.unwrap();
    let store = RedisStore::new(backend);
    let id = id();
    assert!(store.set(&id, &Session::new()).await.unwrap().is_written());
    assert_eq!(store.length().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_tls_error() {
    let server = tokio::task::spawn_blocking(RedisServer::start_tls)
        .await
        .unwrap();
    let wrong = TlsConfig::new().ca_pem(TlsCerts::get().pem("wrong-ca.crt"));
    let text = tls_failure(&server.tls_url(), wrong).await;
    println!("wrong CA: {text}");
    // The system's roots do not know the test CA either.
    let text = tls_failure(&server.tls_url(), TlsConfig::new()).await;
    println!("no CA: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_is_a_tls_error_unless_insecure() {
    let server = tokio::task::spawn_blocking(|| RedisServer::start_tls_mode(TlsMode::OtherHost))
        .await
        .unwrap();
    let text = tls_failure(&server.tls_url(), ca()).await;
    println!("other host: {text}");
    round_trip(
        connect(&server.tls_url(), TlsConfig::new().insecure(true))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_url_against_a_tls_port_is_a_tls_error() {
    let server = tokio::task::spawn_blocking(RedisServer::start_tls)
        .await
        .unwrap();
    let url = format!("redis://127.0.0.1:{}", server.tls_port());
    let text = tls_failure(&url, TlsConfig::new()).await;
    println!("plain to TLS: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_url_against_a_plain_port_is_a_tls_error() {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let url = format!("rediss://127.0.0.1:{}", server.port());
    let text = tls_failure(&url, ca()).await;
    println!("TLS to plain: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_on_a_plain_url_are_refused() {
    let err = connect("redis://127.0.0.1:1", ca()).await.err().unwrap();
    assert!(err.is_tls(), "{err}");
}

#[tokio::test]
async fn a_dead_port_is_unavailable_not_a_tls_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for scheme in ["redis", "rediss"] {
        let err = connect(&format!("{scheme}://127.0.0.1:{port}"), TlsConfig::new())
            .await
            .err()
            .unwrap();
        assert!(err.is_unavailable() && !err.is_tls(), "{scheme}: {err}");
    }
}

/// `rediss+sentinel://`: each way a TLS connect through sentinels goes wrong is a one-line
/// typed TLS error, fast, on one TLS group (whose sentinels also have plain ports: the
/// plain sentinels of the TLS URL case).
#[cfg(feature = "sentinel")]
mod sentinel {
    use std::time::{Duration, Instant};

    use redis_harness::{RedisSentinelGroup, TlsCerts};
    use redis_sessions::{Error, SentinelBackend, SentinelConfig, TlsConfig};

    use super::NO_HANG;

    /// Connects through `sentinels` with the default 1 s connect timeout, returning the error
    /// and how long it took to come.
    async fn failure(sentinels: &[u16], tls: Option<TlsConfig>) -> (Error, Duration) {
        let mut config = SentinelConfig::new(
            sentinels.iter().map(|p| format!("127.0.0.1:{p}")),
            "mymaster",
        );
        config.tls = tls;
        let started = Instant::now();
        let result = tokio::time::timeout(NO_HANG, SentinelBackend::connect_with(config))
            .await
            .unwrap_or_else(|_| panic!("connect through {sentinels:?} hung"));
        let elapsed = started.elapsed();
        let err = Error::from(
            result
                .err()
                .unwrap_or_else(|| panic!("{sentinels:?} connected")),
        );
        let text = err.to_string();
        assert!(err.is_tls(), "not a TLS error: {text}");
        assert!(!text.contains('\n'), "more than one line: {text}");
        (err, elapsed)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_sentinel_errors_are_typed_and_fast() {
        let group = tokio::task::spawn_blocking(RedisSentinelGroup::start_tls)
            .await
            .unwrap();
        let (tls, plain) = (group.sentinel_tls_ports(), group.sentinel_ports());
        let certs = TlsCerts::get();
        let client = |ca: &str| {
            TlsConfig::new()
                .ca_pem(certs.pem(ca))
                .client_cert_pem(certs.pem("client.crt"), certs.pem("client.key"))
        };
        // The sentinels are asked at once. A certificate problem or a TLS port answering a
        // plain client fails at once; a plain port waits for more of a TLS client's hello and
        // is given up on after the connect timeout: one timeout in all, not one per sentinel.
        let timeout = SentinelConfig::new(["x:1"], "m").connect_timeout;
        let cases = [
            ("wrong CA", &tls, Some(client("wrong-ca.crt")), timeout),
            (
                "no client certificate",
                &tls,
                Some(TlsConfig::new().ca_pem(certs.pem("ca.crt"))),
                timeout,
            ),
            ("plain to TLS sentinels", &tls, None, timeout),
            (
                "TLS to plain sentinels",
                &plain,
                Some(client("ca.crt")),
                timeout * 2,
            ),
        ];
        for (what, ports, config, bound) in cases {
            let (err, elapsed) = failure(ports, config).await;
            println!("{what} ({elapsed:?}): {err}");
            assert!(
                elapsed < bound,
                "{what}: took {elapsed:?}, not within {bound:?}"
            );
        }
        // The same group with the right settings works: the failures were the settings'.
        let mut config = SentinelConfig::new(
            tls.iter().map(|p| format!("127.0.0.1:{p}")),
            group.master_name(),
        );
        config.tls = Some(client("ca.crt"));
        let backend = SentinelBackend::connect_with(config).await.unwrap();
        assert_eq!(backend.primary().1, group.primary_port());
    }

    #[tokio::test]
    async fn tls_settings_on_a_plain_sentinel_url_are_refused() {
        let ca = TlsConfig::new().ca_pem(TlsCerts::get().pem("ca.crt"));
        let err = redis_sessions::connect_with_tls("redis+sentinel://127.0.0.1:1/mymaster", ca)
            .await
            .err()
            .map(Error::from)
            .unwrap();
        assert!(
            err.is_tls() && err.to_string().contains("rediss+sentinel://"),
            "{err}"
        );
    }
}
