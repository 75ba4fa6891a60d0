//! The session layer's own save failures as a 503 JSON answer.
//!
//! tower-sessions' `SessionManagerLayer` saves a changed session after the handler answered;
//! when that save fails it logs the error and replaces the answer with an empty 500 (it gives
//! the application no hook). So the store is wrapped ([`Watched`]) to note the failure of the
//! request it runs in (a task-local slot), and a middleware outside the session layer
//! ([`answer_save_failures`]) turns that empty 500 into a 503 with a JSON body when the store
//! failed on Redis, or a 500 with a JSON body when the session could not be encoded. The
//! handler's answer itself is lost either way (the layer dropped it).

use std::cell::Cell;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

tokio::task_local! {
    /// Whether a store call of this request failed, and how.
    static FAILED: Cell<Option<Failure>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Redis failed (down, timed out, failing fast, refused): answer 503.
    Backend,
    /// The session could not be encoded or decoded: answer 500.
    Codec,
}

fn note<T>(result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        let failure = match e {
            Error::Backend(_) => Failure::Backend,
            _ => Failure::Codec,
        };
        let _outside_a_request = FAILED.try_with(|slot| slot.set(Some(failure)));
    }
    result
}

/// A session store that notes its failures for [`answer_save_failures`].
#[derive(Clone, Debug)]
pub(crate) struct Watched<S>(pub(crate) S);

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for Watched<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        note(self.0.create(record).await)
    }
    async fn save(&self, record: &Record) -> Result<()> {
        note(self.0.save(record).await)
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        note(self.0.load(id).await)
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        note(self.0.delete(id).await)
    }
}

/// Middleware (outside the session layer): an empty 500 after a store failure becomes a JSON
/// answer, 503 when Redis failed.
pub(crate) async fn answer_save_failures(request: Request, next: Next) -> Response {
    FAILED
        .scope(Cell::new(None), async move {
            let response = next.run(request).await;
            let bare_500 = response.status() == StatusCode::INTERNAL_SERVER_ERROR
                && !response.headers().contains_key(header::CONTENT_TYPE);
            match (bare_500, FAILED.with(Cell::get)) {
                (true, Some(Failure::Backend)) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(super::unavailable_body()),
                )
                    .into_response(),
                (true, Some(Failure::Codec)) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(serde_json::json!({"error": "the session could not be saved"})),
                )
                    .into_response(),
                _ => response,
            }
        })
        .await
}
