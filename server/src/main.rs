//! `uchat-server`: the whole of Uchat in one process, on an embedded SQLite file.
//!
//! ```text
//! uchat-server                 run (data in ./uchat-data, clients on 127.0.0.1:7878)
//! uchat-server online          who is online, and from where
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use proto::account::ListOnlineRequest;

/// mimalloc, set to give freed memory back at once (see the `allocator` crate).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

/// Uchat: a self-hosted, end-to-end encrypted messenger. With no command, runs the server:
/// migrations, the account, social and message services and the gateway, in one process.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Where the database and the server key live; created on first start.
    #[arg(
        long,
        env = "UCHAT_DATA_DIR",
        default_value = "uchat-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Address clients connect to. Use 0.0.0.0:7878 to accept clients from other machines.
    #[arg(long, env = "UCHAT_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// A database URL to use instead of the SQLite file in the data directory
    /// (`postgres://user:password@host/db`).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The server's name in its certificate (used when the key is first created).
    #[arg(long, env = "UCHAT_SERVER_NAME", default_value = "uchat")]
    server_name: String,
    #[command(flatten)]
    metrics: ops::metrics::Args,
    #[command(flatten, next_help_heading = "Accounts")]
    account: account_svc::Config,
    #[command(flatten, next_help_heading = "Messages")]
    message: message_svc::Config,
    #[command(flatten, next_help_heading = "Connections")]
    gateway: gateway::Config,
}

#[derive(Subcommand)]
enum Command {
    /// Lists who is online and from which address (asks the running server).
    Online,
    /// Creates a split deployment's keys in the data directory, if they are missing: the
    /// server key every gateway shares and the internal key every process reads. Prints the
    /// server's fingerprint. Run once (the compose file does), then point `--server-key` and
    /// `--internal-key-file` at the files.
    Keys,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    allocator::return_freed_memory_promptly();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Online) => online(&cli.data_dir).await,
        Some(Command::Keys) => make_keys(&cli.data_dir, &cli.server_name),
        None => {
            ops::init_logging().map_err(anyhow::Error::msg)?;
            run(cli).await
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Caught from now on: a SIGTERM during start-up still stops cleanly.
    let stop = ops::shutdown_signal();
    cli.metrics.serve()?;
    let options = server::Options {
        data_dir: cli.data_dir.clone(),
        listen: cli.listen,
        database_url: cli.database_url,
        server_name: cli.server_name,
        account: cli.account,
        message: cli.message,
        gateway: cli.gateway,
    };
    let mut running = server::start(options).await?;
    if running.key_created {
        println!("Created a server key in {}", cli.data_dir.display());
    }
    println!("Uchat server listening on {}", running.client_addr);
    println!("Server fingerprint: {}", running.fingerprint);
    println!(
        "Data: {}   (Ctrl-C stops; `uchat-server online` lists who is online)",
        cli.data_dir.display()
    );
    tokio::select! {
        result = running.wait() => return result,
        () = stop => {}
    }
    println!("Stopping: finishing open requests…");
    running.stop().await
}

fn make_keys(dir: &std::path::Path, server_name: &str) -> anyhow::Result<()> {
    let keys = server::keys(dir, server_name)?;
    let verb = if keys.server_key_created {
        "Created"
    } else {
        "Found"
    };
    println!(
        "{verb} the deployment's keys in {}: {} and {}",
        dir.display(),
        server::SERVER_KEY_FILE,
        server::INTERNAL_KEY_FILE
    );
    println!("Server fingerprint: {}", keys.identity.fingerprint());
    Ok(())
}

async fn online(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut account = server::admin_client(data_dir).await?;
    let sessions = account
        .list_online(ListOnlineRequest {})
        .await
        .context("cannot list who is online")?
        .into_inner()
        .sessions;
    if sessions.is_empty() {
        println!("Nobody is online.");
        return Ok(());
    }
    println!("{:<10} {:<24} {:<10}", "USER", "FROM", "SINCE");
    let now = service_kit::now_ms();
    for session in sessions {
        let name = session.user.map(|u| u.username).unwrap_or_default();
        let from = session
            .peer
            .map(|p| format!("{}:{}", p.ip, p.port))
            .unwrap_or_default();
        let minutes = (now - i64::try_from(session.since).unwrap_or(now)).max(0) / 60_000;
        println!("{name:<10} {from:<24} {minutes} min ago");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_well_formed_and_unique() {
        super::Cli::command().debug_assert();
    }
}
