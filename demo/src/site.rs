//! What both demos share beyond the store: the app's state, the fields a login writes, and the
//! home page with its "Your sessions" and "What Redis holds" sections. The framework files
//! only extract the request's parts and map the results to their responses.

use std::time::Duration;

use redis_sessions::{Backend, RedisStore, SessionId};
use serde_json::{json, Value};

use crate::devices::{self, Device, IP, SIGNED_IN, USER_AGENT};
use crate::holds::{self, Limits};
use crate::page::{self, Home};
use crate::{BackendLabel, Config, IncrementHook, COUNTER, USER};

/// The app's state, the same in both demos.
pub(crate) struct Site<B> {
    pub store: RedisStore<B>,
    pub label: BackendLabel,
    pub hook: Option<IncrementHook>,
    pub field_hook: Option<IncrementHook>,
    pub limits: Limits,
}

impl<B> Clone for Site<B> {
    fn clone(&self) -> Self {
        Site {
            store: self.store.clone(),
            label: self.label.clone(),
            hook: self.hook.clone(),
            field_hook: self.field_hook.clone(),
            limits: self.limits,
        }
    }
}

/// The fields a login writes into the new session: the user, the counter and the device facts.
pub(crate) fn login_fields(user: &str, device: Device) -> [(&'static str, Value); 5] {
    [
        (USER, json!(user)),
        (COUNTER, json!(0)),
        (USER_AGENT, json!(device.user_agent)),
        (IP, json!(device.ip)),
        (SIGNED_IN, json!(device.signed_in)),
    ]
}

impl<B: Backend> Site<B> {
    pub(crate) fn new(store: RedisStore<B>, label: BackendLabel, config: &Config) -> Site<B> {
        Site {
            store,
            label,
            hook: config.increment_hook.clone(),
            field_hook: config.field_hook.clone(),
            limits: Limits {
                idle: Duration::from_secs(config.idle_timeout),
                absolute: config.absolute_timeout.map(Duration::from_secs),
            },
        }
    }

    /// The home page for the request's user and counter (`who`) and session id (`current`).
    ///
    /// # Errors
    /// The store fails.
    pub(crate) async fn home(
        &self,
        who: Option<(&str, i64)>,
        current: Option<&SessionId>,
    ) -> redis_sessions::Result<String> {
        let sessions = match who {
            Some((user, _)) => devices::list(&self.store, user, current).await?,
            None => Vec::new(),
        };
        let holds = match current {
            Some(id) => holds::of(&self.store, id, self.limits).await?,
            None => None,
        };
        Ok(page::render(&Home {
            user: who.map(|(u, _)| u),
            counter: who.map_or(0, |(_, c)| c),
            backend: &self.label.0,
            sessions: &sessions,
            holds: holds.as_ref(),
        }))
    }

    /// `GET /api/sessions`'s body.
    ///
    /// # Errors
    /// The store fails.
    pub(crate) async fn sessions_json(
        &self,
        user: &str,
        current: Option<&SessionId>,
    ) -> redis_sessions::Result<Value> {
        let rows = devices::list(&self.store, user, current).await?;
        Ok(devices::json(&rows))
    }
}
