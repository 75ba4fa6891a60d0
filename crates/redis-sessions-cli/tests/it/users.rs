//! `user ls`, `user count`, `user revoke` on sessions the library indexed, with and without
//! an HMAC id-hashing key.

use redis_harness::RedisServer;
use redis_sessions::{IdHashing, RedisBackend, RedisStore, Session, SessionId};

use crate::support::{json, run, run_url_env};

fn login(user: &str, agent: &str) -> Session {
    let mut s = Session::new();
    s.insert("user", user).unwrap();
    s.insert("user_agent", agent).unwrap();
    s
}

/// Three sessions of ada (written by an indexing store with `hashing`), one of bob.
async fn seeded(server: &RedisServer, hashing: IdHashing) -> Vec<SessionId> {
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend)
        .index_by("user")
        .hash_ids(hashing)
        .build();
    let mut ids = Vec::new();
    for agent in ["Firefox", "Safari", "curl"] {
        let id = SessionId::generate().unwrap();
        assert!(store
            .create(&id, &login("ada", agent))
            .await
            .unwrap()
            .is_written());
        ids.push(id);
    }
    let bob = SessionId::generate().unwrap();
    assert!(store
        .create(&bob, &login("bob", "Edge"))
        .await
        .unwrap()
        .is_written());
    ids
}

#[tokio::test]
async fn ls_count_and_revoke_one_user() {
    let server = RedisServer::start();
    let ids = seeded(&server, IdHashing::Off).await;
    let listed = run(&server, &["user", "ls", "ada"]).ok();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for (id, agent) in ids.iter().zip(["Firefox", "Safari", "curl"]) {
        let line = listed
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("{listed}"));
        assert!(
            line.contains("created 20") && line.contains("last used 20"),
            "{line}"
        );
        assert!(
            line.contains("ttl 1d") || line.contains("ttl 23h"),
            "{line}"
        );
        assert!(line.ends_with(agent), "{line}");
    }
    let lines = run(&server, &["--json", "user", "ls", "ada"]).ok();
    let first = json(lines.lines().next().unwrap());
    assert!(first["ttl_ms"].as_u64().unwrap() > 86_000_000, "{first}");
    assert_eq!(first["value"]["user"], "ada");
    assert_eq!(run(&server, &["user", "count", "ada"]).ok(), "3\n");
    assert_eq!(
        json(&run(&server, &["--json", "user", "count", "bob"]).ok())["sessions"],
        1
    );
    assert_eq!(run(&server, &["user", "count", "nobody"]).ok(), "0\n");
    // All but one.
    let keep = ids[0].as_str();
    assert_eq!(
        run(&server, &["user", "revoke", "ada", "--except", keep]).ok(),
        "revoked 2 sessions\n"
    );
    let left = run(&server, &["user", "ls", "ada"]).ok();
    assert!(
        left.starts_with(keep) && left.lines().count() == 1,
        "{left}"
    );
    assert_eq!(
        json(&run(&server, &["--json", "user", "revoke", "ada"]).ok())["revoked"],
        1
    );
    assert_eq!(run(&server, &["user", "count", "ada"]).ok(), "0\n");
    assert_eq!(run(&server, &["user", "count", "bob"]).ok(), "1\n");
    // Another field name finds nothing.
    assert_eq!(
        run(&server, &["user", "--index-by", "uid", "count", "bob"]).ok(),
        "0\n"
    );
}

#[tokio::test]
async fn with_an_hmac_key_the_index_is_found_by_the_same_key() {
    use base64::Engine as _;
    let server = RedisServer::start();
    let key = [4u8; 32];
    let _ids = seeded(&server, IdHashing::HmacSha256(key)).await;
    let env = [(
        "SESSION_HASH_KEY",
        base64::engine::general_purpose::STANDARD.encode(key),
    )];
    let url = server.url();
    assert_eq!(
        run_url_env(&url, &["user", "count", "ada"], &env).ok(),
        "3\n"
    );
    // Without the key, the index is another key: nothing found.
    assert_eq!(run(&server, &["user", "count", "ada"]).ok(), "0\n");
    let listed = run_url_env(&url, &["user", "ls", "ada"], &env).ok();
    let hash = listed.split_whitespace().next().unwrap().to_owned();
    assert_eq!(hash.len(), 43, "hashes are listed: {listed}");
    assert_eq!(
        run_url_env(&url, &["user", "revoke", "ada", "--except", &hash], &env).ok(),
        "revoked 2 sessions\n"
    );
}

