//! The same commands on Redis Cluster and Sentinel, through their URLs.

use redis_harness::{RedisCluster, RedisSentinelGroup};

use crate::support::{id, json, run_url, sorted_lines};

#[test]
fn every_command_works_on_a_cluster() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let put = |key: &str, value: &str| {
        cluster.cmd(
            cluster.primary_for_key(key),
            &["SET", key, value, "PX", "600000"],
        );
    };
    for n in 0..300 {
        put(&format!("sess:{}", id(n)), &format!("{{\"n\":{n}}}"));
    }
    // Foreign keys on every node: never counted, listed, exported or deleted.
    for n in 0..30 {
        put(&format!("sess:admin:{n}"), "foreign");
        put(&format!("other:{}", id(n)), "foreign");
    }
    assert_eq!(run_url(&url, &["count"]).ok(), "300\n");
    let ids = sorted_lines(&run_url(&url, &["ids"]).ok());
    let mut expected: Vec<String> = (0..300).map(id).collect();
    expected.sort();
    assert_eq!(ids, expected, "each id exactly once");
    let shown = json(&run_url(&url, &["--json", "show", &id(7)]).ok());
    assert_eq!(shown["value"]["n"], 7);
    let export = run_url(&url, &["export"]).ok();
    assert_eq!(export.lines().count(), 300);
    let stats = json(&run_url(&url, &["--json", "stats"]).ok());
    assert_eq!(stats["sessions"], 300, "{stats}");
    // Per primary: every primary appears, each count is what that node holds.
    let nodes = stats["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{stats}");
    for node in nodes {
        let port: u16 = node["node"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let on_node = (0..300)
            .filter(|n| cluster.primary_for_key(&format!("sess:{}", id(*n))) == port)
            .count();
        assert_eq!(node["sessions"], on_node as u64, "{node}");
        assert!(node["avg_bytes"].as_u64().unwrap() > 0, "{node}");
    }
    let table = run_url(&url, &["stats"]).ok();
    assert_eq!(
        table.lines().filter(|l| l.starts_with("node ")).count(),
        3,
        "{table}"
    );
    assert_eq!(
        run_url(&url, &["clear", "--yes"]).ok(),
        "deleted 300 sessions\n"
    );
    assert_eq!(run_url(&url, &["count"]).ok(), "0\n");
    let foreign = cluster
        .primary_ports()
        .into_iter()
        .map(|port| cluster.cmd(port, &["DBSIZE"]).int().unwrap())
        .sum::<i64>();
    assert_eq!(foreign, 60, "foreign keys survive clear");
}

#[test]
fn export_from_one_server_imports_into_a_cluster() {
    let server = redis_harness::RedisServer::start();
    for n in 0..50 {
        let key = format!("sess:{}", id(n));
        server.cmd(&["SET", &key, &format!("{{\"n\":{n}}}"), "PX", "600000"]);
    }
    let export = crate::support::run(&server, &["export"]).ok();
    let cluster = RedisCluster::start();
    let imported = crate::support::run_stdin_url(&cluster.url(), &["import"], &export);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert_eq!(run_url(&cluster.url(), &["count"]).ok(), "50\n");
    let shown = json(&run_url(&cluster.url(), &["--json", "show", &id(42)]).ok());
    assert_eq!(shown["value"]["n"], 42);
    assert!(shown["ttl_ms"].as_u64().unwrap() > 590_000, "{shown}");
}

#[test]
fn commands_work_through_sentinel() {
    let group = RedisSentinelGroup::start();
    let primary = group.primary_port();
    for n in 0..20 {
        let key = format!("sess:{}", id(n));
        group.cmd(
            primary,
            &["SET", &key, &format!("{{\"n\":{n}}}"), "PX", "600000"],
        );
    }
    let url = group.url();
    assert_eq!(run_url(&url, &["count"]).ok(), "20\n");
    assert_eq!(
        run_url(&url, &["rm", &id(1), &id(2)]).ok(),
        "deleted 2 of 2 sessions\n"
    );
    assert_eq!(run_url(&url, &["count"]).ok(), "18\n");
}
