//! `social-svc`: serves the social gRPC service on its own (the split stack).

use anyhow::Context;
use clap::Parser;

/// Uchat's social service: friends, friend requests and groups.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address to serve gRPC on.
    #[arg(long, env = "UCHAT_SOCIAL_LISTEN", default_value = "127.0.0.1:7002")]
    listen: std::net::SocketAddr,
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`. The schema must
    /// be migrated (`migrate up`).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::init_tracing();
    let cli = Cli::parse();
    let db = service_kit::db::connect(&cli.database_url)
        .await
        .context("cannot connect to the database")?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    tracing::info!(addr = %cli.listen, "social-svc listening");
    social_svc::serve(listener, db, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
