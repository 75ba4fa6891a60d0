//! The store's tracing spans, recorded by a capturing subscriber on a real server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use redis_harness::RedisServer;
use redis_sessions::{RedisBackend, RedisStore};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::support::{id, session};

/// One span as recorded: its name, its parent's name, its fields.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub name: String,
    pub parent: Option<String>,
    pub fields: BTreeMap<String, String>,
}

/// Every span and event the subscriber saw.
#[derive(Clone, Default)]
pub struct Capture {
    spans: Arc<Mutex<Vec<(u64, Recorded)>>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut recorded = Recorded {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            ..Recorded::default()
        };
        attrs.record(&mut Fields(&mut recorded.fields));
        self.spans.lock().unwrap().push((id.into_u64(), recorded));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some((_, r)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut r.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(fields);
    }
}

impl Capture {
    pub fn spans(&self) -> Vec<Recorded> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Every recorded value, of spans and events.
    pub fn all_text(&self) -> String {
        let spans = self.spans();
        let events = self.events.lock().unwrap().clone();
        let mut out = String::new();
        for r in spans {
            out.push_str(&format!("{r:?}\n"));
        }
        for e in events {
            out.push_str(&format!("{e:?}\n"));
        }
        out
    }
}

fn field<'a>(span: &'a Recorded, name: &str) -> &'a str {
    span.fields.get(name).map_or_else(
        || panic!("span {} has no field {name}: {span:?}", span.name),
        String::as_str,
    )
}

#[tokio::test]
async fn each_operation_has_a_span_with_the_database_fields_under_the_request_span() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend).max_value_size(4096).build();
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let (live, gone, corrupt) = (id(), id(), id());
    let contents = session(41);
    let mut big = redis_sessions::Session::new();
    big.insert("blob", "x".repeat(10_000)).unwrap();
    server.cmd(&["SET", &store.keyspace().key(&corrupt), "not a session"]);
    async {
        assert!(store.create(&live, &contents).await.unwrap().is_written());
        assert_eq!(
            store.create(&live, &contents).await.unwrap(),
            redis_sessions::Outcome::Exists
        );
        assert!(store.load(&live).await.unwrap().is_some());
        assert!(store.load(&gone).await.unwrap().is_none());
        assert!(store.load(&corrupt).await.unwrap().is_none());
        assert_eq!(
            store.update(&gone, &contents).await.unwrap(),
            redis_sessions::Outcome::Gone
        );
        assert!(store.set(&live, &big).await.unwrap_err().is_too_large());
        assert!(store.destroy(&live).await.unwrap());
    }
    .instrument(tracing::info_span!("request"))
    .await;

    let spans: Vec<_> = capture
        .spans()
        .into_iter()
        .filter(|s| s.name != "request")
        .collect();
    let seen: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.name.as_str(), field(s, "session.outcome")))
        .collect();
    assert_eq!(
        seen,
        [
            ("create", "written"),
            ("create", "exists"),
            ("load", "hit"),
            ("load", "miss"),
            ("load", "corrupt"),
            ("update", "gone"),
            ("set", "too_large"),
            ("destroy", "deleted"),
        ]
    );
    let port = server.port().to_string();
    for s in &spans {
        assert_eq!(s.parent.as_deref(), Some("request"), "{s:?}");
        assert_eq!(field(s, "db.system.name"), "redis");
        assert_eq!(field(s, "db.operation.name"), s.name);
        assert_eq!(field(s, "otel.kind"), "client");
        assert_eq!(field(s, "server.address"), "127.0.0.1");
        assert_eq!(field(s, "server.port"), port);
        assert_eq!(field(s, "db.namespace"), "0");
        let failed = matches!(field(s, "session.outcome"), "too_large" | "corrupt");
        assert_eq!(s.fields.contains_key("error.type"), failed, "{s:?}");
    }
    assert_eq!(
        field(&spans[0], "session.fingerprint"),
        live.fingerprint().to_string()
    );
    assert_eq!(
        field(&spans[3], "session.fingerprint"),
        gone.fingerprint().to_string()
    );
    assert_eq!(field(&spans[6], "error.type"), "too_large");
    // The corrupt value loads as no session, and its span says why.
    assert_eq!(field(&spans[4], "error.type"), "corrupt");
    // The size of the value written, then read back.
    let written: usize = field(&spans[0], "session.size").parse().unwrap();
    assert_eq!(field(&spans[2], "session.size"), written.to_string());
    assert!(written > 0);
    let text = capture.all_text();
    for raw in [
        live.as_str(),
        gone.as_str(),
        corrupt.as_str(),
        "user-41",
        "not a session",
    ] {
        assert!(!text.contains(raw), "{raw} leaked into the trace: {text}");
    }
}

