//! The cases, each run against both apps.

use std::sync::Arc;

use serde_json::json;

use crate::client::Client;
use crate::servers::{is_index, start, start_with_hook, Kind, Topology};

const IDLE_TIMEOUT_S: u64 = 600;

async fn logged_in(kind: Kind, topology: Topology) -> (crate::servers::Running, Client) {
    let app = start(kind, topology, IDLE_TIMEOUT_S).await;
    let mut client = Client::new(app.addr);
    let r = client
        .post("/api/login", Some(json!({"user": "ada"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"user": "ada", "counter": 0}));
    assert!(
        client.cookie.is_some(),
        "login sets a session cookie: {r:?}"
    );
    (app, client)
}

/// Runs the axum demo with `config` on port 0 and logs `user` in.
async fn demo_logged_in(config: demo::Config, user: &str) -> (tokio::task::AbortHandle, Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(demo::run(listener, config, std::future::pending()));
    let mut client = Client::new(addr);
    let r = client.post("/api/login", Some(json!({"user": user}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    (server.abort_handle(), client)
}

pub async fn login_increment_me_logout(kind: Kind, topology: Topology) {
    let (app, mut client) = logged_in(kind, topology).await;
    for n in 1..=2 {
        let r = client.post("/api/increment", None).await;
        assert_eq!(r.json(), json!({"counter": n}), "{r:?}");
    }
    let r = client.get("/api/me").await;
    assert_eq!(r.json(), json!({"user": "ada", "counter": 2}));

    // One session in Redis, under the prefix, with a TTL within the idle timeout.
    let keys = app.redis.session_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("sess:"), "{keys:?}");
    let ttl = app.redis.cmd(&keys[0], &["PTTL", &keys[0]]).int().unwrap();
    assert!(ttl > 0 && ttl <= (IDLE_TIMEOUT_S * 1000) as i64, "{ttl}");

    let r = client.post("/api/logout", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        app.redis.session_keys().is_empty(),
        "logout deletes the session"
    );
    assert_eq!(client.get("/api/me").await.status, 401);
}

pub async fn without_a_session_the_api_says_401(kind: Kind, topology: Topology) {
    let app = start(kind, topology, IDLE_TIMEOUT_S).await;
    let mut client = Client::new(app.addr);
    assert_eq!(client.get("/api/me").await.status, 401);
    assert_eq!(client.post("/api/increment", None).await.status, 401);
    let r = client.post("/api/login", Some(json!({"user": ""}))).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        app.redis.scan_keys("*").is_empty(),
        "nothing stored for anonymous requests"
    );
}

pub async fn me_costs_exactly_one_redis_command(kind: Kind, topology: Topology) {
    let (app, mut client) = logged_in(kind, topology).await;
    let key = app.redis.session_keys().remove(0);
    app.redis.cmd(&key, &["PEXPIRE", &key, "5000"]);
    app.redis.reset_stats();
    let r = client.get("/api/me").await;
    assert_eq!(r.status, 200);
    let calls = app.redis.data_command_calls();
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 1, "{calls:?}");
    assert_eq!(calls, vec![("getex".to_owned(), 1)]);
    // That one command slid the idle timeout (5 s before, about 600 s now).
    let ttl = app.redis.cmd(&key, &["PTTL", &key]).int().unwrap();
    assert!(ttl > 500_000, "{ttl}");
}

/// Logout wins over saves in flight, in a known order every round: increments that have read
/// the session are held by the demo's increment hook just before their saves, the logout runs
/// to completion, and only then do the saves go out. Each is an update of a session that no
/// longer exists (`SET XX`), so nothing is written and the session stays gone.
pub async fn logout_wins_over_inflight_increments(kind: Kind, topology: Topology) {
    let (reached, mut held) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let hook = {
        let release = release.clone();
        demo::IncrementHook::new(move || {
            let (reached, release) = (reached.clone(), release.clone());
            async move {
                reached.send(()).unwrap();
                release.acquire().await.unwrap().forget();
            }
        })
    };
    let app = start_with_hook(kind, topology, IDLE_TIMEOUT_S, Some(hook)).await;
    for (round, in_flight) in [1, 4, 16].into_iter().enumerate() {
        let mut client = Client::new(app.addr);
        let r = client
            .post("/api/login", Some(json!({"user": "ada"})))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let increments: Vec<_> = (0..in_flight)
            .map(|_| {
                let mut c = client.clone();
                tokio::spawn(async move { c.post("/api/increment", None).await })
            })
            .collect();
        // Every increment has read the session and changed it; none has saved.
        for _ in 0..in_flight {
            held.recv().await.unwrap();
        }
        app.redis.reset_stats();
        let mut logout = client.clone();
        assert_eq!(logout.post("/api/logout", None).await.status, 200);
        assert!(
            app.redis.session_keys().is_empty(),
            "round {round}: logout deletes the session"
        );
        release.add_permits(in_flight);
        for task in increments {
            let r = task.await.unwrap();
            assert_eq!(
                r.status, 200,
                "round {round}: the save is dropped quietly: {r:?}"
            );
        }
        // Every held save did reach Redis after the logout, and wrote nothing: each is one
        // update of an absent session. On one server that is the indexed write's script
        // (which finds the key gone and stops before its `SET`). On a cluster it is the
        // session's own step: the demo merges concurrent saves, so a save with the base its
        // request loaded is the compare-and-set script, whose `GET` finds the key gone, and
        // one without a base is a `SET XX`.
        let calls = app.redis.data_command_calls();
        let of = |c: &str| calls.iter().find(|(n, _)| n == c).map_or(0, |(_, n)| *n);
        let saves = match topology {
            Topology::Standalone => of("evalsha"),
            Topology::Cluster => of("get") + of("set"),
        };
        assert_eq!(saves, in_flight as u64, "round {round}: {calls:?}");
        assert_eq!(of("unlink"), 1, "round {round}: {calls:?}");
        assert!(
            app.redis.session_keys().is_empty(),
            "round {round}: an increment resurrected the session"
        );
        assert_eq!(client.get("/api/me").await.status, 401, "round {round}");
    }
}

pub async fn corrupt_value_loads_as_no_session(kind: Kind, topology: Topology) {
    let (app, mut client) = logged_in(kind, topology).await;
    let key = app.redis.session_keys().remove(0);
    app.redis
        .cmd(&key, &["SET", &key, "{\"user\":\"ada\",\"count", "KEEPTTL"]);
    let r = client.get("/api/me").await;
    assert_eq!(
        r.status, 401,
        "documented: a corrupt session is no session: {r:?}"
    );
    assert!(!r.body.contains("panicked"), "{r:?}");
    // The bad value is kept for inspection, and the user can log in again.
    assert_eq!(
        app.redis.cmd(&key, &["GET", &key]).text().unwrap(),
        "{\"user\":\"ada\",\"count"
    );
    let mut fresh = Client::new(app.addr);
    assert_eq!(
        fresh
            .post("/api/login", Some(json!({"user": "bob"})))
            .await
            .status,
        200
    );
}

pub async fn redis_outage_is_a_clean_5xx_and_service_resumes(kind: Kind, topology: Topology) {
    let (mut app, mut client) = logged_in(kind, topology).await;
    app.redis.server().stop();
    let r = client.get("/api/me").await;
    assert!((500..600).contains(&r.status), "{r:?}");
    assert!(
        !r.body.contains("panicked") && !r.body.contains("sess:"),
        "{r:?}"
    );
    app.redis.server().restart();
    // The restarted Redis is empty (no persistence), and it answers (`restart` waited for it):
    // log in again, with no waiting. At most one request fails, as a clean 5xx: it finds that
    // the store's reconnection begun while Redis was down has failed and begins a new one,
    // which the next request waits for.
    let mut c = Client::new(app.addr);
    let mut r = c.post("/api/login", Some(json!({"user": "ada"}))).await;
    if r.status != 200 {
        assert!(
            (500..600).contains(&r.status) && !r.body.contains("panicked"),
            "{r:?}"
        );
        c = Client::new(app.addr);
        r = c.post("/api/login", Some(json!({"user": "ada"}))).await;
    }
    let status = r.status;
    client = c;
    assert_eq!(status, 200, "service did not resume after Redis came back");
    assert_eq!(
        client.get("/api/me").await.json(),
        json!({"user": "ada", "counter": 0})
    );
}

app_suite!(axum, Axum, Standalone:
    login_increment_me_logout,
    without_a_session_the_api_says_401,
    me_costs_exactly_one_redis_command,
    logout_wins_over_inflight_increments,
    corrupt_value_loads_as_no_session,
    redis_outage_is_a_clean_5xx_and_service_resumes,
);

app_suite!(actix, Actix, Standalone:
    login_increment_me_logout,
    without_a_session_the_api_says_401,
    me_costs_exactly_one_redis_command,
    logout_wins_over_inflight_increments,
    corrupt_value_loads_as_no_session,
    redis_outage_is_a_clean_5xx_and_service_resumes,
);

// The demo on a 3-primary cluster (`redis+cluster://` URL); the outage case needs one server.
app_suite!(axum_cluster, Axum, Cluster:
    login_increment_me_logout,
    without_a_session_the_api_says_401,
    me_costs_exactly_one_redis_command,
    logout_wins_over_inflight_increments,
    corrupt_value_loads_as_no_session,
);

#[tokio::test]
async fn the_axum_page_shows_user_counter_ttl_and_backend() {
    let (app, mut client) = logged_in(Kind::Axum, Topology::Standalone).await;
    client.post("/api/increment", None).await;
    let page = client.get("/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"<strong id="user">ada</strong>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"<strong id="counter">1</strong>"#));
    assert!(page.body.contains("Redis at redis://127.0.0.1:"));
    assert!(page.body.contains(" s</dd>"), "remaining TTL shown");
    drop(app);
}

#[tokio::test]
async fn without_redis_the_demo_runs_in_memory_and_says_so() {
    let (server, mut client) = demo_logged_in(demo::Config::new(None), "ada").await;
    assert_eq!(
        client.post("/api/increment", None).await.json(),
        json!({"counter": 1})
    );
    let page = client.get("/").await;
    assert!(page.body.contains("in-memory"), "{}", page.body);
    server.abort();
}

/// The demo with HMAC-hashed ids and a key ring: after a full login flow, the one key is the
/// HMAC of the cookie's id under the hash key, and neither the keys nor the `DUMP` of any value
/// contain the cookie's session id or the user name.
#[tokio::test]
async fn with_hashing_and_keys_redis_holds_no_cookie_id_or_contents() {
    let redis = redis_harness::RedisServer::start();
    let mut config = demo::Config::new(Some(redis.url()));
    config.keys = Some(
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
            .into(),
    );
    config.hash_key = Some("AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=".into());
    let (server, mut client) = demo_logged_in(config, "ada-lovelace").await;
    assert_eq!(
        client.post("/api/increment", None).await.json(),
        json!({"counter": 1})
    );
    assert_eq!(
        client.get("/api/me").await.json(),
        json!({"user": "ada-lovelace", "counter": 1})
    );
    let cookie = client.cookie.clone().unwrap();
    let id = cookie.split_once('=').unwrap().1.to_owned();
    assert!(id.len() >= 16, "{cookie}");
    let keys = redis.scan_keys("*");
    let hmac = redis_sessions::IdHashing::HmacSha256([3; 32])
        .stored_id(&redis_sessions::SessionId::parse(&id).unwrap());
    let sessions: Vec<&String> = keys.iter().filter(|k| !is_index(k)).collect();
    assert_eq!(sessions, [&format!("sess:{}", hmac.as_str())]);
    assert_eq!(keys.len(), 2, "the session and its user's index: {keys:?}");
    for key in &keys {
        assert!(key.starts_with("sess:") && !key.contains(&id), "{key}");
        assert!(!key.contains("ada-lovelace"), "{key}");
        let redis_harness::Reply::Bulk(Some(dumped)) = redis.cmd(&["DUMP", key]) else {
            panic!("DUMP {key}")
        };
        let contains = |needle: &[u8]| dumped.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(id.as_bytes()));
        assert!(!contains(b"ada-lovelace"));
    }
    server.abort();
}

/// `--require-encryption`: refused without a key ring; with one, a plain session planted in
/// Redis under a user's key is not accepted (the request has no session).
#[tokio::test]
async fn require_encryption_refuses_planted_plain_sessions() {
    let redis = redis_harness::RedisServer::start();
    let mut config = demo::Config::new(Some(redis.url()));
    config.require_encryption = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = demo::run(listener, config.clone(), std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--require-encryption"), "{err}");

    config.keys = Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into());
    let (server, mut client) = demo_logged_in(config, "ada").await;
    assert_eq!(client.get("/api/me").await.status, 200);
    let keys: Vec<String> = redis
        .scan_keys("*")
        .into_iter()
        .filter(|k| !is_index(k))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    redis.cmd(&[
        "SET",
        &keys[0],
        r#"{"user":"mallory","counter":99}"#,
        "KEEPTTL",
    ]);
    assert_eq!(client.get("/api/me").await.status, 401);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_over_mutual_tls_with_the_tls_flags() {
    let server = tokio::task::spawn_blocking(|| {
        redis_harness::RedisServer::start_tls_mode(redis_harness::TlsMode::RequireClientCert)
    })
    .await
    .unwrap();
    let certs = redis_harness::TlsCerts::get();
    let mut config = demo::Config::new(Some(server.tls_url()));
    config.tls_ca_file = Some(certs.path("ca.crt"));
    config.tls_cert_file = Some(certs.path("client.crt"));
    config.tls_key_file = Some(certs.path("client.key"));
    let (demo, mut client) = demo_logged_in(config, "ada").await;
    assert_eq!(
        client.post("/api/increment", None).await.json(),
        json!({"counter": 1})
    );
    assert_eq!(
        server
            .scan_keys("sess:*")
            .iter()
            .filter(|k| !is_index(k))
            .count(),
        1,
        "the session is in Redis"
    );
    demo.abort();
}