/// Under the library's absolute timeout, `user ls` shows the creation time from the
/// session's record (`__created`), not when the index first saw it.
#[tokio::test]
async fn ls_shows_the_absolute_timeouts_creation_record() {
    use std::time::Duration;
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend)
        .index_by("user")
        .absolute_timeout(Duration::from_secs(10 * 365 * 86_400))
        .build();
    let id = SessionId::generate().unwrap();
    let mut s = login("ada", "Firefox");
    // 2026-01-02T03:04:05Z, as another instance recorded it.
    s.insert("__created", 1_767_323_045_000u64).unwrap();
    assert!(store.create(&id, &s).await.unwrap().is_written());
    let listed = run(&server, &["user", "ls", "ada"]).ok();
    assert!(listed.contains("created 2026-01-02T03:04:05Z"), "{listed}");
    let line = json(&run(&server, &["--json", "user", "ls", "ada"]).ok());
    assert_eq!(line["created"], "2026-01-02T03:04:05Z");
}

/// An application with its own prefix and encrypted values (its key ring's current key is
/// the CLI ring's second: the CLI decrypts with any key of the ring). `user ls`, `count` and
/// `revoke` find the index under `--prefix` and read the values with `SESSION_KEYS`; under
/// the default prefix there is nothing of ada's.
#[tokio::test]
async fn ls_count_and_revoke_under_a_prefix_with_a_key_ring() {
    use redis_sessions::KeyRing;
    const OLD: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const NEW: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    const PREFIX: &str = "app:sess:";
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend)
        .prefix(PREFIX)
        .index_by("user")
        .encrypt(KeyRing::from_base64_list(OLD).unwrap())
        .build();
    let mut ids = Vec::new();
    for (user, agent) in [
        ("ada", "Firefox"),
        ("ada", "Safari"),
        ("ada", "curl"),
        ("bob", "Edge"),
    ] {
        let id = SessionId::generate().unwrap();
        assert!(store
            .create(&id, &login(user, agent))
            .await
            .unwrap()
            .is_written());
        ids.push(id);
    }
    for key in server.scan_keys("*") {
        assert!(key.starts_with(PREFIX), "{key}");
        if let redis_harness::Reply::Bulk(Some(raw)) = server.cmd(&["GET", &key]) {
            assert!(!raw.windows(3).any(|w| w == b"ada"), "encrypted at rest");
        }
    }
    assert_eq!(server.scan_keys("*").len(), 6, "4 sessions and 2 indexes");
    let env = [("SESSION_KEYS", format!("{NEW},{OLD}"))];
    let url = server.url();
    let cli = |args: &[&str]| {
        let mut all = vec!["--prefix", PREFIX];
        all.extend_from_slice(args);
        run_url_env(&url, &all, &env).ok()
    };

    assert_eq!(cli(&["user", "count", "ada"]), "3\n");
    assert_eq!(cli(&["user", "count", "bob"]), "1\n");
    assert_eq!(
        run_url_env(&url, &["user", "count", "ada"], &env).ok(),
        "0\n",
        "the default prefix holds no index of ada's"
    );
    let listed = cli(&["user", "ls", "ada"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for (id, agent) in ids.iter().zip(["Firefox", "Safari", "curl"]) {
        let line = listed
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("{listed}"));
        assert!(line.ends_with(agent), "decrypted: {line}");
    }
    let lines = cli(&["--json", "user", "ls", "ada"]);
    for line in lines.lines() {
        let line = json(line);
        assert_eq!(line["value"]["user"], "ada", "{line}");
        assert!(line["user_agent"].is_string(), "{line}");
    }
    // Everywhere but the first device; bob's session is another user's.
    let keep = ids[0].as_str();
    assert_eq!(
        cli(&["user", "revoke", "ada", "--except", keep]),
        "revoked 2 sessions\n"
    );
    let left = cli(&["user", "ls", "ada"]);
    assert!(
        left.starts_with(keep) && left.lines().count() == 1,
        "{left}"
    );
    for (n, id) in ids.iter().enumerate() {
        let live = store.get(id).await.unwrap().is_some();
        assert_eq!(live, n == 0 || n == 3, "session {n}");
    }
    assert_eq!(
        json(&cli(&["--json", "user", "revoke", "bob"]))["revoked"],
        1
    );
    assert_eq!(store.get(&ids[3]).await.unwrap(), None);
}

