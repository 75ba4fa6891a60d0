//! `demo`: the axum + tower-sessions web app on redis-sessions. See `demo --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_sessions=warn".into()),
        )
        .init();
    let config = demo::Config::parse();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    // The first line says which backend the store is on; the address comes after it.
    demo::run(listener, config, demo::shutdown_signal()).await
}
