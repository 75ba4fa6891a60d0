//! The adapters' merge of concurrent saves (tower-sessions 0.14 and 0.15, actix-session), on
//! every backend, with fixed interleavings so the race happens every run: requests of one
//! session each load it (each in its own task), wait at a barrier until all have loaded, change
//! what they change, then save. With merging on every request's change is kept; with it off
//! the same interleaving keeps only the last save's (proof that the race happens). Also: a
//! logout racing merged saves, a field removed by one request and changed by another, the
//! expiry a merged save sets, a save without a base, and hashed ids with encryption and the
//! per-user index.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use redis_sessions::{Backend, IdHashing, RedisStore};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::support::ttl_of;

const REQUESTS: usize = 32;

/// A session's top-level fields, as both frameworks hold them (actix as JSON texts).
type Fields = HashMap<String, Value>;

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// One framework's `SessionStore`, as the races need it: create, load and save a record of
/// fields that expires in `expires_in`.
trait Adapter: Clone + 'static {
    /// The framework's session key, as text.
    async fn create(&self, fields: Fields) -> String;
    async fn load(&self, key: &str) -> Option<Fields>;
    async fn save(&self, key: &str, fields: Fields, expires_in: Duration);
    async fn delete(&self, key: &str);
}

macro_rules! tower_adapter {
    ($name:ident, $core:ident) => {
        #[derive(Clone)]
        struct $name<B>(RedisStore<B>);

        impl<B: Backend + Clone> $name<B> {
            fn id(key: &str) -> $core::session::Id {
                key.parse().expect("a tower-sessions id")
            }
        }

        impl<B: Backend + Clone> Adapter for $name<B> {
            async fn create(&self, fields: Fields) -> String {
                let mut record = $core::session::Record {
                    id: $core::session::Id::default(),
                    data: fields,
                    expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(10),
                };
                $core::SessionStore::create(&self.0, &mut record)
                    .await
                    .unwrap();
                record.id.to_string()
            }
            async fn load(&self, key: &str) -> Option<Fields> {
                let id = Self::id(key);
                let loaded = $core::SessionStore::load(&self.0, &id).await.unwrap();
                loaded.map(|record| record.data)
            }
            async fn save(&self, key: &str, fields: Fields, expires_in: Duration) {
                let record = $core::session::Record {
                    id: Self::id(key),
                    data: fields,
                    expiry_date: time::OffsetDateTime::now_utc() + expires_in,
                };
                $core::SessionStore::save(&self.0, &record).await.unwrap();
            }
            async fn delete(&self, key: &str) {
                $core::SessionStore::delete(&self.0, &Self::id(key))
                    .await
                    .unwrap();
            }
        }
    };
}

tower_adapter!(Tower014, tower_sessions_core_014);
tower_adapter!(Tower015, tower_sessions_core_015);

#[derive(Clone)]
struct Actix<B>(RedisStore<B>);

fn session_key(key: &str) -> actix_session::storage::SessionKey {
    key.to_owned().try_into().expect("an actix-session key")
}

impl<B: Backend + Clone> Adapter for Actix<B> {
    async fn create(&self, fields: Fields) -> String {
        let state = fields.iter().map(|(k, v)| (k.clone(), v.to_string()));
        let ttl = time::Duration::minutes(10);
        let key = actix_session::storage::SessionStore::save(&self.0, state.collect(), &ttl);
        key.await.unwrap().as_ref().to_owned()
    }
    async fn load(&self, key: &str) -> Option<Fields> {
        let key = session_key(key);
        let state = actix_session::storage::SessionStore::load(&self.0, &key);
        let state = state.await.unwrap()?;
        let parsed = state.into_iter().map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap();
            (k, value)
        });
        Some(parsed.collect())
    }
    async fn save(&self, key: &str, fields: Fields, expires_in: Duration) {
        let state = fields.iter().map(|(k, v)| (k.clone(), v.to_string()));
        let ttl = time::Duration::try_from(expires_in).unwrap();
        let update = actix_session::storage::SessionStore::update(
            &self.0,
            session_key(key),
            state.collect(),
            &ttl,
        );
        let _same_key = update.await.unwrap();
    }
    async fn delete(&self, key: &str) {
        actix_session::storage::SessionStore::delete(&self.0, &session_key(key))
            .await
            .unwrap();
    }
}

