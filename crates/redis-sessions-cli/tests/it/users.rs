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
