//! tower-sessions' failed saves (and loads) as a JSON answer, for the axum app.

use std::cell::Cell;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

use super::{Failure, Watched, FAILED};

fn noted<T>(result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        super::note(match e {
            Error::Backend(_) => Failure::Backend,
            _ => Failure::Codec,
        });
    }
    result
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for Watched<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        noted(self.0.create(record).await)
    }
    async fn save(&self, record: &Record) -> Result<()> {
        noted(self.0.save(record).await)
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        noted(self.0.load(id).await)
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        noted(self.0.delete(id).await)
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
            match FAILED.with(Cell::get) {
                Some(failure) if bare_500 => {
                    let status = match failure {
                        Failure::Backend => StatusCode::SERVICE_UNAVAILABLE,
                        Failure::Codec => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    (status, axum::Json(failure.body())).into_response()
                }
                _ => response,
            }
        })
        .await
}
