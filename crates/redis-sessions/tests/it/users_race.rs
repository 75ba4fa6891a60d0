//! "Sign out everywhere" racing in-flight saves and logins of that user, on every backend, in
//! many rounds. Each round makes the race happen: right after the revoke has read the user's
//! sessions and before its first delete, one of them is rewritten and a new login completes
//! (the hooked backend runs both there); on top of that, saves of every session and more logins
//! run concurrently, released with the revoke by one barrier. Every round asserts:
//!
//! - none of the sessions that existed when the revoke started survives, and no in-flight save
//!   brought one back (each reads as gone once every save has returned);
//! - a racing login is either ended or was written after the revoke's last read of the index
//!   (its linearization point: a login that completed before that read started is ended);
//!   the one forced in between the read and the deletes is always ended;
//! - every surviving session is in the user's index (no live session escapes the next revoke).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::FutureExt;
use redis_sessions::{Backend, Outcome, RedisStore, Session, SessionId, StoredId};
use tokio::sync::Barrier;

use crate::hooked::Hooked;
use crate::support::id;

const FIELD: &str = "user_id";
/// Sessions the user has when the revoke starts.
const EXISTING: usize = 5;
/// Logins the concurrent task makes in a round.
const LOGINS: usize = 4;

fn of(user: &str, n: usize) -> Session {
    let mut s = Session::new();
    s.insert(FIELD, user).unwrap();
    s.insert("n", n).unwrap();
    s
}

fn indexed<B: Backend + Clone>(b: &B) -> RedisStore<B> {
    RedisStore::builder(b.clone()).index_by(FIELD).build()
}

/// Logins made during a round: the id and when its `create` returned.
type Logins = Arc<Mutex<Vec<(SessionId, Instant)>>>;

async fn login<B: Backend + Clone>(
    store: &RedisStore<B>,
    user: &str,
    logins: &Logins,
) -> SessionId {
    let id = id();
    let outcome = store.create(&id, &of(user, 0)).await.unwrap();
    assert_eq!(outcome, Outcome::Written);
    logins.lock().unwrap().push((id.clone(), Instant::now()));
    id
}

