//! Per-user sessions through the demos' JSON API and page: the listing, "this device", ending
//! one session (never another user's), "sign out everywhere else", the per-user limit, and the
//! "What Redis holds" panel. Each case runs against both apps.

use serde_json::{json, Value};

use crate::client::Client;
use crate::servers::{start_with, Kind, Running, Topology};

async fn log_in(app: &Running, user: &str, agent: &str) -> Client {
    let mut client = Client::with_agent(app.addr, agent);
    let r = client
        .post("/api/login", Some(json!({ "user": user })))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    client
}

async fn list(client: &mut Client) -> Vec<Value> {
    let r = client.get("/api/sessions").await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    body["sessions"].as_array().unwrap().clone()
}

/// The listed id of the client's own session (the one marked current).
async fn own_id(client: &mut Client) -> String {
    let sessions = list(client).await;
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one is this device: {sessions:?}");
    current[0]["id"].as_str().unwrap().to_owned()
}

fn is_iso_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

pub async fn sessions_api_lists_devices_and_ends_only_own_sessions(kind: Kind, topology: Topology) {
    let app = start_with(kind, topology, |_| {}).await;
    let mut anonymous = Client::new(app.addr);
    assert_eq!(anonymous.get("/api/sessions").await.status, 401);
    assert_eq!(
        anonymous
            .post("/api/sessions/revoke-others", None)
            .await
            .status,
        401
    );
    assert_eq!(
        anonymous
            .post("/api/sessions/abc/revoke", None)
            .await
            .status,
        401
    );

    let mut laptop = log_in(&app, "ada", "Laptop/1.0").await;
    let mut phone = log_in(&app, "ada", "Phone/2.0").await;
    let mut mallory = log_in(&app, "mallory", "Evil/6.6").await;

    let sessions = list(&mut laptop).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for s in &sessions {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{s}");
        for key in ["id", "current", "user_agent", "ip", "created", "last_seen"] {
            assert!(s.get(key).is_some(), "{key} in {s}");
        }
        assert_eq!(s["ip"], "127.0.0.1", "{s}");
        assert!(
            is_iso_time(&s["created"]) && is_iso_time(&s["last_seen"]),
            "{s}"
        );
    }
    let agents: Vec<&str> = sessions
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert!(
        agents.contains(&"Laptop/1.0") && agents.contains(&"Phone/2.0"),
        "{agents:?}"
    );
    let laptop_id = own_id(&mut laptop).await;
    let phone_id = own_id(&mut phone).await;
    assert_ne!(laptop_id, phone_id);
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["user_agent"], "Laptop/1.0");
    assert_eq!(
        list(&mut mallory).await.len(),
        1,
        "another user's sessions are not listed"
    );

    // Another user's session, an unknown id and a malformed one: 404, and nothing ends.
    for id in [
        phone_id.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
    ] {
        let r = mallory
            .post(&format!("/api/sessions/{id}/revoke"), None)
            .await;
        assert_eq!(r.status, 404, "{id}: {r:?}");
    }
    assert_eq!(
        phone.get("/api/me").await.status,
        200,
        "mallory ended nothing"
    );

    let r = laptop
        .post(&format!("/api/sessions/{phone_id}/revoke"), None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        phone.get("/api/me").await.status,
        401,
        "the phone is signed out"
    );
    assert_eq!(
        laptop.get("/api/me").await.status,
        200,
        "the laptop stays signed in"
    );
    assert_eq!(mallory.get("/api/me").await.status, 200);
    let r = laptop
        .post(&format!("/api/sessions/{phone_id}/revoke"), None)
        .await;
    assert_eq!(r.status, 404, "already ended: {r:?}");
    let left = list(&mut laptop).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], laptop_id.as_str());
}

pub async fn revoke_others_counts_and_keeps_this_device(kind: Kind, topology: Topology) {
    let app = start_with(kind, topology, |_| {}).await;
    let mut devices = Vec::new();
    for n in 0..4 {
        devices.push(log_in(&app, "ada", &format!("Device/{n}")).await);
    }
    let mut other_user = log_in(&app, "bob", "Bob/1").await;
    let mut this = devices.remove(0);
    let r = this.post("/api/sessions/revoke-others", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"revoked": 3}));
    for mut device in devices {
        assert_eq!(device.get("/api/me").await.status, 401);
    }
    assert_eq!(
        this.get("/api/me").await.json(),
        json!({"user": "ada", "counter": 0})
    );
    assert_eq!(
        other_user.get("/api/me").await.status,
        200,
        "bob keeps his session"
    );
    let left = list(&mut this).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["current"], true);
    let r = this.post("/api/sessions/revoke-others", None).await;
    assert_eq!(r.json(), json!({"revoked": 0}));
}

