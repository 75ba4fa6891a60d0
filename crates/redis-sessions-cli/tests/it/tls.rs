//! Commands over TLS: `--tls-ca-file`, mutual TLS through the `REDIS_TLS_*` variables,
//! `--tls-insecure`, and a one-line TLS error for an untrusted certificate.

use redis_harness::{RedisServer, TlsCerts, TlsMode};

use crate::support::{id, put, run_url, run_url_env, sorted_lines};

fn seed(server: &RedisServer, n: u32) -> Vec<String> {
    let mut ids: Vec<String> = (0..n).map(id).collect();
    for (i, sid) in ids.iter().enumerate() {
        put(
            server,
            &format!("sess:{sid}"),
            &format!("{{\"n\":{i}}}"),
            Some(600_000),
        );
    }
    ids.sort();
    ids
}

#[test]
fn count_and_ids_over_tls_with_a_ca_file() {
    let server = RedisServer::start_tls();
    let ids = seed(&server, 25);
    let ca = TlsCerts::get().path_str("ca.crt");
    let url = server.tls_url();
    assert_eq!(run_url(&url, &["--tls-ca-file", &ca, "count"]).ok(), "25\n");
    let listed = sorted_lines(&run_url(&url, &["--tls-ca-file", &ca, "ids"]).ok());
    assert_eq!(listed, ids);
}

#[test]
fn mutual_tls_from_the_environment() {
    let server = RedisServer::start_tls_mode(TlsMode::RequireClientCert);
    seed(&server, 3);
    let certs = TlsCerts::get();
    let env = [
        ("REDIS_TLS_CA_FILE", certs.path_str("ca.crt")),
        ("REDIS_TLS_CERT_FILE", certs.path_str("client.crt")),
        ("REDIS_TLS_KEY_FILE", certs.path_str("client.key")),
    ];
    assert_eq!(run_url_env(&server.tls_url(), &["count"], &env).ok(), "3\n");
    // Without the client certificate the server refuses the handshake.
    let run = run_url_env(&server.tls_url(), &["count"], &env[..1]);
    assert_eq!(run.code, 1);
    assert!(run.one_error().contains("TLS"), "{}", run.stderr);
}

#[test]
fn an_untrusted_certificate_is_one_tls_error_line() {
    let server = RedisServer::start_tls();
    let wrong = TlsCerts::get().path_str("wrong-ca.crt");
    let run = run_url(&server.tls_url(), &["--tls-ca-file", &wrong, "count"]);
    assert_eq!(run.code, 1);
    let line = run.one_error();
    assert!(
        line.contains("TLS") && line.contains("UnknownIssuer"),
        "{line}"
    );
}

#[test]
fn tls_insecure_connects_and_warns() {
    let server = RedisServer::start_tls_mode(TlsMode::OtherHost);
    seed(&server, 2);
    let run = run_url(&server.tls_url(), &["--tls-insecure", "count"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "2\n");
    assert!(
        run.stderr.starts_with("warning: --tls-insecure"),
        "{}",
        run.stderr
    );
}
