//! Every command as the admin user of the library's `acl/setuser.redis` (the README's ACL
//! block), on one server and on a cluster; a refused command says what to add to the ACL.

use redis_harness::{AclLines, RedisCluster, RedisServer};

use crate::support::{id, json, run_stdin_url, run_url, sorted_lines};

/// The library's one source of truth of the ACL lines.
const ACL_FILE: &str = include_str!("../../../redis-sessions/acl/setuser.redis");
const ADMIN: &str = "sessions-admin";
const PASSWORD: &str = "admin-secret";

fn values(prefix: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("prefix", prefix),
        ("store-password", "store-secret"),
        ("admin-password", PASSWORD),
        ("sentinel-password", "sentinel-secret"),
    ]
}

fn admin_line() -> String {
    AclLines::parse(ACL_FILE).line(ADMIN).to_owned()
}

/// The admin line without `+command`.
fn admin_line_without(command: &str) -> String {
    let token = format!("+{command}");
    let line = admin_line();
    assert!(line.split_whitespace().any(|w| w == token), "{line}");
    line.split_whitespace()
        .filter(|w| *w != token)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `scheme://sessions-admin:<password>@rest`.
fn as_admin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://{ADMIN}:{PASSWORD}@{rest}")
}

/// `count`, `ids`, `show`, `export`, `stats`, `rm`, `clear`, `import` against a deployment
/// holding sessions `0..n` (and foreign keys), as the admin user.
fn every_command(url: &str, n: u32) {
    assert_eq!(run_url(url, &["count"]).ok(), format!("{n}\n"));
    let mut expected: Vec<String> = (0..n).map(id).collect();
    expected.sort();
    assert_eq!(sorted_lines(&run_url(url, &["ids"]).ok()), expected);
    let shown = json(&run_url(url, &["--json", "show", &id(3)]).ok());
    assert_eq!(shown["value"]["n"], 3);
    let export = run_url(url, &["export"]).ok();
    assert_eq!(export.lines().count(), n as usize);
    let stats = json(&run_url(url, &["--json", "stats"]).ok());
    assert_eq!(stats["sessions"], n, "{stats}");
    assert_eq!(
        run_url(url, &["rm", &id(1), &id(2)]).ok(),
        "deleted 2 of 2 sessions\n"
    );
    assert_eq!(
        run_url(url, &["clear", "--yes"]).ok(),
        format!("deleted {} sessions\n", n - 2)
    );
    let imported = run_stdin_url(url, &["import"], &export);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert_eq!(run_url(url, &["count"]).ok(), format!("{n}\n"));
}

#[test]
fn every_command_runs_as_the_admin_user_on_one_server() {
    let server = RedisServer::start();
    server.acl_setuser_line(&admin_line(), &values("sess:"));
    for n in 0..20 {
        let key = format!("sess:{}", id(n));
        server.cmd(&["SET", &key, &format!("{{\"n\":{n}}}"), "PX", "600000"]);
    }
    server.cmd(&["SET", &format!("other:{}", id(1)), "{}"]);
    every_command(&as_admin(&server.url()), 20);
    assert_eq!(
        server.cmd(&["DBSIZE"]).int(),
        Some(21),
        "the foreign key stays"
    );
}

#[test]
fn every_command_runs_as_the_admin_user_on_a_cluster() {
    let cluster = RedisCluster::start();
    cluster.acl_setuser_line(&admin_line(), &values("sess:"));
    for n in 0..60 {
        let key = format!("sess:{}", id(n));
        cluster.cmd(
            cluster.primary_for_key(&key),
            &["SET", &key, &format!("{{\"n\":{n}}}"), "PX", "600000"],
        );
    }
    every_command(&as_admin(&cluster.url()), 60);
}

#[test]
fn a_refused_command_prints_the_acl_setuser_that_grants_it() {
    let server = RedisServer::start();
    server.acl_setuser_line(&admin_line_without("unlink"), &values("sess:"));
    let key = format!("sess:{}", id(1));
    server.cmd(&["SET", &key, "{}"]);
    let failed = run_url(&as_admin(&server.url()), &["rm", &id(1)]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let lines: Vec<&str> = failed.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", failed.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(lines[0].contains("may not run UNLINK"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        "redis-sessions: the Redis user may not run UNLINK; add it with: ACL SETUSER sessions-admin +unlink"
    );
    assert_eq!(server.cmd(&["EXISTS", &key]).int(), Some(1));
}

#[test]
fn a_refused_subcommand_and_refused_keys_say_what_to_add() {
    let server = RedisServer::start();
    server.acl_setuser_line(&admin_line_without("memory|usage"), &values("sess:"));
    server.cmd(&["SET", &format!("sess:{}", id(1)), "{}"]);
    server.cmd(&["SET", &format!("a*b:{}", id(1)), "{}"]);
    let url = as_admin(&server.url());
    let failed = run_url(&url, &["stats"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(
        failed.stderr.lines().last(),
        Some("redis-sessions: the Redis user may not run MEMORY USAGE; add it with: ACL SETUSER sessions-admin +memory|usage"),
        "{}",
        failed.stderr
    );
    // Another prefix than the user's: the key pattern to add, glob-escaped.
    let failed = run_url(&url, &["--prefix", "a*b:", "show", &id(1)]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(
        failed.stderr.lines().last(),
        Some("redis-sessions: the Redis user may not use GET on keys under \"a*b:\"; add the key pattern with: ACL SETUSER sessions-admin ~a\\*b:*"),
        "{}",
        failed.stderr
    );
}
