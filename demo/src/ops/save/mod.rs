//! The session layer's own store failures as a JSON answer, 503 when Redis failed.
//!
//! tower-sessions' `SessionManagerLayer` saves a changed session after the handler answered;
//! when that save fails it logs the error and replaces the answer with an empty 500 (it gives
//! the application no hook). actix-session's `SessionMiddleware` does the same when its load
//! before the handler, or its save after, fails: an error whose response is an empty 500 and
//! which hides the store's error. So the store each layer uses is wrapped ([`Watched`]) to
//! note the failure of the request it runs in (a task-local slot), and a middleware outside
//! the session layer ([`answer_save_failures`] for axum, [`answer_actix_store_failures`] for
//! actix-web) turns that empty 500 into a 503 with a JSON body when the store failed on
//! Redis, or a 500 with a JSON body when the session could not be encoded. The handler's
//! answer itself is lost either way (the layer dropped it).

mod actix;
mod tower;

use std::cell::Cell;

use serde_json::{json, Value};

pub(crate) use self::actix::answer_actix_store_failures;
pub(crate) use self::tower::answer_save_failures;

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

impl Failure {
    /// The JSON body of the answer.
    fn body(self) -> Value {
        match self {
            Failure::Backend => super::unavailable_body(),
            Failure::Codec => json!({"error": "the session could not be saved"}),
        }
    }
}

/// Notes a failure of the request's store call, when in a request (inside a middleware's
/// scope).
fn note(failure: Failure) {
    let _outside_a_request = FAILED.try_with(|slot| slot.set(Some(failure)));
}

/// A session store that notes its failures for [`answer_save_failures`] (tower-sessions) and
/// [`answer_actix_store_failures`] (actix-session).
#[derive(Clone, Debug)]
pub(crate) struct Watched<S>(pub(crate) S);
