//! The session fields API (`PUT /api/fields/{name}`, `GET /api/fields`) and the merge of
//! concurrent saves through it, both demos: 32 parallel `PUT`s of one session, each of its own
//! field, held by the demo's field hook until all 32 have loaded the session (so their saves
//! race every round): with merging on all 32 fields are stored; with it off the same rounds
//! lose fields (proof that the race happens).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{Client, Response};
use crate::servers::{start_with, Kind, Running, Topology};

const PUTS: usize = 32;
const ROUNDS: usize = 4;

/// The demo, merging on or off, and a client signed in as ada. With `barrier`, the demo's
/// field hook holds each `PUT` until `PUTS` of them have loaded the session.
async fn app(kind: Kind, topology: Topology, merge: bool, barrier: bool) -> (Running, Client) {
    let hook = barrier.then(|| {
        let barrier = Arc::new(tokio::sync::Barrier::new(PUTS));
        demo::IncrementHook::new(move || {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
            }
        })
    });
    let app = start_with(kind, topology, |config| {
        config.merge_concurrent_saves = merge;
        config.field_hook = hook;
    })
    .await;
    let mut client = Client::new(app.addr);
    let r = client
        .post("/api/login", Some(json!({"user": "ada"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    (app, client)
}

async fn put(client: &mut Client, name: &str, value: &Value) -> Response {
    let path = format!("/api/fields/{name}");
    client.send("PUT", &path, Some(value.to_string())).await
}

/// Runs one round: `PUTS` parallel `PUT /api/fields/f{i}` of `{"round": round, "i": i}`; the
/// `f{i}` fields `GET /api/fields` shows with this round's value afterwards.
async fn round(client: &Client, round: usize) -> usize {
    let puts: Vec<_> = (0..PUTS)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let value = json!({"round": round, "i": i});
                put(&mut client, &format!("f{i}"), &value).await
            })
        })
        .collect();
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        let mut answers = Vec::new();
        for p in puts {
            answers.push(p.await.unwrap());
        }
        answers
    })
    .await
    .expect("the 32 PUTs did not all answer within 30 s (one failed before the hook?)");
    for (i, r) in answered.iter().enumerate() {
        assert_eq!(r.status, 200, "PUT f{i}: {r:?}");
        assert_eq!(r.json()["value"], json!({"round": round, "i": i}));
    }
    let r = client.clone().get("/api/fields").await;
    assert_eq!(r.status, 200, "{r:?}");
    let fields = r.json();
    assert_eq!(fields["user"], json!("ada"), "{fields}");
    (0..PUTS)
        .filter(|i| fields[format!("f{i}")] == json!({"round": round, "i": i}))
        .count()
}

pub async fn parallel_puts_keep_every_field(kind: Kind, topology: Topology) {
    let (_app, client) = app(kind, topology, true, true).await;
    for r in 0..ROUNDS {
        assert_eq!(round(&client, r).await, PUTS, "round {r}");
    }
}

pub async fn without_merging_parallel_puts_lose_fields(kind: Kind, topology: Topology) {
    let (_app, client) = app(kind, topology, false, true).await;
    for r in 0..ROUNDS {
        // Every PUT loaded the session before any saved: each save writes the whole record
        // it loaded plus its own field, so the last one wins whole.
        assert_eq!(round(&client, r).await, 1, "round {r}");
    }
}

pub async fn the_fields_api_checks_names_values_and_login(kind: Kind, topology: Topology) {
    let (app, mut client) = app(kind, topology, true, false).await;
    let mut anonymous = Client::new(app.addr);
    assert_eq!(put(&mut anonymous, "f", &json!(1)).await.status, 401);
    assert_eq!(anonymous.get("/api/fields").await.status, 401);
    assert!(
        anonymous.cookie.is_none(),
        "no session for anonymous requests"
    );

    for bad in ["F", "a-b", "a.b", &"a".repeat(33)] {
        let r = put(&mut client, bad, &json!(1)).await;
        assert_eq!(r.status, 400, "{bad:?}: {r:?}");
    }
    // The demo's own fields: the user field is the index's, changing it would sign the session
    // in as someone else.
    for own in ["user", "counter", "ip"] {
        let r = put(&mut client, own, &json!("mallory")).await;
        assert_eq!(r.status, 400, "{own}: {r:?}");
    }
    let r = client
        .send("PUT", "/api/fields/f", Some("{not json".into()))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    let big = json!("x".repeat(5000));
    assert_eq!(put(&mut client, "f", &big).await.status, 413);

    let nested = json!({"a": [1, 2.5, null, "é"], "b": {"c": true}});
    assert_eq!(put(&mut client, "nested", &nested).await.status, 200);
    assert_eq!(
        put(&mut client, "n", &json!(12345678901234567_u64))
            .await
            .status,
        200
    );
    let fields = client.get("/api/fields").await.json();
    assert_eq!(fields["nested"], nested, "values round-trip exactly");
    assert_eq!(fields["n"], json!(12345678901234567_u64));
    assert_eq!(fields["user"], json!("ada"));
    assert_eq!(fields["counter"], json!(0));
    assert!(
        fields.get("f").is_none(),
        "refused PUTs wrote nothing: {fields}"
    );
}

app_suite!(axum, Axum, Standalone:
    parallel_puts_keep_every_field,
    without_merging_parallel_puts_lose_fields,
    the_fields_api_checks_names_values_and_login,
);

app_suite!(actix, Actix, Standalone:
    parallel_puts_keep_every_field,
    without_merging_parallel_puts_lose_fields,
    the_fields_api_checks_names_values_and_login,
);

app_suite!(axum_cluster, Axum, Cluster:
    parallel_puts_keep_every_field,
    without_merging_parallel_puts_lose_fields,
);