/// `--max-sessions-per-user 2`: a third login ends the least recently *used* session, not the
/// oldest. The first device is the oldest; the second is made to look unused for 100 s by
/// shortening its TTL under the 600 s idle timeout (the store derives last use from it).
pub async fn the_limit_ends_the_least_recently_used_session(kind: Kind, topology: Topology) {
    let app = start_with(kind, topology, |c| {
        c.idle_timeout = 600;
        c.max_sessions_per_user = 2;
    })
    .await;
    let mut first = log_in(&app, "ada", "First/1").await;
    let mut second = log_in(&app, "ada", "Second/1").await;
    let second_id = own_id(&mut second).await;
    // Its last use, 100 s ago: the write time its index member records, and its idle TTL.
    let key = format!("sess:{second_id}");
    assert_eq!(
        app.redis.cmd(&key, &["PEXPIRE", &key, "500000"]).int(),
        Some(1)
    );
    let index = app.redis.scan_keys("sess:~user~*").remove(0);
    let times = app
        .redis
        .cmd(&index, &["HGET", &index, &second_id])
        .text()
        .unwrap();
    // The member is `created:written:sha1` (milliseconds): both times move back 100 s.
    let earlier: Vec<String> = times
        .split(':')
        .enumerate()
        .map(|(i, t)| match i {
            0 | 1 => (t.parse::<u64>().unwrap() - 100_000).to_string(),
            _ => t.to_owned(),
        })
        .collect();
    app.redis
        .cmd(&index, &["HSET", &index, &second_id, &earlier.join(":")]);
    let mut third = log_in(&app, "ada", "Third/1").await;
    assert_eq!(
        second.get("/api/me").await.status,
        401,
        "the least recently used ended"
    );
    assert_eq!(first.get("/api/me").await.status, 200);
    assert_eq!(third.get("/api/me").await.status, 200);
    let agents: Vec<Value> = list(&mut third)
        .await
        .iter()
        .map(|s| s["user_agent"].clone())
        .collect();
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert!(agents.contains(&json!("First/1")) && agents.contains(&json!("Third/1")));
    // Another user is not limited by ada's sessions.
    let mut bob = log_in(&app, "bob", "Bob/1").await;
    assert_eq!(bob.get("/api/me").await.status, 200);
}

