//! `message-svc`: serves the message gRPC service on its own (the split stack; scale it out).

use clap::Parser;

/// The service allocates and frees many small buffers per message on several threads;
/// mimalloc measured faster than the system allocator in the throughput benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    config: message_svc::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let start = service_kit::start_service(
        "message-svc",
        &cli.database_url,
        cli.listen,
        &cli.internal_key_file,
    )
    .await?;
    message_svc::serve(
        start.listener,
        start.db,
        start.key,
        cli.config,
        service_kit::shutdown_signal(),
    )
    .await?;
    Ok(())
}