/// A request in a task of its own, as a framework runs one (the store keeps what a request
/// loaded by task): it loads the session, hands it over, then saves what it is handed back.
/// Call inside a `LocalSet`.
struct Request {
    loaded: Fields,
    save: tokio::sync::oneshot::Sender<(Fields, Duration)>,
    done: tokio::task::JoinHandle<()>,
}

impl Request {
    async fn open<A: Adapter>(adapter: &A, key: &str) -> Request {
        let (adapter, key) = (adapter.clone(), key.to_owned());
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let (save, save_rx) = tokio::sync::oneshot::channel::<(Fields, Duration)>();
        let done = tokio::task::spawn_local(async move {
            let loaded = adapter.load(&key).await.expect("the session");
            loaded_tx.send(loaded).unwrap();
            let (fields, ttl) = save_rx.await.unwrap();
            adapter.save(&key, fields, ttl).await;
        });
        let loaded = loaded_rx.await.unwrap();
        Request { loaded, save, done }
    }

    async fn save(self, fields: Fields, ttl: Duration) {
        self.save.send((fields, ttl)).unwrap();
        self.done.await.unwrap();
    }
}

/// Runs `requests` requests of session `key`, each in its own task on this thread: each loads,
/// waits until all have loaded, then `change`s what it loaded and saves it.
async fn race<A: Adapter>(
    adapter: &A,
    key: &str,
    requests: usize,
    change: impl Fn(usize, &mut Fields) + 'static,
) {
    let change = Rc::new(change);
    let barrier = Arc::new(Barrier::new(requests));
    let local = tokio::task::LocalSet::new();
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let (adapter, key) = (adapter.clone(), key.to_owned());
            let (barrier, change) = (Arc::clone(&barrier), Rc::clone(&change));
            local.spawn_local(async move {
                let mut loaded = adapter.load(&key).await.expect("the session");
                barrier.wait().await;
                change(i, &mut loaded);
                adapter.save(&key, loaded, Duration::from_secs(600)).await;
            })
        })
        .collect();
    local
        .run_until(async move {
            for task in tasks {
                task.await.unwrap();
            }
        })
        .await;
}

/// The interleaving on `adapter`: how many of the requests' own fields are stored at the end.
async fn concurrent_fields<A: Adapter>(adapter: A) -> usize {
    let key = adapter.create(fields(&[("user", json!("ada"))])).await;
    race(&adapter, &key, REQUESTS, |i, loaded| {
        loaded.insert(format!("f{i}"), json!(i));
    })
    .await;
    let stored = adapter.load(&key).await.expect("the session");
    assert_eq!(stored.get("user"), Some(&json!("ada")));
    (0..REQUESTS)
        .filter(|i| stored.get(&format!("f{i}")) == Some(&json!(i)))
        .count()
}

fn merging<B: Backend>(b: B, on: bool) -> RedisStore<B> {
    RedisStore::builder(b).merge_concurrent_saves(on).build()
}

pub async fn concurrent_saves_keep_every_field<B: Backend + Clone>(b: B) {
    let store = merging(b, true);
    assert_eq!(concurrent_fields(Tower014(store.clone())).await, REQUESTS);
    assert_eq!(concurrent_fields(Tower015(store.clone())).await, REQUESTS);
    assert_eq!(concurrent_fields(Actix(store)).await, REQUESTS);
}

pub async fn without_merging_the_race_loses_fields<B: Backend + Clone>(b: B) {
    let store = merging(b, false);
    assert_eq!(concurrent_fields(Tower014(store.clone())).await, 1);
    assert_eq!(concurrent_fields(Tower015(store.clone())).await, 1);
    assert_eq!(concurrent_fields(Actix(store)).await, 1);
}