/// The panel shows the key as stored and the value as Redis holds it: readable JSON by default
/// (hashed key), "encrypted, N bytes" with a key ring (the HMAC of the id as the key).
pub async fn the_page_shows_what_redis_holds(kind: Kind, topology: Topology) {
    let app = start_with(kind, topology, |_| {}).await;
    let mut client = log_in(&app, "ada", "Laptop/1.0").await;
    let page = client.get("/").await;
    assert_eq!(page.status, 200);
    let key = app
        .redis
        .scan_keys("sess:*")
        .into_iter()
        .find(|k| !k.contains('~'))
        .unwrap();
    let value = app.redis.cmd(&key, &["GET", &key]).text().unwrap();
    assert!(page.body.contains("What Redis holds"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!(r#"<code id="holds-key">{key}</code>"#)),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(
        r#"<dd id="holds-size">{} bytes</dd>"#,
        value.len()
    )));
    let shown = value.replace('&', "&amp;").replace('"', "&quot;");
    assert!(
        page.body.contains(&shown),
        "readable JSON: {value}\n{}",
        page.body
    );
    assert!(page.body.contains("Your sessions") && page.body.contains("this device"));
    assert!(page.body.contains("Laptop/1.0"));
    // The limits the store runs with (the demo's default idle timeout, no absolute one), and
    // the key's TTL within the idle limit: sliding, with no absolute bound below it.
    assert_eq!(panel(&page.body, "holds-idle"), "1800 s");
    assert_eq!(panel(&page.body, "holds-absolute"), "none");
    let ttl = panel_seconds(&page.body, "holds-ttl");
    assert!(ttl > 120 && ttl <= 1800, "{ttl}");

    let encrypted = start_with(kind, topology, |c| {
        c.keys = Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into());
        c.hash_key = Some("AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=".into());
    })
    .await;
    let mut client = log_in(&encrypted, "ada-lovelace", "Laptop/1.0").await;
    let page = client.get("/").await;
    let key = encrypted
        .redis
        .scan_keys("sess:*")
        .into_iter()
        .find(|k| !k.contains('~'))
        .unwrap();
    let len = encrypted.redis.cmd(&key, &["STRLEN", &key]).int().unwrap();
    assert!(
        page.body
            .contains(&format!(r#"<code id="holds-key">{key}</code>"#)),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("encrypted, {len} bytes")),
        "{}",
        page.body
    );
}

/// `--absolute-timeout 120` under the default 1800 s idle timeout: the panel shows both
/// limits, the key's TTL is what is left of the absolute one (never above it), the size is
/// the stored value's, and the value holds the creation record the timeout counts from.
/// A request after the login (it slides the idle timeout) does not move the TTL past it.
pub async fn the_panel_shows_the_absolute_limit(kind: Kind, topology: Topology) {
    let app = start_with(kind, topology, |c| c.absolute_timeout = Some(120)).await;
    let mut client = log_in(&app, "ada", "Laptop/1.0").await;
    assert_eq!(client.post("/api/increment", None).await.status, 200);
    let page = client.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(panel(&page.body, "holds-idle"), "1800 s");
    assert_eq!(panel(&page.body, "holds-absolute"), "120 s");
    let ttl = panel_seconds(&page.body, "holds-ttl");
    assert!(
        ttl > 0 && ttl <= 120,
        "TTL {ttl} s within the absolute limit"
    );
    assert_eq!(panel_seconds(&page.body, "ttl"), ttl, "the footer agrees");
    let key = app
        .redis
        .scan_keys("sess:*")
        .into_iter()
        .find(|k| !k.contains('~'))
        .unwrap();
    let pttl = app.redis.cmd(&key, &["PTTL", &key]).int().unwrap();
    assert!(pttl > 0 && pttl <= 120_000, "the key's own TTL: {pttl} ms");
    let value = app.redis.cmd(&key, &["GET", &key]).text().unwrap();
    assert_eq!(
        panel(&page.body, "holds-size"),
        format!("{} bytes", value.len())
    );
    assert!(
        value.contains("\"__created\""),
        "the creation record: {value}"
    );
    assert!(
        panel_block(&page.body, "holds-value").contains("&quot;__created&quot;"),
        "{}",
        page.body
    );
}

/// The text of the page's `<dd id="{id}">`.
fn panel<'a>(body: &'a str, id: &str) -> &'a str {
    let open = format!(r#"<dd id="{id}">"#);
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {id}: {body}"))
        + open.len();
    let len = body[start..].find("</dd>").unwrap();
    &body[start..start + len]
}

/// The whole seconds of a `<dd id="{id}">N s</dd>`.
fn panel_seconds(body: &str, id: &str) -> u64 {
    let text = panel(body, id);
    let secs = text
        .strip_suffix(" s")
        .unwrap_or_else(|| panic!("{id}: {text}"));
    secs.parse().unwrap_or_else(|_| panic!("{id}: {text}"))
}

/// The text of the page's `<pre id="{id}">`.
fn panel_block<'a>(body: &'a str, id: &str) -> &'a str {
    let open = format!(r#"<pre id="{id}">"#);
    let start = body.find(&open).unwrap() + open.len();
    let len = body[start..].find("</pre>").unwrap();
    &body[start..start + len]
}

app_suite!(axum, Axum, Standalone:
    sessions_api_lists_devices_and_ends_only_own_sessions,
    revoke_others_counts_and_keeps_this_device,
    the_limit_ends_the_least_recently_used_session,
    the_page_shows_what_redis_holds,
    the_panel_shows_the_absolute_limit,
);

app_suite!(actix, Actix, Standalone:
    sessions_api_lists_devices_and_ends_only_own_sessions,
    revoke_others_counts_and_keeps_this_device,
    the_limit_ends_the_least_recently_used_session,
    the_page_shows_what_redis_holds,
    the_panel_shows_the_absolute_limit,
);

app_suite!(axum_cluster, Axum, Cluster:
    sessions_api_lists_devices_and_ends_only_own_sessions,
    revoke_others_counts_and_keeps_this_device,
    the_limit_ends_the_least_recently_used_session,
);
