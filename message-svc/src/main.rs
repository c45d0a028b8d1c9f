//! `message-svc`: serves the message gRPC service on its own (the split stack; scale it out).

use clap::Parser;

/// mimalloc, set to give freed memory back at once (see the `allocator` crate).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

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
    /// File holding the deployment's internal key (64 hex digits, e.g. from
    /// `openssl rand -hex 32`); every Uchat process of one deployment reads the same one.
    #[arg(long, env = "UCHAT_INTERNAL_KEY_FILE")]
    internal_key_file: std::path::PathBuf,
    #[command(flatten)]
    metrics: ops::metrics::Args,
    #[command(flatten)]
    config: message_svc::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    allocator::return_freed_memory_promptly();
    let cli = Cli::parse();
    // Caught from now on: a SIGTERM during start-up still stops cleanly.
    let stop = ops::shutdown_signal();
    let start = service_kit::start_service(
        "message-svc",
        &cli.database_url,
        cli.listen,
        &cli.internal_key_file,
        &cli.metrics,
    )
    .await?;
    message_svc::serve(start.listener, start.db, start.key, cli.config, stop).await?;
    Ok(())
}
