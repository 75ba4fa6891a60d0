//! `demo-actix`: the demo's JSON API on actix-web + actix-session, on redis-sessions.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = demo::Config::parse();
    actix_web::rt::System::new().block_on(async move {
        let listener = std::net::TcpListener::bind(config.listen)?;
        // The first line says which backend the store is on; the address comes after it.
        demo::run_actix(listener, config, async {
            let _ = actix_web::rt::signal::ctrl_c().await;
        })
        .await
    })
}