pub async fn sign_out_everywhere_racing_saves_and_logins<B: Backend + Clone>(b: B, rounds: usize) {
    let writer = indexed(&b);
    for round in 0..rounds {
        let user = format!("alice-{round}");
        let hooked = Hooked::new(b.clone());
        let revoker = indexed(&hooked);
        let mut existing = Vec::new();
        for n in 0..EXISTING {
            let id = id();
            assert!(writer
                .create(&id, &of(&user, n))
                .await
                .unwrap()
                .is_written());
            existing.push(id);
        }
        let logins: Logins = Arc::default();

        // The forced interleaving, before the revoke's first conditional delete.
        let forced: Arc<Mutex<Option<SessionId>>> = Arc::default();
        {
            let (store, user, logins) = (writer.clone(), user.clone(), Arc::clone(&logins));
            let (rewritten, forced) = (existing[EXISTING - 1].clone(), Arc::clone(&forced));
            let first = Arc::new(AtomicBool::new(true));
            hooked.before_delete(Box::new(move |_| {
                let (store, user, logins) = (store.clone(), user.clone(), Arc::clone(&logins));
                let (rewritten, forced) = (rewritten.clone(), Arc::clone(&forced));
                let first = first.swap(false, Ordering::SeqCst);
                async move {
                    if first {
                        let outcome = store.update(&rewritten, &of(&user, 100)).await.unwrap();
                        assert_eq!(outcome, Outcome::Written, "rewritten after the read");
                        *forced.lock().unwrap() = Some(login(&store, &user, &logins).await);
                    }
                }
                .boxed()
            }));
        }

        // The free-running saves and logins, released with the revoke.
        let barrier = Arc::new(Barrier::new(3));
        let stop = Arc::new(AtomicBool::new(false));
        let saves = {
            let (store, user, ids) = (writer.clone(), user.clone(), existing.clone());
            let (barrier, stop) = (Arc::clone(&barrier), Arc::clone(&stop));
            tokio::spawn(async move {
                barrier.wait().await;
                let mut n = 1000;
                while !stop.load(Ordering::SeqCst) {
                    for id in &ids {
                        n += 1;
                        // Written before the revoke's delete, or Gone after it: never back.
                        let _written_or_gone = store.update(id, &of(&user, n)).await.unwrap();
                    }
                    // The memory backend never waits: without this the loop would hold its
                    // worker, and a failing revoke's panic could not end the test.
                    tokio::task::yield_now().await;
                }
            })
        };
        let racing_logins = {
            let (store, user, logins) = (writer.clone(), user.clone(), Arc::clone(&logins));
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..LOGINS {
                    login(&store, &user, &logins).await;
                }
            })
        };
        barrier.wait().await;
        let ended = revoker.revoke_user_sessions(&user, None).await.unwrap();
        let returned = Instant::now();
        stop.store(true, Ordering::SeqCst);
        saves.await.unwrap();
        racing_logins.await.unwrap();

        let ctx = format!("round {round}: {ended} ended");
        for id in &existing {
            assert_eq!(writer.get(id).await.unwrap(), None, "{ctx}: survived");
        }
        let forced = forced.lock().unwrap().clone().expect("the hook ran");
        assert_eq!(
            writer.get(&forced).await.unwrap(),
            None,
            "{ctx}: forced login"
        );
        let reads = hooked.reads();
        let last_read = *reads.iter().filter(|t| **t < returned).max().unwrap();
        assert!(
            reads.len() >= 2,
            "{ctx}: the forced login needs a second round"
        );
        let mut survivors = HashSet::new();
        let made = logins.lock().unwrap().clone();
        for (id, created) in &made {
            if writer.get(id).await.unwrap().is_some() {
                assert!(
                    *created > last_read,
                    "{ctx}: a login completed before the revoke's last read survived"
                );
                survivors.insert(writer.keyspace().stored_id(id));
            }
        }
        let listed: HashSet<StoredId> = writer
            .user_sessions(&user)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(listed, survivors, "{ctx}: every live session is indexed");
        // The existing sessions and the forced login at least.
        assert!(ended as usize > EXISTING, "{ctx}");
    }
}

macro_rules! race_suite {
    ($($backend:ident: $rounds:expr),*) => {
        $(
            mod $backend {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sign_out_everywhere_racing_saves_and_logins() {
                    let (backend, _server) = crate::support::$backend().await;
                    super::sign_out_everywhere_racing_saves_and_logins(backend, $rounds).await;
                }
            }
        )*
    };
}

race_suite!(memory: 40, redis: 30);
#[cfg(feature = "cluster")]
race_suite!(cluster: 20);
#[cfg(feature = "sentinel")]
race_suite!(sentinel: 20);

