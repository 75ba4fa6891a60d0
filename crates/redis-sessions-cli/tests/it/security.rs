//! Hashed ids and encrypted values: the CLI reads what an application with those options
//! wrote, given the same options.

use std::process::{Command, Stdio};

use redis_harness::RedisServer;
use redis_sessions::{IdHashing, KeyRing, RedisBackend, RedisStore, Session, SessionId};

const KEYS: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// Runs the CLI with `SESSION_KEYS` set to `keys` (or unset) and returns (code, stdout, stderr).
fn cli(server: &RedisServer, keys: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redis-sessions"));
    cmd.env_remove("REDIS_URL")
        .env_remove("SESSION_HASH_IDS")
        .env_remove("SESSION_KEYS_FILE")
        .env_remove("SESSION_KEYS")
        .env_remove("SESSION_HASH_KEY_FILE")
        .env_remove("SESSION_HASH_KEY")
        .arg("--url")
        .arg(server.url())
        .args(args)
        .stdin(Stdio::null());
    if let Some(keys) = keys {
        cmd.env("SESSION_KEYS", keys);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Writes one session as an application with hashed ids and encryption would; returns its id.
fn seed(server: &RedisServer) -> SessionId {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = RedisBackend::connect(&server.url()).await.unwrap();
        let store = RedisStore::builder(backend)
            .hash_ids(IdHashing::Sha256)
            .encrypt(KeyRing::from_base64_list(KEYS).unwrap())
            .build();
        let id = SessionId::generate().unwrap();
        let mut session = Session::new();
        session.insert("user", "ada").unwrap();
        assert!(store.create(&id, &session).await.unwrap().is_written());
        id
    })
}

#[test]
fn lists_hashes_and_reads_encrypted_sessions_with_the_keys() {
    let server = RedisServer::start();
    let id = seed(&server);
    let hash = IdHashing::Sha256.stored_id(&id);

    let (code, ids, _) = cli(&server, None, &["ids"]);
    assert_eq!(code, 0);
    assert_eq!(
        ids.trim(),
        hash.as_str(),
        "ids lists the hash, not the cookie id"
    );

    let (code, shown, err) = cli(&server, Some(KEYS), &["show", "--", hash.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("\"ada\""), "{shown}");
    let (code, shown, err) = cli(
        &server,
        Some(KEYS),
        &["--hash-ids", "show", "--cookie", "--", id.as_str()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("\"ada\""), "{shown}");

    let (code, exported, err) = cli(&server, Some(KEYS), &["export"]);
    assert_eq!(code, 0, "{err}");
    assert!(exported.contains(hash.as_str()) && exported.contains("ada"));
    assert!(!exported.contains(id.as_str()));

    // Without the keys the value is reported as undecodable, by fingerprint.
    let (code, _, err) = cli(&server, None, &["show", "--", hash.as_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("not in the key ring"), "{err}");
    assert!(
        !err.contains(id.as_str()) && !err.contains(hash.as_str()),
        "{err}"
    );
    let (code, _, err) = cli(&server, Some("AAAA"), &["count"]);
    assert_eq!(code, 1);
    assert!(err.contains("key 1 is 3 bytes"), "{err}");

    // Revocation by the id the user holds.
    let (code, out, _) = cli(
        &server,
        None,
        &["--hash-ids", "rm", "--cookie", "--", id.as_str()],
    );
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "deleted 1 of 1 sessions");
    assert!(server.scan_keys("*").is_empty());
}

/// An application that hashes ids with HMAC: `--cookie` commands need its hash key.
#[test]
fn hmac_hashed_ids_need_the_hash_key() {
    const HASH_KEY: [u8; 32] = [5; 32];
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = runtime.block_on(async {
        let backend = RedisBackend::connect(&server.url()).await.unwrap();
        let store = RedisStore::builder(backend)
            .hash_ids(IdHashing::HmacSha256(HASH_KEY))
            .build();
        let id = SessionId::generate().unwrap();
        let mut session = Session::new();
        session.insert("user", "ada").unwrap();
        assert!(store.create(&id, &session).await.unwrap().is_written());
        id
    });
    let key_file =
        std::env::temp_dir().join(format!("redis-sessions-hash-{}.key", std::process::id()));
    // base64 of 32 bytes of 5, as `openssl rand -base64 32` writes a key.
    std::fs::write(&key_file, "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=\n").unwrap();
    let key_arg = key_file.to_str().unwrap();

    // SHA-256 is not the application's hashing: nothing found, nothing deleted.
    let (code, out, _) = cli(
        &server,
        None,
        &["--hash-ids", "rm", "--cookie", "--", id.as_str()],
    );
    assert_eq!((code, out.trim()), (0, "deleted 0 of 1 sessions"));
    let (code, shown, _) = cli(
        &server,
        None,
        &[
            "--hash-key-file",
            key_arg,
            "show",
            "--cookie",
            "--",
            id.as_str(),
        ],
    );
    assert_eq!(code, 0);
    assert!(shown.contains("ada"), "{shown}");
    let (code, out, _) = cli(
        &server,
        None,
        &[
            "--hash-key-file",
            key_arg,
            "rm",
            "--cookie",
            "--",
            id.as_str(),
        ],
    );
    assert_eq!((code, out.trim()), (0, "deleted 1 of 1 sessions"));
    assert!(server.scan_keys("*").is_empty());

    std::fs::write(&key_file, "c2hvcnQ=").unwrap();
    let (code, _, err) = cli(&server, None, &["--hash-key-file", key_arg, "count"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("session hash key") && !err.contains("c2hvcnQ"),
        "{err}"
    );
    std::fs::remove_file(&key_file).unwrap();
}
