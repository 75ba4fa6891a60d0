//! `doctor`: one line per check, `--json`, and an exit status that tells ok (0), warnings (4)
//! and failures (5) apart from errors (1) and usage errors (2).

use redis_harness::{RedisCluster, RedisServer, Reply, TlsCerts};

use crate::support::{json, run, run_url, Run};

fn start(extra: &[&str]) -> RedisServer {
    RedisServer::try_start(extra).unwrap_or_else(|e| panic!("{e}"))
}

/// The output line of the check `name` (its level is the first word).
#[track_caller]
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1).map(|w| w.trim_end_matches(':')) == Some(name))
        .unwrap_or_else(|| panic!("no {name} line in:\n{}", run.stdout))
}

#[test]
fn a_healthy_server_exits_0_with_one_ok_line_per_check() {
    let server = start(&["appendonly", "yes"]);
    let run = run(&server, &["doctor"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    for name in [
        "version",
        "eviction",
        "persistence",
        "replicas",
        "tls",
        "permissions",
    ] {
        assert!(line(&run, name).starts_with("ok "), "{}", run.stdout);
    }
    assert!(
        run.stdout.lines().all(|l| l.starts_with("ok ")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("fix:"), "{}", run.stdout);

    let run = crate::support::run(&server, &["doctor", "--json"]);
    assert_eq!(run.code, 0);
    let report = json(&run.stdout);
    assert_eq!(report["level"], "ok");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 6, "{report}");
    for check in checks {
        assert_eq!(check["level"], "ok", "{check}");
        assert!(
            check["name"].is_string() && check["reason"].is_string(),
            "{check}"
        );
        assert!(check["fix"].is_null(), "{check}");
    }
}

#[test]
fn persistence_off_and_allkeys_eviction_exit_4_with_their_fixes() {
    // The harness's `--save ""` and no AOF: persistence off.
    let server = start(&["maxmemory-policy", "allkeys-lru"]);
    let run = run(&server, &["doctor"]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    let persistence = line(&run, "persistence");
    assert!(persistence.starts_with("warning "), "{persistence}");
    assert!(
        persistence.contains("fix: turn on appendonly yes"),
        "{persistence}"
    );
    let eviction = line(&run, "eviction");
    assert!(eviction.starts_with("warning "), "{eviction}");
    assert!(
        eviction.contains("allkeys-lru") && eviction.contains("logouts"),
        "{eviction}"
    );
    assert!(line(&run, "permissions").starts_with("ok "));

    let report = json(&crate::support::run(&server, &["--json", "doctor"]).stdout);
    assert_eq!(report["level"], "warning", "{report}");
    let warned: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["level"] == "warning")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(warned, ["eviction", "persistence"], "{report}");
}

#[test]
fn a_user_that_may_not_run_info_gets_the_acl_line() {
    let server = start(&["appendonly", "yes"]);
    let reply = server.cmd(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">pw",
        "resetkeys",
        "~sess:*",
        "-@all",
        "+get",
        "+getex",
        "+set",
        "+pexpire",
        "+pttl",
        "+unlink",
        "+mget",
        "+scan",
        "+ping",
    ]);
    assert_eq!(reply, Reply::Status("OK".into()));
    let url = format!("redis://app:pw@127.0.0.1:{}", server.port());
    let run = run_url(&url, &["doctor"]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    let info = line(&run, "info");
    assert!(info.starts_with("warning "), "{info}");
    assert!(info.contains("ACL SETUSER <user> +info"), "{info}");
    assert!(!run.stdout.contains(":pw@"), "no password in the output");
}

#[test]
fn unreachable_redis_is_a_failure_line_and_exit_5() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.stop();
    let run = run_url(&url, &["doctor"]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let connection = line(&run, "connection");
    assert!(connection.starts_with("failure "), "{connection}");
    assert!(connection.contains("fix: check --url"), "{connection}");
    let report = json(&run_url(&url, &["doctor", "--json"]).stdout);
    assert_eq!(report["level"], "failure");
}

#[test]
fn a_usage_error_keeps_exit_2() {
    let run = run_url("redis://127.0.0.1:1", &["doctor", "--no-such-option"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn tls_in_use_is_reported() {
    let server = RedisServer::start_tls();
    let ca = TlsCerts::get().path_str("ca.crt");
    let run = run_url(&server.tls_url(), &["--tls-ca-file", &ca, "doctor"]);
    let tls = line(&run, "tls");
    assert_eq!(tls, "ok      tls: connections use TLS", "{}", run.stdout);
    assert!(line(&run, "permissions").starts_with("ok "));
}

#[test]
fn a_cluster_with_a_primary_down_exits_5_naming_it() {
    // A long node timeout: no replica takes the killed primary's place during the test.
    let mut cluster = RedisCluster::start_with_node_timeout(std::time::Duration::from_secs(60));
    let url = cluster.url();
    let healthy = run_url(&url, &["doctor"]);
    // The harness runs its nodes without persistence: that warning only.
    assert_eq!(healthy.code, 4, "{}{}", healthy.stdout, healthy.stderr);
    assert!(
        line(&healthy, "slots").starts_with("ok "),
        "{}",
        healthy.stdout
    );
    for l in healthy.stdout.lines() {
        assert!(
            l.starts_with("ok ") || l.starts_with("warning persistence"),
            "{l}"
        );
    }

    let victim = cluster.primary_ports()[2];
    cluster.kill(victim);
    let broken = run_url(&url, &["doctor"]);
    assert_eq!(broken.code, 5, "{}{}", broken.stdout, broken.stderr);
    let named = format!("[127.0.0.1:{victim}]");
    let failure = broken
        .stdout
        .lines()
        .find(|l| l.starts_with("failure ") && l.contains(&named))
        .unwrap_or_else(|| panic!("no failure naming {named}:\n{}", broken.stdout));
    assert!(failure.contains("fix: "), "{failure}");
}