/// Requests that loaded the session, a logout, then their saves: nothing comes back.
async fn logout_wins<A: Adapter>(adapter: A) {
    let key = adapter.create(fields(&[("user", json!("ada"))])).await;
    let barrier = Arc::new(Barrier::new(REQUESTS + 1));
    let local = tokio::task::LocalSet::new();
    let saves: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (adapter, key, barrier) = (adapter.clone(), key.clone(), Arc::clone(&barrier));
            local.spawn_local(async move {
                let mut loaded = adapter.load(&key).await.expect("the session");
                barrier.wait().await; // all loaded
                barrier.wait().await; // the logout happened
                loaded.insert(format!("f{i}"), json!(i));
                adapter.save(&key, loaded, Duration::from_secs(600)).await;
            })
        })
        .collect();
    let (adapter_, key_) = (adapter.clone(), key.clone());
    local
        .run_until(async move {
            barrier.wait().await;
            adapter_.delete(&key_).await;
            barrier.wait().await;
            for save in saves {
                save.await.unwrap();
            }
        })
        .await;
    assert_eq!(adapter.load(&key).await, None, "no save brought it back");
}

pub async fn logout_wins_over_merged_saves<B: Backend + Clone>(b: B) {
    let store = merging(b.clone(), true);
    logout_wins(Tower015(store.clone())).await;
    logout_wins(Actix(store.clone())).await;
    assert!(
        store.ids().await.unwrap().is_empty(),
        "nothing stored under any key"
    );
}

/// Two requests of one session, each in its own task: one removes `a` (and adds `c`), the
/// other changes `a` and `b`; `remover_first` says which saves first. What is stored after.
async fn remove_and_change<A: Adapter>(adapter: &A, remover_first: bool) -> Fields {
    let start = fields(&[("user", json!("ada")), ("a", json!(1)), ("b", json!(1))]);
    let key = adapter.create(start).await;
    tokio::task::LocalSet::new()
        .run_until(async {
            let remover = Request::open(adapter, &key).await;
            let changer = Request::open(adapter, &key).await;
            let mut removed = remover.loaded.clone();
            removed.remove("a");
            removed.insert("c".into(), json!(3));
            let mut changed = changer.loaded.clone();
            changed.insert("a".into(), json!(2));
            changed.insert("b".into(), json!(2));
            let ttl = Duration::from_secs(600);
            if remover_first {
                remover.save(removed, ttl).await;
                changer.save(changed, ttl).await;
            } else {
                changer.save(changed, ttl).await;
                remover.save(removed, ttl).await;
            }
        })
        .await;
    adapter.load(&key).await.unwrap()
}

pub async fn a_field_removed_by_one_and_changed_by_another<B: Backend + Clone>(b: B) {
    let store = merging(b, true);
    let tower = Tower015(store.clone());
    let actix = Actix(store);
    // The later save wins for the field both touched; each keeps the other's other changes.
    let changed_last = fields(&[
        ("user", json!("ada")),
        ("a", json!(2)),
        ("b", json!(2)),
        ("c", json!(3)),
    ]);
    let removed_last = fields(&[("user", json!("ada")), ("b", json!(2)), ("c", json!(3))]);
    assert_eq!(remove_and_change(&tower, true).await, changed_last);
    assert_eq!(remove_and_change(&tower, false).await, removed_last);
    assert_eq!(remove_and_change(&actix, true).await, changed_last);
    assert_eq!(remove_and_change(&actix, false).await, removed_last);
}

