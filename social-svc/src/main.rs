//! `social-svc`: serves the social gRPC service on its own (the split stack).

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
    /// File holding the deployment's internal key (64 hex digits, e.g. from
    /// `openssl rand -hex 32`); every Uchat process of one deployment reads the same one.
    #[arg(long, env = "UCHAT_INTERNAL_KEY_FILE")]
    internal_key_file: std::path::PathBuf,
    #[command(flatten)]
    metrics: ops::metrics::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Caught from now on: a SIGTERM during start-up still stops cleanly.
    let stop = ops::shutdown_signal();
    let start = service_kit::start_service(
        "social-svc",
        &cli.database_url,
        cli.listen,
        &cli.internal_key_file,
        &cli.metrics,
    )
    .await?;
    social_svc::serve(start.listener, start.db, start.key, stop).await?;
    Ok(())
}
