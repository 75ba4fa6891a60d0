//! actix-session's failed loads and saves as a JSON answer, for the actix app.

use std::cell::Cell;
use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpResponse;

use super::{Failure, Watched, FAILED};

/// actix-session's session state.
type State = HashMap<String, String>;

/// The failure behind an actix-session store error: [`Failure::Backend`] when the store's
/// error in its source chain is a Redis failure.
fn failure_of(error: &(dyn std::error::Error + 'static)) -> Failure {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(store) = e.downcast_ref::<redis_sessions::Error>() {
            return match store {
                redis_sessions::Error::Backend(_) => Failure::Backend,
                _ => Failure::Codec,
            };
        }
        next = e.source();
    }
    Failure::Codec
}

fn noted<T, E: std::error::Error + 'static>(result: Result<T, E>) -> Result<T, E> {
    if let Err(e) = &result {
        super::note(failure_of(e));
    }
    result
}

fn noted_anyhow<T>(result: anyhow::Result<T>) -> anyhow::Result<T> {
    if let Err(e) = &result {
        super::note(failure_of(e.as_ref()));
    }
    result
}

impl<S: SessionStore> SessionStore for Watched<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        noted(self.0.load(key).await)
    }
    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        noted(self.0.save(state, ttl).await)
    }
    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        noted(self.0.update(key, state, ttl).await)
    }
    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        noted_anyhow(self.0.update_ttl(key, ttl).await)
    }
    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        noted_anyhow(self.0.delete(key).await)
    }
}

/// Middleware (outside `SessionMiddleware`): its empty 500 after a store failure becomes a
/// JSON answer, 503 when Redis failed. The session middleware answers with an error, not a
/// response, so the answer replaces the error's (the store's error was logged by the store).
pub(crate) async fn answer_actix_store_failures<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    FAILED
        .scope(Cell::new(None), async move {
            let error = match next.call(request).await {
                Err(e)
                    if e.as_response_error().status_code() == StatusCode::INTERNAL_SERVER_ERROR =>
                {
                    e
                }
                answered => return answered,
            };
            let Some(failure) = FAILED.with(Cell::get) else {
                return Err(error);
            };
            let answer = match failure {
                Failure::Backend => HttpResponse::ServiceUnavailable().json(failure.body()),
                Failure::Codec => HttpResponse::InternalServerError().json(failure.body()),
            };
            Err(actix_web::error::InternalError::from_response(error, answer).into())
        })
        .await
}
