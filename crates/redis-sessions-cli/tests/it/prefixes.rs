//! Prefixes with glob metacharacters next to foreign keys that an unescaped pattern would match:
//! nothing foreign is counted, listed, exported, shown in stats or deleted.

use redis_harness::RedisServer;

use crate::support::{id, json, keys, put, run, run_on_terminal, run_stdin, sorted_lines};

fn check_prefix(prefix: &str, foreign: &[String]) {
    let server = RedisServer::start();
    let ours: Vec<String> = (1..=3).map(|n| format!("{prefix}{}", id(n))).collect();
    for key in ours.iter().chain(foreign) {
        put(&server, key, r#"{"n":1}"#, Some(600_000));
    }
    let with = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--prefix", prefix, "--scan-count", "2"];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect()
    };
    let cli = |args: &[&str]| {
        let args = with(args);
        run(
            &server,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    assert_eq!(cli(&["count"]).ok(), "3\n", "{prefix}");
    assert_eq!(sorted_lines(&cli(&["ids"]).ok()), vec![id(1), id(2), id(3)]);
    let exported = cli(&["export"]).ok();
    let mut exported_ids: Vec<String> = exported
        .lines()
        .map(|l| json(l)["id"].as_str().unwrap().to_owned())
        .collect();
    exported_ids.sort();
    assert_eq!(exported_ids, vec![id(1), id(2), id(3)]);
    assert_eq!(json(&cli(&["--json", "stats"]).ok())["sessions"], 3);

    assert_eq!(cli(&["clear", "--yes"]).ok(), "deleted 3 sessions\n");
    let mut remaining = foreign.to_vec();
    remaining.sort();
    assert_eq!(keys(&server), remaining, "{prefix}: only our keys deleted");

    // And back: import writes under the prefix only.
    let args = with(&["import"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_stdin(&server, &args, &exported).ok();
    let mut expected: Vec<String> = ours.iter().chain(foreign).cloned().collect();
    expected.sort();
    assert_eq!(keys(&server), expected);
}

#[test]
fn star_prefix_matches_only_itself() {
    check_prefix(
        "a*b:",
        &[
            format!("aXb:{}", id(1)),
            format!("ab:{}", id(2)),
            format!("a*bc:{}", id(3)),
            "a*b:admin:1".to_owned(),
        ],
    );
}

#[test]
fn question_mark_and_bracket_prefix_matches_only_itself() {
    check_prefix(
        "x?[y]:",
        &[
            format!("xqy:{}", id(1)),
            format!("x?y:{}", id(2)),
            format!("xq[y]:{}", id(3)),
            "x?[y]:admin:1".to_owned(),
        ],
    );
}

#[test]
fn an_empty_listing_on_a_terminal_names_the_prefix_it_scanned() {
    let server = RedisServer::start();
    put(
        &server,
        &format!("myapp:sess:{}", id(1)),
        r#"{"n":1}"#,
        None,
    );
    for args in [&["count"][..], &["ids"], &["export"], &["clear", "--yes"]] {
        let (code, screen) = run_on_terminal(&server.url(), args);
        assert_eq!(code, 0, "{args:?}: {screen}");
        assert!(
            screen.contains(r#"hint: no sessions under the prefix "sess:""#)
                && screen.contains("--prefix"),
            "{args:?}: {screen}"
        );
        // Not a terminal: nothing extra (`ok` asserts an empty stderr).
        run(&server, args).ok();
    }
    let mut found = vec!["--prefix", "myapp:sess:", "count"];
    let (code, screen) = run_on_terminal(&server.url(), &found);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.trim_end().ends_with('1') && !screen.contains("hint:"),
        "no hint when sessions are found: {screen}"
    );
    found[2] = "ids";
    let (_, screen) = run_on_terminal(&server.url(), &found);
    assert!(!screen.contains("hint:"), "{screen}");
}
