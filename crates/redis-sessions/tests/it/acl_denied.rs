//! A permission the Redis user lacks: a typed error that names the command, sent once and
//! never retried, logged once; on one server and on a cluster, for commands and for scripts.

use redis_harness::rejected_calls;
use redis_sessions::{Backend, RedisBackend, RedisStore};

#[cfg(feature = "cluster")]
use crate::acl::acl_cluster;
use crate::acl::{acl_server, lines, STORE_USER};
use crate::support::{id, session, Deployment};

/// The store's line without one command.
fn store_line_without(command: &str) -> String {
    let line = lines().line(STORE_USER).to_owned();
    let token = format!("+{command}");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words.contains(&token.as_str()), "{line}");
    words
        .into_iter()
        .filter(|w| *w != token)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn assert_destroy_denied<B: Backend + Clone>(backend: B) -> redis_sessions::Error {
    let store = RedisStore::new(backend);
    let id = id();
    assert!(store.set(&id, &session(1)).await.unwrap().is_written());
    let started = std::time::Instant::now();
    let err = store.destroy(&id).await.unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert!(!err.is_unavailable(), "{err}");
    assert_eq!(err.denied_command(), Some("unlink"), "{err}");
    assert!(err.to_string().contains("may not run UNLINK"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The session is still there: nothing else was tried in its place.
    assert_eq!(store.get(&id).await.unwrap(), Some(session(1)));
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_names_the_command_and_is_sent_once() {
    let server = acl_server(&store_line_without("unlink"), "sess:");
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    assert_destroy_denied(backend).await;
    assert_eq!(
        rejected_calls(server.server.port(), "unlink"),
        1,
        "no retry"
    );
}

#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_on_a_cluster_names_the_command_and_is_sent_once() {
    let cluster = acl_cluster(store_line_without("unlink"), "sess:").await;
    let backend = redis_sessions::connect(&cluster.url()).await.unwrap();
    assert_destroy_denied(backend).await;
    let rejected: u64 = cluster
        .0
        .ports()
        .into_iter()
        .map(|port| rejected_calls(port, "unlink"))
        .sum();
    assert_eq!(rejected, 1, "no retry, on no node");
}

/// Without `CLUSTER NODES` the cluster backend fails at connect with the permission error,
/// at once, instead of reading the topology again until its timeout.
#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_topology_read_fails_the_connect_at_once() {
    let cluster = acl_cluster(store_line_without("cluster|nodes"), "sess:").await;
    let err = redis_sessions::connect(&cluster.url()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        redis_sessions::BackendErrorKind::PermissionDenied,
        "{err}"
    );
    assert_eq!(err.denied_command(), Some("cluster|nodes"), "{err}");
    let rejected: u64 = cluster
        .0
        .ports()
        .into_iter()
        .map(|port| rejected_calls(port, "cluster|nodes"))
        .sum();
    // One read of the topology asks three nodes; a loop until the topology timeout would
    // have asked again every 20 to 200 ms.
    assert_eq!(rejected, 3, "one refused read, not a loop");
}

/// A script whose command the user may not run gets `ERR` from Redis 7.0, not `NOPERM`: it
/// is a permission error too, named after the `EVALSHA` that ran the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_refused_by_the_acl_is_a_permission_error() {
    let server = acl_server(&store_line_without("unlink"), "sess:");
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let sha: String = backend
        .command(
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg("return redis.call('UNLINK', KEYS[1])"),
        )
        .await
        .unwrap();
    let err = backend
        .command::<i64>(redis::cmd("EVALSHA").arg(&sha).arg(1).arg("sess:x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis_sessions::BackendErrorKind::PermissionDenied,
        "{err}"
    );
    assert_eq!(err.denied_command(), Some("evalsha"), "{err}");
    assert!(!err.is_denied_key(), "{err}");
    // A key outside the pattern, inside a script: also `ERR`, and a refused key.
    let sha: String = backend
        .command(
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg("return redis.call('GET', KEYS[1])"),
        )
        .await
        .unwrap();
    let err = backend
        .command::<Option<String>>(redis::cmd("EVALSHA").arg(&sha).arg(1).arg("other:x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis_sessions::BackendErrorKind::PermissionDenied,
        "{err}"
    );
    assert!(err.is_denied_key(), "{err}");
}

/// The log says which command is missing, once: a second refusal of the same command is not
/// logged again at `warn`. (`pexpire` is refused by no other test of this process.)
#[tokio::test]
async fn a_refused_command_is_logged_once() {
    let (captured, _guard) = crate::support::CapturedLog::start(tracing::Level::WARN);

    let server = acl_server(&store_line_without("pexpire"), "sess:");
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::new(backend);
    for _ in 0..3 {
        let id = id();
        assert!(store.set(&id, &session(1)).await.unwrap().is_written());
        let err = store.touch(&id, &session(1)).await.unwrap_err();
        assert!(err.is_permission_denied(), "{err}");
    }
    let log = captured.text();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("command=pexpire"), "{log}");
    assert_eq!(
        rejected_calls(server.server.port(), "pexpire"),
        3,
        "one call each"
    );
}
