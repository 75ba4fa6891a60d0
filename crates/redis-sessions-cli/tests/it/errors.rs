//! User mistakes and outages: one `error:` line, a non-zero exit, no panic.

use redis_harness::RedisServer;

use crate::support::run_url;

#[test]
fn unreachable_redis_gives_one_error_line() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.stop();
    for args in [
        &["count"][..],
        &["ids"],
        &["export"],
        &["stats"],
        &["clear", "--yes"],
    ] {
        let failed = run_url(&url, args);
        assert_eq!(failed.code, 1, "{args:?}: {}", failed.stderr);
        let line = failed.one_error();
        assert!(line.contains("cannot connect"), "{line}");
        assert!(failed.stdout.is_empty());
    }
}

#[test]
fn a_password_in_the_url_is_not_printed() {
    let mut server = RedisServer::start();
    let url = format!("redis://user:hunter2@127.0.0.1:{}", server.port());
    server.stop();
    let failed = run_url(&url, &["count"]);
    assert_eq!(failed.code, 1);
    let line = failed.one_error();
    assert!(
        !line.contains("hunter2") && line.contains("user:***@"),
        "{line}"
    );
}

#[test]
fn a_bad_url_and_a_usage_error_are_reported() {
    let bad_url = run_url("not-a-url", &["count"]);
    assert_eq!(bad_url.code, 1);
    bad_url.one_error();
    let usage = run_url("redis://127.0.0.1:1", &["frobnicate"]);
    assert_eq!(usage.code, 2);
    let no_ids = run_url("redis://127.0.0.1:1", &["show"]);
    assert_eq!(no_ids.code, 2);
}

#[test]
fn a_missing_import_file_is_one_error() {
    let server = RedisServer::start();
    let failed = run_url(&server.url(), &["import", "/nonexistent/sessions.jsonl"]);
    assert_eq!(failed.code, 1);
    assert!(failed.one_error().contains("cannot open"));
}
