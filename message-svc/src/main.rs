//! `message-svc`: serves the message gRPC service on its own (the split stack; scale it out).

use anyhow::Context;
use clap::Parser;

/// Uchat's message service: storage, fan-out, sync and history.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address to serve gRPC on.
    #[arg(long, env = "UCHAT_MESSAGE_LISTEN", default_value = "127.0.0.1:7003")]
    listen: std::net::SocketAddr,
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`. The schema must
    /// be migrated (`migrate up`).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(flatten)]
    config: message_svc::Config,
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
    tracing::info!(addr = %cli.listen, "message-svc listening");
    message_svc::serve(listener, db, cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
