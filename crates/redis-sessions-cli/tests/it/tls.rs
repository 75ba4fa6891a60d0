//! Commands over TLS: `--tls-ca-file`, mutual TLS through the `REDIS_TLS_*` variables,
//! `--tls-insecure`, a one-line TLS error for an untrusted certificate, and a TLS Sentinel
//! group through `rediss+sentinel://`.

use redis_harness::{RedisSentinelGroup, RedisServer, TlsCerts, TlsMode};

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

#[test]
fn commands_work_through_tls_sentinels() {
    let group = RedisSentinelGroup::start_tls();
    let primary = group.primary_port();
    for n in 0..20 {
        let key = format!("sess:{}", id(n));
        group.cmd(
            primary,
            &["SET", &key, &format!("{{\"n\":{n}}}"), "PX", "600000"],
        );
    }
    let certs = TlsCerts::get();
    let (ca, cert, key) = (
        certs.path_str("ca.crt"),
        certs.path_str("client.crt"),
        certs.path_str("client.key"),
    );
    let url = group.tls_url();
    let tls = [
        "--tls-ca-file",
        &ca,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
    ];
    fn with<'a>(tls: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        [tls, args].concat()
    }
    assert_eq!(run_url(&url, &with(&tls, &["count"])).ok(), "20\n");
    let mut expected: Vec<String> = (0..20).map(id).collect();
    expected.sort();
    assert_eq!(
        sorted_lines(&run_url(&url, &with(&tls, &["ids"])).ok()),
        expected
    );
    assert_eq!(
        run_url(&url, &with(&tls, &["rm", &id(1), &id(2)])).ok(),
        "deleted 2 of 2 sessions\n"
    );
    let left = group.cmd(primary, &["DBSIZE"]);
    assert_eq!(left.int(), Some(18), "deleted on the primary");
    // The sentinels require a client certificate: without it, one TLS error line.
    let run = run_url(&url, &["--tls-ca-file", &ca, "count"]);
    assert_eq!(run.code, 1);
    let line = run.one_error();
    assert!(line.contains("TLS"), "{line}");
    // The plain URL against the TLS sentinels: one TLS error line that says to use rediss://.
    let plain = url.replacen("rediss+sentinel", "redis+sentinel", 1);
    let run = run_url(&plain, &["count"]);
    assert_eq!(run.code, 1);
    let line = run.one_error();
    assert!(line.contains("TLS") && line.contains("rediss"), "{line}");
}