/// `user revoke --wait`: how many replicas acknowledged the deletes (`WAIT`), with the replica
/// up (1, and the replica no longer has the sessions) and stopped (0 within the timeout, a
/// warning, and still exit 0: the sessions ended on the primary).
mod durable {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use redis_harness::{Connection, RedisCluster, RedisSentinelGroup, RedisServer, Reply};
    use redis_sessions::{Backend, RedisBackend, RedisStore, SessionId};

    use super::login;
    use crate::support::{json, run, run_url};

    fn info(port: u16, section: &str) -> String {
        Connection::open(port)
            .unwrap()
            .command(&["INFO", section])
            .unwrap()
            .text()
            .unwrap_or_default()
    }

    fn info_field(info: &str, name: &str) -> Option<String> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    }

    fn replica_has(port: u16, key: &str, cluster: bool) -> bool {
        let mut conn = Connection::open(port).unwrap();
        if cluster {
            conn.command(&["READONLY"]).unwrap();
        }
        match conn.command(&["GET", key]).unwrap() {
            Reply::Bulk(found) => found.is_some(),
            other => panic!("GET on the replica: {other:?}"),
        }
    }

    /// `SIGSTOP` on the server at `port` (by the pid it reports), `SIGCONT` on drop.
    struct Stopped(u32);

    impl Stopped {
        fn stop(port: u16) -> Stopped {
            let pid: u32 = info_field(&info(port, "server"), "process_id")
                .and_then(|p| p.parse().ok())
                .unwrap();
            assert!(Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .unwrap()
                .success());
            Stopped(pid)
        }
    }

    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-CONT", &self.0.to_string()])
                .status();
        }
    }

    /// A primary and its replica, once the replica is online.
    fn primary_with_replica() -> (RedisServer, RedisServer) {
        let primary = RedisServer::start();
        // One value: the harness passes options as `--name value` pairs.
        let primary_at = format!("127.0.0.1 {}", primary.port());
        let replica =
            RedisServer::try_start(&["replicaof", &primary_at]).unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(info_field(&info(replica.port(), "replication"), "master_link_status").as_deref()
            == Some("up")
            && info_field(&info(primary.port(), "replication"), "slave0")
                .is_some_and(|s| s.contains("state=online")))
        {
            assert!(Instant::now() < deadline, "the replica did not sync");
            std::thread::sleep(Duration::from_millis(20));
        }
        (primary, replica)
    }

    /// Three sessions of ada written by an indexing store, on the replica(s) too; their keys.
    async fn seeded<B: Backend>(backend: B) -> Vec<(SessionId, String)> {
        let store = RedisStore::builder(backend).index_by("user").build();
        let mut ids = Vec::new();
        for agent in ["Firefox", "Safari", "curl"] {
            let id = SessionId::generate().unwrap();
            assert!(store
                .create(&id, &login("ada", agent))
                .await
                .unwrap()
                .is_written());
            let key = store.keyspace().key(&id);
            ids.push((id, key));
        }
        let acked = store
            .backend()
            .wait_for_replicas(1, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(acked, 1, "the sessions reached the replica");
        ids
    }

    #[tokio::test]
    async fn wait_reports_the_replica_and_it_no_longer_has_them() {
        let (primary, replica) = tokio::task::spawn_blocking(primary_with_replica)
            .await
            .unwrap();
        let ids = seeded(RedisBackend::connect(&primary.url()).await.unwrap()).await;
        assert!(ids
            .iter()
            .all(|(_, key)| replica_has(replica.port(), key, false)));
        let keep = ids[0].0.as_str();
        let args = ["user", "revoke", "ada", "--except", keep, "--wait", "1"];
        assert_eq!(
            run(&primary, &args).ok(),
            "revoked 2 sessions; acknowledged by 1 of 1 replicas\n"
        );
        assert!(replica_has(replica.port(), &ids[0].1, false));
        for (_, key) in &ids[1..] {
            assert!(!replica_has(replica.port(), key, false), "{key}");
        }
        let out = json(
            &run(
                &primary,
                &["--json", "user", "revoke", "ada", "--wait", "1"],
            )
            .ok(),
        );
        assert_eq!(out["revoked"], 1, "{out}");
        assert_eq!(out["acknowledged"], 1, "{out}");
        assert_eq!(out["replicas"], 1, "{out}");
        assert!(!replica_has(replica.port(), &ids[0].1, false));
    }

    #[tokio::test]
    async fn a_stopped_replica_gives_zero_a_warning_and_success() {
        let (primary, replica) = tokio::task::spawn_blocking(primary_with_replica)
            .await
            .unwrap();
        let ids = seeded(RedisBackend::connect(&primary.url()).await.unwrap()).await;
        let stopped = Stopped::stop(replica.port());
        let started = Instant::now();
        let args = [
            "--json",
            "user",
            "revoke",
            "ada",
            "--wait",
            "1",
            "--wait-timeout",
            "200",
        ];
        let out = run(&primary, &args);
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
        drop(stopped);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr
                .starts_with("warning: 0 of 1 replicas acknowledged within 200 ms"),
            "{}",
            out.stderr
        );
        let reply = json(&out.stdout);
        assert_eq!(
            (reply["revoked"].as_u64(), reply["acknowledged"].as_u64()),
            (Some(3), Some(0))
        );
        assert_eq!(run(&primary, &["user", "count", "ada"]).ok(), "0\n");
        drop(ids);
    }

    #[test]
    fn wait_timeout_needs_wait() {
        let server = RedisServer::start();
        let out = run(&server, &["user", "revoke", "ada", "--wait-timeout", "100"]);
        assert_eq!(out.code, 2, "{}", out.stderr);
    }

    #[tokio::test]
    async fn on_a_cluster_every_shard_acknowledges() {
        let cluster = tokio::task::spawn_blocking(RedisCluster::start)
            .await
            .unwrap();
        let backend = redis_sessions::ClusterBackend::connect(&cluster.urls())
            .await
            .unwrap();
        let ids = seeded(backend).await;
        let replica_of = |key: &str| cluster.replica_of(cluster.primary_for_key(key));
        let keep = ids[0].0.as_str();
        let out = run_url(
            &cluster.url(),
            &[
                "--json", "user", "revoke", "ada", "--except", keep, "--wait", "1",
            ],
        )
        .ok();
        let out = json(&out);
        assert_eq!(
            (out["revoked"].as_u64(), out["acknowledged"].as_u64()),
            (Some(2), Some(1))
        );
        assert!(replica_has(replica_of(&ids[0].1), &ids[0].1, true));
        for (_, key) in &ids[1..] {
            assert!(!replica_has(replica_of(key), key, true), "{key}");
        }
    }

    #[tokio::test]
    async fn through_sentinel_the_primarys_replica_acknowledges() {
        let group = tokio::task::spawn_blocking(RedisSentinelGroup::start)
            .await
            .unwrap();
        let backend = redis_sessions::connect(&group.url()).await.unwrap();
        let ids = seeded(backend).await;
        let slave0 = info_field(&info(group.primary_port(), "replication"), "slave0").unwrap();
        let replica: u16 = slave0
            .split(',')
            .find_map(|kv| kv.strip_prefix("port="))
            .and_then(|p| p.parse().ok())
            .unwrap();
        let out = run_url(&group.url(), &["user", "revoke", "ada", "--wait", "1"]).ok();
        assert_eq!(out, "revoked 3 sessions; acknowledged by 1 of 1 replicas\n");
        for (_, key) in &ids {
            assert!(!replica_has(replica, key, false), "{key}");
        }
    }
}