/// A merged save sets the expiry it asks for, as a whole write would: not the one of the save
/// it merged onto.
async fn own_expiry<A: Adapter, B: Backend>(adapter: A, store: &RedisStore<B>, b: &B) {
    let key = adapter.create(fields(&[("user", json!("ada"))])).await;
    let (long_ttl, short_ttl) = (Duration::from_secs(900), Duration::from_secs(120));
    tokio::task::LocalSet::new()
        .run_until(async {
            let long = Request::open(&adapter, &key).await;
            let short = Request::open(&adapter, &key).await;
            let mut long_fields = long.loaded.clone();
            long_fields.insert("long".into(), json!(1));
            let mut short_fields = short.loaded.clone();
            short_fields.insert("short".into(), json!(1));
            long.save(long_fields, long_ttl).await;
            short.save(short_fields, short_ttl).await;
        })
        .await;
    let stored = adapter.load(&key).await.unwrap();
    assert_eq!(stored.get("long"), Some(&json!(1)), "merged");
    assert_eq!(stored.get("short"), Some(&json!(1)));
    let ids = store.ids().await.unwrap();
    let ttl = ttl_of(b, &store.keyspace().stored_key(&ids[0])).await;
    assert!(
        ttl <= short_ttl && ttl > short_ttl - Duration::from_secs(30),
        "the merged save's TTL: {ttl:?}"
    );
    store.clear().await.unwrap();
}

pub async fn a_merged_save_sets_its_own_expiry<B: Backend + Clone>(b: B) {
    let store = merging(b.clone(), true);
    own_expiry(Tower015(store.clone()), &store, &b).await;
    own_expiry(Actix(store.clone()), &store, &b).await;
}

/// A save in another task than its load has no base: it writes the record whole (merging
/// cannot apply), and a logout still wins over it.
pub async fn a_save_without_a_base_writes_whole<B: Backend + Clone>(b: B) {
    let tower = Tower015(merging(b, true));
    let key = tower.create(fields(&[("user", json!("ada"))])).await;
    let mut loaded = tower.load(&key).await.unwrap();
    let concurrent = tower.clone();
    let other_task = {
        let key = key.clone();
        tokio::spawn(async move {
            let mut other = concurrent.load(&key).await.unwrap();
            other.insert("other".into(), json!(1));
            concurrent.save(&key, other, Duration::from_secs(600)).await;
        })
    };
    other_task.await.unwrap();
    loaded.insert("mine".into(), json!(1));
    let saver = tower.clone();
    let key_ = key.clone();
    tokio::spawn(async move { saver.save(&key_, loaded, Duration::from_secs(600)).await })
        .await
        .unwrap();
    let stored = tower.load(&key).await.unwrap();
    assert_eq!(
        stored,
        fields(&[("user", json!("ada")), ("mine", json!(1))]),
        "written whole"
    );
    let loaded = tower.load(&key).await.unwrap();
    tower.delete(&key).await;
    let saver = tower.clone();
    let key_ = key.clone();
    tokio::spawn(async move { saver.save(&key_, loaded, Duration::from_secs(600)).await })
        .await
        .unwrap();
    assert_eq!(
        tower.load(&key).await,
        None,
        "logout wins without a base too"
    );
}

/// Hashed ids, encrypted values and the per-user index: every field kept, the session listed
/// once under its user, and no field name readable in what Redis holds.
pub async fn hashed_encrypted_and_indexed<B: Backend + Clone>(b: B) {
    let store = RedisStore::builder(b.clone())
        .hash_ids(IdHashing::HmacSha256([5; 32]))
        .encrypt(redis_sessions::KeyRing::new([7; 32]))
        .index_by("user")
        .merge_concurrent_saves(true)
        .build();
    assert_eq!(concurrent_fields(Tower015(store.clone())).await, REQUESTS);
    assert_eq!(concurrent_fields(Actix(store.clone())).await, REQUESTS);
    let listed = store.user_sessions("ada").await.unwrap();
    assert_eq!(listed.len(), 2, "both sessions listed once each");
    for id in store.ids().await.unwrap() {
        let raw = b
            .get(&store.keyspace().stored_key(&id))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("f31") && !text.contains("ada"), "{text}");
    }
}

macro_rules! merge_suite {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                backend_cases!($backend:
                    concurrent_saves_keep_every_field,
                    without_merging_the_race_loses_fields,
                    logout_wins_over_merged_saves,
                    a_field_removed_by_one_and_changed_by_another,
                    a_merged_save_sets_its_own_expiry,
                    a_save_without_a_base_writes_whole,
                    hashed_encrypted_and_indexed,
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