/// Cluster: a login whose index member is written (step one) while its `SET` (step two) is
/// held at its primary; a listing then finds the member without its session and removes it as
/// stale. Step three puts it back, so the session, once live, is listed and revocable.
#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_between_a_logins_two_steps_leaves_it_indexed() {
    use crate::support::{held_then_run_in_order, Deployment};

    let (backend, cluster) = crate::support::cluster().await;
    let store = indexed(&backend);
    let index = store.keyspace().index_key("carol");
    let index_port = cluster.primary_for(&index);
    // A session on another primary than the index, so holding its SET holds nothing else.
    let id = std::iter::repeat_with(id)
        .find(|id| cluster.primary_for(&store.keyspace().key(id)) != index_port)
        .unwrap();
    let port = cluster.primary_for(&store.keyspace().key(&id));
    // The login on a client of its own (its held SET must not hold the listing's reads).
    let other = indexed(&redis_sessions::connect(&cluster.url()).await.unwrap());
    let marker = std::iter::repeat_with(|| store.keyspace().key(&crate::support::id()))
        .find(|key| cluster.primary_for(key) == port)
        .unwrap();
    let listing = store.clone();
    let (written, listed) = held_then_run_in_order(
        port,
        async move { other.create(&id, &of("carol", 1)).await.unwrap() },
        async move {
            // Runs while the login's SET is held: reads are not held by CLIENT PAUSE WRITE,
            // and the stale member's HDEL goes to the index's primary. Its one held write is
            // a no-op marker on this primary, so the helper sees two held clients.
            let seen = listing.user_sessions("carol").await.unwrap().len();
            let held = listing
                .backend()
                .pexpire(&marker, std::time::Duration::from_secs(1));
            let _missing = held.await.unwrap();
            seen
        },
    )
    .await;
    assert_eq!(written, Outcome::Written);
    assert_eq!(listed, 0, "the listing ran between the login's steps");
    let listed = store.user_sessions("carol").await.unwrap();
    assert_eq!(listed.len(), 1, "the live session is indexed again");
    assert_eq!(store.revoke_user_sessions("carol", None).await.unwrap(), 1);
}

/// Cluster: a listing finds a login's member without its session (the `SET` held at its
/// primary), and the login completes (session written, member present, so step three has
/// nothing to put back) before the listing would remove the member: the member is young
/// (`INDEX_PENDING`), so the listing leaves it, and the session is listed and revocable.
#[cfg(feature = "cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_never_removes_a_member_its_login_is_still_writing() {
    use crate::support::Deployment;
    use redis_harness::Connection;
    use std::time::Duration;

    let (backend, cluster) = crate::support::cluster().await;
    let hooked = Hooked::new(backend.clone());
    let store = indexed(&hooked);
    let index = store.keyspace().index_key("dave");
    let index_port = cluster.primary_for(&index);
    let id = std::iter::repeat_with(id)
        .find(|id| cluster.primary_for(&store.keyspace().key(id)) != index_port)
        .unwrap();
    let port = cluster.primary_for(&store.keyspace().key(&id));
    let other = indexed(&redis_sessions::connect(&cluster.url()).await.unwrap());

    let mut control = Connection::open(port).unwrap();
    let pause = control
        .command(&["CLIENT", "PAUSE", "20000", "WRITE"])
        .unwrap();
    assert_eq!(pause.text().as_deref(), Some("OK"));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let login = {
        let id = id.clone();
        tokio::spawn(async move {
            let outcome = other.create(&id, &of("dave", 1)).await.unwrap();
            let _ = done_tx.send(());
            outcome
        })
    };
    let mut control = tokio::task::spawn_blocking(move || {
        control.wait_for_blocked(1, Duration::from_secs(5)).unwrap();
        control
    })
    .await
    .unwrap();
    // Were the listing to remove the member, the login would complete first.
    let done = Arc::new(Mutex::new(Some(done_rx)));
    let removals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (done, removals) = (Arc::clone(&done), Arc::clone(&removals));
        hooked.before_remove(Box::new(move |_| {
            removals.fetch_add(1, Ordering::SeqCst);
            let rx = done.lock().unwrap().take();
            async move {
                if let Some(rx) = rx {
                    let mut c = Connection::open(port).unwrap();
                    c.command(&["CLIENT", "UNPAUSE"]).unwrap();
                    rx.await.unwrap();
                }
            }
            .boxed()
        }));
    }
    let seen = store.user_sessions("dave").await.unwrap();
    assert!(seen.is_empty(), "listed while its SET was held");
    control.command(&["CLIENT", "UNPAUSE"]).unwrap();
    assert_eq!(login.await.unwrap(), Outcome::Written);
    assert_eq!(
        removals.load(Ordering::SeqCst),
        0,
        "the young member was left"
    );
    let listed = store.user_sessions("dave").await.unwrap();
    assert_eq!(listed.len(), 1, "the live session is indexed");
    assert_eq!(store.revoke_user_sessions("dave", None).await.unwrap(), 1);
}
