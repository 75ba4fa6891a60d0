//! A tour of the store's own API (no web framework) on a real Redis:
//!
//! ```sh
//! redis-server --port 6379 --save ''        # any Redis 6.2+ will do; this one keeps nothing
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p redis-sessions --example quickstart
//! ```
//!
//! It writes under the prefix `quickstart:` and clears it at the end. For a web app see the
//! `axum` and `actix` examples.

use std::time::Duration;

use redis_sessions::{KeyTtl, Outcome, RedisBackend, RedisStore, Session, SessionId};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = RedisStore::builder(RedisBackend::connect(&url).await?)
        .prefix("quickstart:")
        .ttl(Duration::from_secs(600))
        .build();

    let id = SessionId::generate()?;
    let mut session = Session::new();
    session.insert("user", "ada")?;
    session.insert("counter", 1)?;
    println!(
        "create           -> {:?}",
        store.create(&id, &session).await?
    );
    println!(
        "create again     -> {:?} (an id collision is never an overwrite)",
        store.create(&id, &session).await?
    );

    let loaded = store.get(&id).await?.ok_or("session vanished")?;
    println!(
        "get              -> user={:?}",
        loaded.get::<String>("user")?
    );
    if let KeyTtl::Expires(ttl) = store.ttl(&id).await? {
        println!("ttl              -> {}s", ttl.as_secs());
    }
    println!("touch            -> {:?}", store.touch(&id, &loaded).await?);
    println!("length           -> {}", store.length().await?);

    println!("destroy          -> {}", store.destroy(&id).await?);
    let outcome = store.update(&id, &loaded).await?;
    assert_eq!(outcome, Outcome::Gone);
    println!("update after it  -> {outcome:?} (logout wins: nothing resurrected)");
    println!("clear            -> {} deleted", store.clear().await?);
    Ok(())
}
