//! `gateway`: Uchat's gateway on its own (the split stack). Clients connect here; the services
//! are reached over gRPC and push back to `--push-listen`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use protocol::ServerIdentity;

/// mimalloc, set to give freed memory back at once (see the `allocator` crate).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

/// Uchat's gateway: terminates client connections and forwards to the services.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address clients connect to.
    #[arg(long, env = "UCHAT_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Address the services push to (gRPC).
    #[arg(long, env = "UCHAT_PUSH_LISTEN", default_value = "127.0.0.1:7010")]
    push_listen: SocketAddr,
    /// The push address the services should use, e.g. `gateway-2:7010`. By default the
    /// listening address, or, when listening on every interface (`0.0.0.0`, as in a
    /// container), this host's address on the route to account-svc, so replicas of a scaled
    /// gateway each advertise their own.
    #[arg(long, env = "UCHAT_PUSH_ADVERTISE")]
    push_advertise: Option<String>,
    /// account-svc's URL.
    #[arg(
        long,
        env = "UCHAT_ACCOUNT_URL",
        default_value = "http://127.0.0.1:7001"
    )]
    account_url: String,
    /// social-svc's URL.
    #[arg(
        long,
        env = "UCHAT_SOCIAL_URL",
        default_value = "http://127.0.0.1:7002"
    )]
    social_url: String,
    /// message-svc's URL.
    #[arg(
        long,
        env = "UCHAT_MESSAGE_URL",
        default_value = "http://127.0.0.1:7003"
    )]
    message_url: String,
    /// How often message-svc's name is resolved again, in milliseconds, so replicas that
    /// come and go are balanced over without a restart. Default 5000.
    #[arg(long, env = "UCHAT_RESOLVE_EVERY_MS", default_value_t = gateway::DEFAULT_RESOLVE_EVERY_MS)]
    resolve_every_ms: u64,
    /// A file in the /etc/hosts format listing message-svc's replicas (one line per
    /// address), read again at every resolution; names it does not list go to DNS.
    #[arg(long, env = "UCHAT_HOSTS_FILE")]
    hosts_file: Option<PathBuf>,
    /// The server's long-term key (created with mode 0600 on first start). Every gateway of
    /// one deployment uses the same key, so clients see one server.
    #[arg(
        long,
        env = "UCHAT_SERVER_KEY",
        default_value = "uchat-data/server.key"
    )]
    server_key: PathBuf,
    /// The server's name in its certificate (used when the key is created).
    #[arg(long, env = "UCHAT_SERVER_NAME", default_value = "uchat")]
    server_name: String,
    /// File holding the deployment's internal key (64 hex digits, e.g. from
    /// `openssl rand -hex 32`); every Uchat process of one deployment reads the same one.
    #[arg(long, env = "UCHAT_INTERNAL_KEY_FILE")]
    internal_key_file: PathBuf,
    #[command(flatten)]
    metrics: ops::metrics::Args,
    #[command(flatten)]
    config: gateway::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    allocator::return_freed_memory_promptly();
    let cli = Cli::parse();
    // Caught from now on: a SIGTERM during start-up still stops cleanly.
    let stop = ops::shutdown_signal();
    ops::init_logging().map_err(anyhow::Error::msg)?;
    cli.metrics.serve()?;
    let (identity, created) =
        ServerIdentity::load_or_generate(&cli.server_key, &cli.server_name)
            .with_context(|| format!("server key {}", cli.server_key.display()))?;
    if created {
        tracing::info!(path = %cli.server_key.display(), "created the server key");
    }
    let push = gateway::bind(cli.push_listen).await?;
    let push_advertise =
        gateway::lease::push_address(push.local_addr()?, cli.push_advertise, &cli.account_url)
            .await?;
    let listeners = gateway::Listeners {
        clients: gateway::bind_with_backlog(cli.listen, cli.config.listen_backlog)?,
        push,
        push_advertise: Some(push_advertise),
    };
    println!(
        "gateway listening on {} (server fingerprint {})",
        listeners.clients.local_addr()?,
        identity.fingerprint()
    );
    let key = proto::internal::InternalKey::load(&cli.internal_key_file)?;
    let resolver = match cli.hosts_file {
        Some(path) => gateway::discovery::Resolver::File(gateway::discovery::HostsFile(path)),
        None => gateway::discovery::Resolver::Dns,
    };
    let services = gateway::Services::connect_with(
        &gateway::ServiceUrls {
            account: cli.account_url,
            social: cli.social_url,
            message: cli.message_url,
            resolve_every: std::time::Duration::from_millis(cli.resolve_every_ms.max(1)),
        },
        key,
        resolver,
    )?;
    gateway::serve(listeners, Arc::new(identity), services, cli.config, stop).await
}
