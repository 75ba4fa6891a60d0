//! The adapters' merge of concurrent saves (tower-sessions 0.15), on every backend: 32
//! requests of one session each load it (in its own task, a barrier after the loads), each
//! sets its own field, then all save: every field is kept; with merging off the same
//! interleaving keeps only the last save's field (proof that the race happens).

use std::collections::HashMap;
use std::sync::Arc;

use redis_sessions::{Backend, RedisStore};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;
use tower_sessions_core_015::session::{Id, Record};
use tower_sessions_core_015::SessionStore;

const REQUESTS: usize = 32;

/// Runs the interleaving; the `f{i}` fields stored at the end.
async fn concurrent_fields<B: Backend + Clone>(store: RedisStore<B>) -> usize {
    let mut data = HashMap::new();
    data.insert("user".to_owned(), json!("ada"));
    let mut record = Record {
        id: Id(rand_id()),
        data,
        expiry_date: OffsetDateTime::now_utc() + Duration::minutes(10),
    };
    SessionStore::create(&store, &mut record).await.unwrap();
    let id = record.id;
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                let mut loaded = SessionStore::load(&store, &id).await.unwrap().unwrap();
                barrier.wait().await;
                loaded.data.insert(format!("f{i}"), json!(i));
                loaded.expiry_date = OffsetDateTime::now_utc() + Duration::minutes(10);
                SessionStore::save(&store, &loaded).await.unwrap();
            })
        })
        .collect();
    for request in requests {
        request.await.unwrap();
    }
    let stored = SessionStore::load(&store, &id).await.unwrap().unwrap();
    assert_eq!(stored.data.get("user"), Some(&json!("ada")));
    (0..REQUESTS)
        .filter(|i| stored.data.get(&format!("f{i}")) == Some(&json!(i)))
        .count()
}

fn rand_id() -> i128 {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    i128::from_le_bytes(bytes)
}

pub async fn concurrent_saves_keep_every_field<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b).merge_concurrent_saves(true).build();
    assert_eq!(concurrent_fields(store).await, REQUESTS);
}

pub async fn without_merging_the_race_loses_fields<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b).merge_concurrent_saves(false).build();
    assert_eq!(concurrent_fields(store).await, 1);
}

macro_rules! merge_suite {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                backend_cases!($backend:
                    concurrent_saves_keep_every_field,
                    without_merging_the_race_loses_fields
                );
            }
        )*
    };
}

merge_suite!(memory, redis);
#[cfg(feature = "cluster")]
merge_suite!(cluster);
#[cfg(feature = "sentinel")]
merge_suite!(sentinel);
