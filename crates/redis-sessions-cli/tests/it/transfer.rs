//! `export` and `import`: the JSON Lines format, round trips, existing sessions, bad lines.

use std::collections::BTreeMap;

use redis_harness::RedisServer;

use std::io::Write as _;

use crate::support::{
    appears, get, id, json, keys, pttl, put, run, run_stdin, spawn_with_stdin, wait_at_most,
};

/// Exported records by id.
fn records(export: &str) -> BTreeMap<String, serde_json::Value> {
    export
        .lines()
        .map(|line| {
            let record = json(line);
            let fields: Vec<&String> = record.as_object().unwrap().keys().collect();
            assert_eq!(fields, ["id", "ttl_ms", "value"], "{line}");
            (record["id"].as_str().unwrap().to_owned(), record)
        })
        .collect()
}

#[test]
fn export_writes_one_record_per_session() {
    let server = RedisServer::start();
    put(
        &server,
        &format!("sess:{}", id(1)),
        r#"{"n":1}"#,
        Some(60_000),
    );
    put(&server, &format!("sess:{}", id(2)), r#"{"n":2}"#, None);
    put(&server, "sess:admin:1", r#"{"foreign":true}"#, None);

    let exported = records(&run(&server, &["export"]).ok());
    assert_eq!(exported.len(), 2);
    let first = &exported[&id(1)];
    assert_eq!(first["value"], json(r#"{"n":1}"#));
    assert!((59_000..=60_000).contains(&first["ttl_ms"].as_u64().unwrap()));
    assert!(exported[&id(2)]["ttl_ms"].is_null());
}

#[test]
fn export_reports_undecodable_values_and_goes_on() {
    let server = RedisServer::start();
    put(&server, &format!("sess:{}", id(1)), r#"{"n":1}"#, None);
    put(&server, &format!("sess:{}", id(2)), "{truncated", None);
    server.cmd(&["SADD", &format!("sess:{}", id(3)), "member"]);
    put(&server, &format!("sess:{}", id(4)), r#"{"n":4}"#, None);

    let run = run(&server, &["export"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        records(&run.stdout).keys().collect::<Vec<_>>(),
        [&id(1), &id(4)]
    );
    let errors: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(errors.len(), 3, "two values and a summary: {}", run.stderr);
    let per_value = errors.iter().filter(|l| l.contains("could not be decoded"));
    assert_eq!(per_value.filter(|l| l.contains("session #")).count(), 2);
    assert!(
        errors[2].contains("2 could not be decoded"),
        "{}",
        errors[2]
    );
    assert!(!run.stderr.contains(&id(2)) && !run.stderr.contains(&id(3)));
}

#[test]
fn export_clear_import_round_trip_keeps_values_and_ttls() {
    let server = RedisServer::start();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // connect-redis style: cookie.expires and a TTL rounded up to whole seconds.
    let expires_ms = now_ms + 1_800_000;
    let expires = format_iso(expires_ms);
    let with_cookie = format!(
        r#"{{"cookie":{{"originalMaxAge":1800000,"expires":"{expires}","httpOnly":true,"path":"/"}},"user":"ada","cart":[1,2,{{"sku":"x"}}]}}"#
    );
    let sessions = [
        (id(1), with_cookie, Some(1_800_000 + 500)),
        (
            id(2),
            r#"{"n":2,"nested":{"a":[true,null,1.5]}}"#.to_owned(),
            Some(86_400_000),
        ),
        (id(3), r#"{"n":3}"#.to_owned(), None),
        (id(4), r#"{"unicode":"šéß ✓"}"#.to_owned(), Some(90_000)),
    ];
    for (id, value, ttl) in &sessions {
        put(&server, &format!("sess:{id}"), value, *ttl);
    }
    put(&server, "sess:admin:1", "foreign", None);
    // express-session `rolling`: touch raised the TTL, the stored cookie.expires is stale.
    let rolled_key = format!("sess:{}", id(5));
    let stale = format_iso(now_ms + 600_000);
    let rolled = format!(r#"{{"cookie":{{"expires":"{stale}"}},"n":5}}"#);
    put(&server, &rolled_key, &rolled, Some(3_600_000));
    let clock = std::time::Instant::now();
    let before: Vec<i64> = sessions
        .iter()
        .map(|(id, ..)| pttl(&server, &format!("sess:{id}")))
        .collect();

    let exported = run(&server, &["export"]).ok();
    assert_eq!(exported.lines().count(), 5);
    assert_eq!(
        run(&server, &["clear", "--yes"]).ok(),
        "deleted 5 sessions\n"
    );
    assert_eq!(keys(&server), ["sess:admin:1"]);
    let imported = run_stdin(&server, &["import"], &exported).ok();
    assert_eq!(
        imported,
        "imported 5, skipped 0 (exist), expired 0, failed 0\n"
    );

    for ((id, value, _), before) in sessions.iter().zip(before) {
        let key = format!("sess:{id}");
        let stored = get(&server, &key).unwrap();
        assert_eq!(json(&stored), json(value), "{id}");
        let after = pttl(&server, &key);
        // The TTL went on running between the two readings; the import may lose up to a second.
        let elapsed = clock.elapsed().as_millis() as i64;
        if before == -1 {
            assert_eq!(after, -1, "{id} stays without expiry");
        } else {
            assert!(after <= before, "{id}: TTL {before} ms became {after} ms");
            assert!(
                before - after <= 1000 + elapsed,
                "{id}: TTL {before} ms became {after} ms"
            );
        }
    }

    // The rolled session keeps its real TTL; its expiry moves to match it.
    let ttl = pttl(&server, &rolled_key);
    assert!((3_590_000..=3_600_000).contains(&ttl), "{ttl}");
    let mut value = json(&get(&server, &rolled_key).unwrap());
    assert_ne!(value["cookie"]["expires"], stale.as_str());
    value["cookie"]["expires"] = stale.as_str().into();
    assert_eq!(value, json(&rolled));
}

/// `ms` since the epoch as express-session writes `cookie.expires` (the library's own format).
fn format_iso(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let value = serde_json::to_value(redis_sessions::Session::new().with_expiry(at)).unwrap();
    value["cookie"]["expires"].as_str().unwrap().to_owned()
}

#[test]
fn import_skips_existing_sessions_unless_overwrite() {
    let server = RedisServer::start();
    let key = format!("sess:{}", id(1));
    put(&server, &key, r#"{"v":"old"}"#, Some(600_000));
    let input = format!(
        "{}\n{}\n",
        serde_json::json!({"id": id(1), "ttl_ms": 120_000, "value": {"v": "new"}}),
        serde_json::json!({"id": id(2), "ttl_ms": null, "value": {"v": "two"}}),
    );

    let skipped = run_stdin(&server, &["import"], &input).ok();
    assert_eq!(
        skipped,
        "imported 1, skipped 1 (exist), expired 0, failed 0\n"
    );
    assert_eq!(get(&server, &key).unwrap(), r#"{"v":"old"}"#);
    assert!(pttl(&server, &key) > 500_000);
    assert_eq!(pttl(&server, &format!("sess:{}", id(2))), -1);

    let report = json(&run_stdin(&server, &["--json", "import", "--overwrite"], &input).ok());
    assert_eq!(
        report,
        serde_json::json!({"imported": 2, "skipped": 0, "expired": 0, "failed": 0})
    );
    assert_eq!(
        json(&get(&server, &key).unwrap()),
        serde_json::json!({"v": "new"})
    );
    let ttl = pttl(&server, &key);
    assert!((119_000..=120_000).contains(&ttl), "{ttl}");
}

#[test]
fn import_reports_malformed_lines_and_imports_the_rest() {
    let server = RedisServer::start();
    let good =
        |n: u32| serde_json::json!({"id": id(n), "ttl_ms": 60_000, "value": {"n": n}}).to_string();
    let input = [
        good(1),
        "{not json".to_owned(),
        String::new(),
        r#"{"id":"short","ttl_ms":1,"value":{}}"#.to_owned(),
        good(2),
        format!(r#"{{"id":"{}","ttl_ms":"soon","value":{{}}}}"#, id(3)),
        format!(r#"{{"id":"{}","ttl_ms":1,"value":[1,2]}}"#, id(4)),
        good(5),
    ]
    .join("\n");

    let path = std::env::temp_dir().join(format!(
        "redis-sessions-cli-import-{}.jsonl",
        std::process::id()
    ));
    std::fs::write(&path, &input).unwrap();
    let from_file = run(&server, &["import", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();

    assert_eq!(from_file.code, 3, "{}", from_file.stderr);
    assert_eq!(
        from_file.stdout,
        "imported 3, skipped 0 (exist), expired 0, failed 4\n"
    );
    let errors: Vec<&str> = from_file.stderr.lines().collect();
    assert_eq!(errors.len(), 4, "{}", from_file.stderr);
    for (line, number) in errors.iter().zip([2, 4, 6, 7]) {
        assert!(
            line.starts_with(&format!("error: line {number}: ")),
            "{line}"
        );
    }
    assert!(errors[1].contains("invalid session id"));
    assert!(
        !from_file.stderr.contains("soon"),
        "no record contents in errors"
    );
    for n in [1, 2, 5] {
        assert_eq!(
            json(&get(&server, &format!("sess:{}", id(n))).unwrap())["n"],
            n
        );
    }
    assert_eq!(keys(&server).len(), 3);
}

#[test]
fn import_with_a_passed_expiry_writes_nothing() {
    let server = RedisServer::start();
    let input = serde_json::json!({
        "id": id(1), "ttl_ms": null,
        "value": {"cookie": {"expires": "2001-01-01T00:00:00.000Z"}, "n": 1},
    });
    let report = run_stdin(&server, &["import"], &input.to_string()).ok();
    assert_eq!(
        report,
        "imported 0, skipped 0 (exist), expired 1, failed 0\n"
    );
    assert!(keys(&server).is_empty());
}

/// What was imported is what is stored and exported again, byte for byte: member order,
/// `null`s and every `cookie` member (a new user found `"expires": null` dropped and the
/// members reordered).
#[test]
fn import_then_export_gives_back_the_same_value() {
    let server = RedisServer::start();
    let value =
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#;
    let line = format!(r#"{{"id":"{}","ttl_ms":60000,"value":{value}}}"#, id(1));
    let report = run_stdin(&server, &["import"], &line).ok();
    assert_eq!(
        report,
        "imported 1, skipped 0 (exist), expired 0, failed 0\n"
    );
    assert_eq!(
        get(&server, &format!("sess:{}", id(1))).as_deref(),
        Some(value)
    );
    let exported = run(&server, &["export"]).ok();
    assert!(
        exported.contains(&format!(r#""value":{value}"#)),
        "{exported}"
    );
}

#[test]
fn duplicate_ids_in_one_import_follow_the_file_order() {
    let server = RedisServer::start();
    let line = |v: u32| serde_json::json!({"id": id(1), "ttl_ms": null, "value": {"v": v}});
    let input = (1..=5)
        .map(|v| line(v).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let key = format!("sess:{}", id(1));

    let first = run_stdin(&server, &["import"], &input).ok();
    assert_eq!(
        first,
        "imported 1, skipped 4 (exist), expired 0, failed 0\n"
    );
    assert_eq!(json(&get(&server, &key).unwrap())["v"], 1);

    let last = run_stdin(&server, &["import", "--overwrite"], &input).ok();
    assert_eq!(last, "imported 5, skipped 0 (exist), expired 0, failed 0\n");
    assert_eq!(json(&get(&server, &key).unwrap())["v"], 5);
}

#[test]
fn thousands_of_sessions_page_batch_and_round_trip() {
    let server = RedisServer::start();
    let total = 2_500u32;
    let input: String = (0..total)
        .map(|n| {
            let ttl = if n % 3 == 0 {
                None
            } else {
                Some(600_000 + u64::from(n))
            };
            format!(
                "{}\n",
                serde_json::json!({"id": id(n), "ttl_ms": ttl, "value": {"n": n}})
            )
        })
        .collect();
    let small = ["--scan-count", "7"];
    let with = |args: &[&'static str]| [&small[..], args].concat();

    let imported = run_stdin(&server, &with(&["import"]), &input).ok();
    assert_eq!(
        imported,
        format!("imported {total}, skipped 0 (exist), expired 0, failed 0\n")
    );
    assert_eq!(run(&server, &with(&["count"])).ok(), format!("{total}\n"));
    let ids = run(&server, &with(&["ids"])).ok();
    let unique: std::collections::HashSet<&str> = ids.lines().collect();
    assert_eq!(
        (ids.lines().count(), unique.len()),
        (total as usize, total as usize)
    );

    let exported = run(&server, &with(&["export"])).ok();
    let records = records(&exported);
    assert_eq!(records.len(), total as usize);
    for n in [0, 1, 1234, total - 1] {
        let record = &records[&id(n)];
        assert_eq!(record["value"]["n"], n);
        assert_eq!(record["ttl_ms"].is_null(), n % 3 == 0);
    }

    let stats = json(&run(&server, &with(&["--json", "stats", "--sample", "100"])).ok());
    assert_eq!(stats["sessions"], total);
    assert_eq!(stats["sampled"], 100);
    assert_eq!(stats["ttl"]["under_1h"], total - total.div_ceil(3));

    assert_eq!(
        run(&server, &with(&["clear", "--yes"])).ok(),
        format!("deleted {total} sessions\n")
    );
    assert!(keys(&server).is_empty());
    let again = run_stdin(&server, &with(&["import"]), &exported).ok();
    assert_eq!(
        again,
        format!("imported {total}, skipped 0 (exist), expired 0, failed 0\n")
    );
    assert_eq!(keys(&server).len(), total as usize);
}

#[test]
fn import_reports_an_oversized_session_and_an_overlong_line_and_goes_on() {
    let server = RedisServer::start();
    let record = |n: u32, text: &str| {
        serde_json::json!({"id": id(n), "ttl_ms": 60_000, "value": {"text": text}}).to_string()
    };
    // Over the store's 64 KiB cap once encoded, but short enough a line to be read.
    let oversized = record(2, &"x".repeat(70_000));
    // Longer than any line import reads: skipped as it streams by.
    let overlong = record(3, &"y".repeat(1_000_000));
    let input = [record(1, "a"), oversized, overlong, record(4, "b")].join("\n");

    let result = run_stdin(&server, &["import"], &input);
    assert_eq!(result.code, 3, "{}", result.stderr);
    assert_eq!(
        result.stdout,
        "imported 2, skipped 0 (exist), expired 0, failed 2\n"
    );
    let errors: Vec<&str> = result.stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{}", result.stderr);
    assert!(
        errors[0].starts_with("error: line 2: session is ") && errors[0].contains("cap"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("error: line 3: line is longer than "),
        "{}",
        errors[1]
    );
    assert_eq!(
        keys(&server),
        vec![format!("sess:{}", id(1)), format!("sess:{}", id(4))]
    );
}

#[test]
fn import_writes_each_line_while_the_input_is_still_open() {
    let server = RedisServer::start();
    let mut child = spawn_with_stdin(&server.url(), &["import"]);
    let mut stdin = child.stdin.take().unwrap();
    let line =
        |n: u32| serde_json::json!({"id": id(n), "ttl_ms": 60_000, "value": {"n": n}}).to_string();
    writeln!(stdin, "{}", line(1)).unwrap();
    stdin.flush().unwrap();
    // The write must not wait for more input: reading stdin may not block the runtime.
    assert!(
        appears(&server, &format!("sess:{}", id(1)), 20),
        "line 1 was not written while the input stayed open"
    );
    writeln!(stdin, "{}", line(2)).unwrap();
    drop(stdin);
    let done = wait_at_most(child, 20);
    assert_eq!(
        done.ok(),
        "imported 2, skipped 0 (exist), expired 0, failed 0\n"
    );
}

#[test]
fn import_stopped_by_a_redis_failure_exits_while_the_input_is_open() {
    let mut server = RedisServer::start();
    let url = server.url();
    let mut child = spawn_with_stdin(&url, &["import"]);
    let mut stdin = child.stdin.take().unwrap();
    let line =
        |n: u32| serde_json::json!({"id": id(n), "ttl_ms": 60_000, "value": {"n": n}}).to_string();
    writeln!(stdin, "{}", line(1)).unwrap();
    stdin.flush().unwrap();
    assert!(appears(&server, &format!("sess:{}", id(1)), 20));
    server.stop();
    writeln!(stdin, "{}", line(2)).unwrap();
    stdin.flush().unwrap();
    // Input stays open: the CLI must still exit, with the error.
    let done = wait_at_most(child, 30);
    drop(stdin);
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.one_error().contains("import stopped at line 2"),
        "{}",
        done.stderr
    );
}

/// A session written under an idle timeout carries its bound as the compact member `__exp`:
/// `export` shows it in the value, and `import` writes it back unchanged, in the same place.
#[test]
fn the_idle_timeout_bound_survives_export_and_import() {
    let server = RedisServer::start();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let key = format!("sess:{}", id(1));
    let value = format!(r#"{{"n":1,"__exp":{}}}"#, now_ms + 600_000);
    put(&server, &key, &value, Some(600_000));

    let exported = run(&server, &["export"]).ok();
    assert_eq!(records(&exported)[&id(1)]["value"], json(&value));
    run(&server, &["clear", "--yes"]).ok();
    let imported = run_stdin(&server, &["import"], &exported).ok();
    assert_eq!(
        imported,
        "imported 1, skipped 0 (exist), expired 0, failed 0\n"
    );
    assert_eq!(get(&server, &key).unwrap(), value);
}
