//! account-svc: users, their end-to-end certificates, sessions and gateway leases.
//!
//! Layers: [`rpc`] decodes a call and maps errors (in [`error`]), [`logic`] holds the pure
//! rules (what a valid registration is), [`store`] the database access, [`password`] argon2id
//! hashing off the async threads, [`keys`] the stretch parameters and wrapped private keys,
//! [`throttle`] the growing delays after wrong passwords. It writes `users`, `sessions` and `gateways` only; it reads
//! `friends` (social-svc's) to tell a user's friends when they come and go.

pub mod error;
pub mod keys;
pub mod logic;
pub mod password;
pub mod rpc;
pub mod store;
pub mod throttle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use proto::account::account_server::AccountServer;
use proto::internal::{InternalKey, Require};
use sea_orm::DatabaseConnection;
use service_kit::push::Pusher;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

pub use crate::error::Error;
pub use crate::rpc::AccountRpc;

/// account-svc's settings, from flags or environment.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "account")]
pub struct Config {
    /// argon2id memory cost in KiB. Default 19456 (19 MiB) with 2 iterations and 1 lane:
    /// OWASP's recommended minimum for argon2id.
    #[arg(long, env = "UCHAT_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// argon2id iterations. Default 2.
    #[arg(long, env = "UCHAT_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// argon2id lanes. Default 1.
    #[arg(long, env = "UCHAT_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
    /// Most password hashes computed at once; further logins wait. Default 2 (one per core
    /// here): more only adds memory, not throughput.
    #[arg(long, env = "UCHAT_MAX_CONCURRENT_HASHES", default_value_t = 2)]
    pub max_concurrent_hashes: usize,
    /// Length of a gateway's lease in milliseconds. Default 15000; gateways renew every third
    /// of it.
    #[arg(long, env = "UCHAT_GATEWAY_LEASE_MS", default_value_t = 15_000)]
    pub lease_ms: u64,
    /// How often expired leases are swept, in milliseconds. Default 5000.
    #[arg(long, env = "UCHAT_LEASE_SWEEP_MS", default_value_t = 5_000)]
    pub lease_sweep_ms: u64,
    /// Memory in KiB of the argon2id stretch clients run on the password, for new accounts and
    /// new passwords (existing ones keep theirs). Default 65536 (64 MiB); clients refuse less
    /// than 19456.
    #[arg(long, env = "UCHAT_CLIENT_KDF_MEMORY_KIB", default_value_t = protocol::password::DEFAULT_KDF.memory_kib)]
    pub client_kdf_memory_kib: u32,
    /// Passes of the clients' stretch. Default 3.
    #[arg(long, env = "UCHAT_CLIENT_KDF_ITERATIONS", default_value_t = protocol::password::DEFAULT_KDF.iterations)]
    pub client_kdf_iterations: u32,
    /// Lanes of the clients' stretch. Default 1.
    #[arg(long, env = "UCHAT_CLIENT_KDF_PARALLELISM", default_value_t = protocol::password::DEFAULT_KDF.parallelism)]
    pub client_kdf_parallelism: u32,
}

impl Config {
    /// The stretch clients are told to run for new accounts and passwords.
    pub fn client_kdf(&self) -> protocol::password::KdfCost {
        protocol::password::KdfCost {
            memory_kib: self.client_kdf_memory_kib,
            iterations: self.client_kdf_iterations,
            parallelism: self.client_kdf_parallelism,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 2,
            lease_ms: 15_000,
            lease_sweep_ms: 5_000,
            client_kdf_memory_kib: protocol::password::DEFAULT_KDF.memory_kib,
            client_kdf_iterations: protocol::password::DEFAULT_KDF.iterations,
            client_kdf_parallelism: protocol::password::DEFAULT_KDF.parallelism,
        }
    }
}

/// The tonic service, refusing calls without the internal key, for a router that serves
/// several services.
pub async fn service(
    db: DatabaseConnection,
    config: Arc<Config>,
    push: Pusher,
    key: &InternalKey,
) -> Result<InterceptedService<AccountServer<AccountRpc>, Require>, Error> {
    let secret = keys::prelogin_secret(&db).await?;
    Ok(AccountServer::with_interceptor(
        AccountRpc::new(db, config, push, secret)?,
        key.require(),
    ))
}

/// Serves account-svc on `listener` until `shutdown` resolves, sweeping expired gateway
/// leases meanwhile. Callers, and the gateways it pushes to, authenticate with `key`.
pub async fn serve(
    listener: TcpListener,
    db: DatabaseConnection,
    key: InternalKey,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let push = Pusher::new(key.clone());
    let (service, sweeper) = start(db.clone(), config, push, &key).await?;
    let router = service_kit::server().add_service(service);
    let served = service_kit::serve_router(router, listener, &db, shutdown).await;
    sweeper.abort();
    Ok(served?)
}

/// account-svc's service, with the lease sweeper it needs running beside it (abort the
/// handle when the service stops): what [`serve`] serves, for a caller that also calls it in
/// process.
pub async fn start(
    db: DatabaseConnection,
    config: Config,
    push: Pusher,
    key: &InternalKey,
) -> Result<
    (
        InterceptedService<AccountServer<AccountRpc>, Require>,
        JoinHandle<()>,
    ),
    Error,
> {
    let config = Arc::new(config);
    let service = service(db.clone(), config.clone(), push.clone(), key).await?;
    let sweeper = tokio::spawn(sweep_leases(db, config, push));
    Ok((service, sweeper))
}

/// Every `lease_sweep_ms`, marks the sessions of gateways whose lease expired offline and tells
/// their friends. Runs until aborted.
pub async fn sweep_leases(db: DatabaseConnection, config: Arc<Config>, push: Pusher) {
    let mut tick = tokio::time::interval(Duration::from_millis(config.lease_sweep_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store::expire_gateways(&db, service_kit::now_ms()).await {
            Ok(users) => {
                for user in users {
                    tracing::info!(user, "logout (gateway lease expired)");
                    rpc::announce_offline(&db, &push, user).await;
                }
            }
            Err(err) => tracing::warn!(%err, "lease sweep failed"),
        }
    }
}
