//! Each command on a small store, human and `--json` output.

use redis_harness::RedisServer;

use crate::support::{get, id, json, keys, put, run, sorted_lines};

/// Three sessions under `sess:` (one persistent) and two foreign keys.
fn seeded() -> RedisServer {
    let server = RedisServer::start();
    put(
        &server,
        &format!("sess:{}", id(1)),
        r#"{"n":1}"#,
        Some(60_000),
    );
    put(
        &server,
        &format!("sess:{}", id(2)),
        r#"{"n":2}"#,
        Some(7_200_000),
    );
    put(&server, &format!("sess:{}", id(3)), r#"{"n":3}"#, None);
    put(&server, "sess:admin:1", "foreign", None);
    put(&server, "other:x", "foreign", None);
    server
}

#[test]
fn count_counts_sessions_only() {
    let server = seeded();
    assert_eq!(run(&server, &["count"]).ok(), "3\n");
    assert_eq!(json(&run(&server, &["--json", "count"]).ok())["count"], 3);
}

#[test]
fn ids_lists_each_session_once() {
    let server = seeded();
    assert_eq!(
        sorted_lines(&run(&server, &["ids"]).ok()),
        vec![id(1), id(2), id(3)]
    );
    let listed = run(&server, &["--json", "--scan-count", "1", "ids"]).ok();
    let mut ids: Vec<String> = listed
        .lines()
        .map(|l| json(l).as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![id(1), id(2), id(3)]);
}

#[test]
fn show_prints_the_decoded_session_and_its_ttl() {
    let server = RedisServer::start();
    let stored = r#"{"cookie":{"originalMaxAge":null,"expires":"2099-01-01T00:00:00.000Z","path":"/"},"user":"ada","n":1}"#;
    put(&server, &format!("sess:{}", id(1)), stored, Some(3_600_000));
    put(&server, &format!("sess:{}", id(2)), r#"{"n":2}"#, None);

    let shown = run(&server, &["show", &id(1), &id(2)]).ok();
    assert!(shown.contains(&format!("id:  {}", id(1))), "{shown}");
    assert!(
        shown.contains("ttl: 59m 5") || shown.contains("ttl: 1h 0m 0s"),
        "{shown}"
    );
    assert!(shown.contains("ttl: no expiry"), "{shown}");
    assert!(
        shown.contains("\n  \"user\": \"ada\""),
        "pretty JSON: {shown}"
    );

    let record = json(run(&server, &["--json", "show", &id(1)]).ok().trim());
    assert_eq!(record["id"], id(1).as_str());
    assert_eq!(record["value"], json(stored));
    let ttl = record["ttl_ms"].as_u64().unwrap();
    assert!((3_590_000..=3_600_000).contains(&ttl), "{ttl}");
    let persistent = json(run(&server, &["--json", "show", &id(2)]).ok().trim());
    assert!(persistent["ttl_ms"].is_null());
}

#[test]
fn show_rejects_bad_missing_and_undecodable_sessions() {
    let server = RedisServer::start();
    put(&server, &format!("sess:{}", id(1)), "not json", None);
    server.cmd(&["HSET", &format!("sess:{}", id(2)), "a", "b"]);

    let bad = run(&server, &["show", "short"]);
    assert_eq!(bad.code, 1);
    assert!(bad
        .one_error()
        .contains("argument 1 is not a valid session id"));
    assert!(bad.stdout.is_empty());

    let bad_second = run(&server, &["show", &id(3), "has space in it!!"]);
    assert!(bad_second.one_error().contains("argument 2 is not a valid"));

    let missing = run(&server, &["show", &id(3)]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.one_error().contains("no session"),
        "{}",
        missing.stderr
    );

    for n in [1, 2] {
        let corrupt = run(&server, &["show", &id(n)]);
        assert_eq!(corrupt.code, 1);
        let line = corrupt.one_error();
        assert!(line.contains("could not be decoded"), "{line}");
        assert!(line.contains('#'), "names a fingerprint: {line}");
        assert!(!line.contains(&id(n)), "never the id: {line}");
    }
}

#[test]
fn rm_deletes_and_reports_how_many_existed() {
    let server = seeded();
    assert_eq!(
        run(&server, &["rm", &id(1), &id(2), &id(9)]).ok(),
        "deleted 2 of 3 sessions\n"
    );
    assert_eq!(get(&server, &format!("sess:{}", id(1))), None);
    assert_eq!(
        keys(&server),
        [
            "other:x".to_owned(),
            "sess:admin:1".into(),
            format!("sess:{}", id(3))
        ]
    );
    let report = json(&run(&server, &["--json", "rm", &id(3)]).ok());
    assert_eq!(
        (report["requested"].clone(), report["deleted"].clone()),
        (1.into(), 1.into())
    );

    let bad = run(&server, &["rm", &id(7), "bad"]);
    assert_eq!(bad.code, 1);
    assert!(bad.one_error().contains("argument 2"));
}

#[test]
fn rm_with_an_invalid_id_deletes_nothing() {
    let server = seeded();
    let bad = run(&server, &["rm", &id(1), "x"]);
    assert_eq!(bad.code, 1);
    bad.one_error();
    assert!(get(&server, &format!("sess:{}", id(1))).is_some());
}

#[test]
fn clear_with_yes_deletes_every_session_and_nothing_else() {
    let server = seeded();
    assert_eq!(
        run(&server, &["clear", "--yes"]).ok(),
        "deleted 3 sessions\n"
    );
    assert_eq!(keys(&server), vec!["other:x", "sess:admin:1"]);
    assert_eq!(
        json(&run(&server, &["--json", "clear", "-y"]).ok())["deleted"],
        0
    );
}

#[test]
fn clear_without_yes_on_a_non_terminal_refuses() {
    let server = seeded();
    let refused = run(&server, &["clear"]);
    assert_ne!(refused.code, 0);
    assert!(refused.one_error().contains("--yes"), "{}", refused.stderr);
    assert!(refused.stdout.is_empty());
    assert_eq!(run(&server, &["count"]).ok(), "3\n");
}

#[test]
fn clear_refuses_an_empty_prefix() {
    let server = seeded();
    let refused = run(&server, &["--prefix", "", "clear", "--yes"]);
    assert_ne!(refused.code, 0);
    assert!(refused.one_error().contains("empty prefix"));
    assert_eq!(keys(&server).len(), 5);
}

#[test]
fn stats_reports_count_sizes_and_ttl_buckets() {
    let server = RedisServer::start();
    let ttls = [
        Some(30_000),
        Some(600_000),
        Some(7_200_000),
        Some(172_800_000),
        Some(864_000_000),
        None,
    ];
    for (n, ttl) in (0u32..).zip(ttls) {
        put(&server, &format!("sess:{}", id(n)), r#"{"n":1}"#, ttl);
    }
    put(&server, "sess:admin:1", "foreign", None);

    let stats = json(&run(&server, &["--json", "stats"]).ok());
    assert_eq!(stats["sessions"], 6);
    assert_eq!(stats["sampled"], 6);
    let avg = stats["avg_bytes"].as_u64().unwrap();
    assert!(avg > 0);
    assert_eq!(stats["total_bytes"], stats["sampled_bytes"]);
    let ttl = &stats["ttl"];
    for bucket in [
        "under_1m",
        "under_1h",
        "under_1d",
        "under_7d",
        "longer",
        "no_expiry",
    ] {
        assert_eq!(ttl[bucket], 1, "{bucket}: {stats}");
    }

    let sampled = json(&run(&server, &["--json", "stats", "--sample", "2"]).ok());
    assert_eq!(sampled["sampled"], 2);
    assert_eq!(
        sampled["total_bytes"],
        sampled["avg_bytes"].as_u64().unwrap() * 6
    );

    let table = run(&server, &["stats"]).ok();
    for row in [
        "sessions         6",
        "memory avg",
        "memory total",
        "ttl < 1m         1",
        "ttl >= 7d        1",
        "no expiry        1",
    ] {
        assert!(table.contains(row), "{row} in {table}");
    }
}

/// Runs `clear` with stdin and stderr on a pseudo-terminal (util-linux `script`), typing
/// `answer`; returns the exit code and what the terminal showed.
fn clear_on_a_terminal(server: &RedisServer, answer: &str) -> (i32, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let line = format!(
        "'{}' --url '{}' clear",
        env!("CARGO_BIN_EXE_redis-sessions"),
        server.url()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("REDIS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` (Debian: bsdutils) runs the CLI on a terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap(), screen)
}

#[test]
fn clear_on_a_terminal_asks_first() {
    let server = seeded();
    let (code, screen) = clear_on_a_terminal(&server, "n\n");
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("Delete all 3 sessions under prefix \"sess:\"? [y/N]"),
        "{screen}"
    );
    assert!(screen.contains("aborted: nothing was deleted"), "{screen}");
    assert_eq!(run(&server, &["count"]).ok(), "3\n");

    let (code, screen) = clear_on_a_terminal(&server, "y\n");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("deleted 3 sessions"), "{screen}");
    assert_eq!(keys(&server), vec!["other:x", "sess:admin:1"]);
}