#[tokio::test]
async fn a_failed_operation_records_its_error_type() {
    let mut server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::new(backend);
    server.stop();
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let err = store.load(&id()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let spans = capture.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let kind = field(&spans[0], "error.type");
    assert!(kind == "unavailable" || kind == "timeout", "{kind}");
    assert!(!spans[0].fields.contains_key("session.outcome"));
}

/// Operations over many sessions have their spans too, with the count of sessions they
/// listed, counted or ended, and the per-session spans of their steps nested under them.
#[tokio::test]
async fn operations_over_many_sessions_have_spans_with_counts() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let store = RedisStore::builder(backend).index_by("user").build();
    let user = "ada@example.com";
    let mut of_user = redis_sessions::Session::new();
    of_user.insert("user", user).unwrap();
    for _ in 0..3 {
        assert!(store.create(&id(), &of_user).await.unwrap().is_written());
    }
    assert!(store.create(&id(), &session(1)).await.unwrap().is_written());
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    async {
        let listed = store.user_sessions(user).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(store.user_session_count(user).await.unwrap(), 3);
        assert!(store
            .revoke_user_session(user, &listed[0].id)
            .await
            .unwrap());
        assert!(!store
            .revoke_user_session(user, &listed[0].id)
            .await
            .unwrap());
        assert_eq!(store.revoke_user_sessions(user, None).await.unwrap(), 2);
        assert_eq!(store.length().await.unwrap(), 1);
        assert_eq!(store.ids().await.unwrap().len(), 1);
        assert_eq!(store.all().await.unwrap().len(), 1);
        assert_eq!(store.clear().await.unwrap(), 1);
        store.health().await.unwrap();
    }
    .instrument(tracing::info_span!("request"))
    .await;

    let spans = capture.spans();
    let top: Vec<(&str, &str, Option<&str>)> = spans
        .iter()
        .filter(|s| s.parent.as_deref() == Some("request"))
        .map(|s| {
            let count = s.fields.get("session.count").map(String::as_str);
            (s.name.as_str(), field(s, "session.outcome"), count)
        })
        .collect();
    assert_eq!(
        top,
        [
            ("user_sessions", "ok", Some("3")),
            ("user_session_count", "ok", Some("3")),
            ("revoke_user_session", "ok", Some("1")),
            ("revoke_user_session", "gone", Some("0")),
            ("revoke_user_sessions", "ok", Some("2")),
            ("length", "ok", Some("1")),
            ("ids", "ok", Some("1")),
            ("all", "ok", Some("1")),
            ("clear", "ok", Some("1")),
            ("health", "ok", None),
        ]
    );
    for s in spans
        .iter()
        .filter(|s| s.parent.as_deref() == Some("request"))
    {
        assert_eq!(field(s, "db.system.name"), "redis");
        assert_eq!(field(s, "db.operation.name"), s.name);
        assert_eq!(field(s, "otel.kind"), "client");
        assert_eq!(field(s, "server.port"), server.port().to_string());
    }
    // A revoke's deletes are its children, each with its session's fingerprint.
    let nested: Vec<_> = spans
        .iter()
        .filter(|s| s.parent.as_deref() == Some("revoke_user_sessions"))
        .collect();
    assert_eq!(nested.len(), 2, "{nested:?}");
    assert!(nested.iter().all(|s| s.name == "destroy"), "{nested:?}");
    let text = capture.all_text();
    assert!(
        !text.contains(user),
        "the user leaked into the trace: {text}"
    );
}
