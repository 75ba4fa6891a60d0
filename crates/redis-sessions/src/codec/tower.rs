//! tower-sessions' shape of a session: the `Record`'s `HashMap` of values, decoded straight
//! from the stored bytes and encoded straight from the record (no [`Session`] in between,
//! except for a custom serializer). The same in tower-sessions 0.14 and 0.15.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

use super::fields::{deserialize_fields, serialize_fields, stored_bound, Fields, COOKIE, CREATED};
use super::shape::{created_of, stamp_kept, Loaded, Stamp};
use super::{Decoded, Encodable};
use crate::session::Session;

/// A record's fields and expiry, as the store writes them.
pub(crate) struct TowerOut<'a> {
    /// The record's data, borrowed: never copied on the JSON and MessagePack paths.
    pub(crate) data: &'a HashMap<String, Value>,
    /// The record's `expiry_date`: the key's TTL.
    pub(crate) expires: SystemTime,
}

impl Encodable for TowerOut<'_> {
    fn expires(&self) -> Option<SystemTime> {
        Some(self.expires)
    }

    fn user(&self, field: &str) -> Option<String> {
        super::shape::user_of(self.data.get(field)?)
    }

    fn created(&self) -> Option<SystemTime> {
        created_of(self.data.get(CREATED))
    }

    fn has_field(&self, name: &str) -> bool {
        self.data.contains_key(name)
    }

    fn serialize_with<S: Serializer>(
        &self,
        serializer: S,
        stamp: Stamp,
    ) -> Result<S::Ok, S::Error> {
        serialize_fields(
            serializer,
            self.data.iter(),
            self.data.get(COOKIE),
            stamp.expires,
            true,
            stamp.bound,
            stamp.created,
            self.data.contains_key(CREATED),
        )
    }

    fn to_session(&self, stamp: Stamp) -> Cow<'_, Session> {
        let data = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Cow::Owned(Session::from_map(data).with_expiry_kept(self.expires, stamp_kept(stamp)))
    }

    /// The record's data as it is (a JSON value reads back as the same value), the creation
    /// record the stamp writes, and the stamp's bound in whole milliseconds. Not with a
    /// `cookie` field (its expiry member is rewritten or split out) or an expiry stamped into
    /// `cookie.expires`.
    fn loaded(&self, stamp: Stamp, shape: TypeId) -> Option<Loaded> {
        if shape != TypeId::of::<TowerIn>()
            || stamp.expires.is_some()
            || self.data.contains_key(COOKIE)
        {
            return None;
        }
        let mut data = self.data.clone();
        if let Some(created) = stamp.created {
            data.insert(CREATED.to_owned(), Value::from(created));
        }
        let expires = stamp.bound.map(stored_bound);
        Some((Arc::new(TowerIn { data, expires }), expires))
    }
}

/// A stored session in tower-sessions' shape.
#[derive(Clone)]
pub(crate) struct TowerIn {
    /// The fields, without the store's expiry (its bound, or split out of `cookie`).
    pub(crate) data: HashMap<String, Value>,
    /// The expiry stored in the value, if any.
    pub(crate) expires: Option<SystemTime>,
}

impl Fields for HashMap<String, Value> {
    type Value = Value;
    const KEEP_COOKIE: bool = false;
    fn with_capacity(n: usize) -> Self {
        HashMap::with_capacity(n)
    }
    fn insert(&mut self, key: String, value: Value) {
        HashMap::insert(self, key, value);
    }
    fn cookie(cookie: Value) -> Value {
        cookie
    }
}

impl<'de> Deserialize<'de> for TowerIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (data, expiry) = deserialize_fields(deserializer)?;
        Ok(TowerIn {
            data,
            expires: expiry.at,
        })
    }
}

impl Decoded for TowerIn {
    fn from_session(session: Session) -> Self {
        TowerIn {
            expires: session.expires(),
            data: session.into_fields().into_iter().collect(),
        }
    }

    fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    fn user(&self, field: &str) -> Option<String> {
        super::shape::user_of(self.data.get(field)?)
    }

    fn created(&self) -> Option<SystemTime> {
        created_of(self.data.get(CREATED))
    }
}
