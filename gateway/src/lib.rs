//! Uchat's gateway: terminates client connections (our encrypted protocol over TCP) and
//! forwards requests to the services over gRPC; receives the services' pushes and hands them
//! to the sessions it holds. It never touches the database.
//!
//! Layers: [`session`] runs one connection (handshake, the request loop keeping its state, its
//! writer); [`handlers`] holds one function per request and the `dispatch` that routes them;
//! [`hub`] maps users to the sessions held here; [`push`] is the gRPC
//! server the services push to; [`sends`] coalesces sends into `SendBatch` calls; [`limits`]
//! holds the rate limits; [`convert`] maps between protobuf and protocol types and errors.

pub mod budget;
pub mod convert;
pub mod discovery;
pub mod handlers;
pub mod hub;
pub mod lease;
pub mod limits;
pub mod push;
pub mod retry;
pub mod sends;
pub mod session;
pub mod telemetry;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use proto::account::account_client::AccountClient;
use proto::gateway::push_server::PushServer;
use proto::internal::{Authenticated, InternalKey, Require};
use proto::message::message_client::MessageClient;
use proto::social::social_client::SocialClient;
use protocol::{EphemeralPool, ServerIdentity};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

pub use crate::hub::Hub;
use crate::limits::{Limiter, Rate};
use crate::sends::SendQueue;

/// Ephemeral DH key pairs computed ahead of handshakes.
pub const EPHEMERAL_POOL: usize = 64;

/// Logouts the gateway records with account-svc at once. When a crowd leaves together (a
/// network cut, the end of a working day), every session's logout would otherwise be one
/// call in flight, each holding its request and answer buffers while it waits for the
/// database's one writer: 19,000 at once added about 300 MiB to the server for seconds, and
/// left it fragmented. The rest wait in their own sessions' tasks, which they hold anyway;
/// the database records them no slower.
pub const LOGOUTS_IN_FLIGHT: usize = 32;

/// Longest a graceful shutdown waits for sessions to finish their requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Most permits a tokio semaphore or channel can hold; limits from flags are clamped to it.
const MAX_PERMITS: usize = Semaphore::MAX_PERMITS;

/// Longest a connection to a service may take to open.
pub const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (out of file descriptors and the like), instead of spinning.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Registrations and logins one IP address may make at once before the rate applies.
pub const AUTH_BURST: u32 = 10;

/// Friend requests one user may make at once.
pub const FRIEND_REQUEST_BURST: u32 = 10;

/// Searches one user may make at once.
pub const SEARCH_BURST: u32 = 20;

/// Messages one user may send at once.
pub const MESSAGE_BURST: u32 = 200;

/// Largest frame accepted before login: a login or registration is well under 1 KiB, so a
/// connection that has proved nothing cannot make the gateway buffer a 1 MiB frame.
pub const PRE_LOGIN_MAX_FRAME: usize = 16 * 1024;

/// Why sessions are closed when the gateway stops (logged; clients reconnect).
pub const SHUTTING_DOWN: &str = "the server is shutting down; reconnect shortly";

/// The gateway's settings, from flags or environment.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "connections")]
pub struct Config {
    /// This gateway's id among gateways (sessions record it). Default: random.
    #[arg(long, env = "UCHAT_GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// Most client connections at once. Default 10000.
    #[arg(long, env = "UCHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most client connections from one IP address. Default 256.
    #[arg(long, env = "UCHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Longest a handshake may take, in milliseconds. Default 10000.
    #[arg(long, env = "UCHAT_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,
    /// A connection that sends nothing (not even a ping) for this long is closed, in
    /// milliseconds. Default 60000.
    #[arg(long, env = "UCHAT_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// A connection not logged in this long after it was accepted is closed, in
    /// milliseconds (pings do not extend it). Default 10000.
    #[arg(long, env = "UCHAT_LOGIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub login_timeout_ms: u64,
    /// Most connections not yet logged in at once, so connections that never log in cannot
    /// take the slots logged-in users need. Default 2500 (a quarter of the default cap).
    #[arg(long, env = "UCHAT_MAX_UNAUTHENTICATED", default_value_t = 2_500)]
    pub max_unauthenticated: usize,
    /// Handshakes computing at once (the rest wait, within the handshake timeout).
    /// Default 0: one per core.
    #[arg(long, env = "UCHAT_HANDSHAKE_CONCURRENCY", default_value_t = 0)]
    pub handshake_concurrency: usize,
    /// The client listener's backlog: connections the kernel holds before they are accepted.
    /// Default 1024.
    #[arg(long, env = "UCHAT_LISTEN_BACKLOG", default_value_t = 1024)]
    pub listen_backlog: u32,
    /// Messages waiting to be written to one client; a client that falls this far behind is
    /// disconnected (its messages stay stored). Default 1024.
    #[arg(long, env = "UCHAT_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Bytes waiting to be written to one client (envelopes and file chunks counted in
    /// full); past it the client is disconnected like one past `--outbound-queue`.
    /// Default 4194304 (4 MiB).
    #[arg(long, env = "UCHAT_OUTBOUND_MAX_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub outbound_max_bytes: usize,
    /// Requests of one connection handled at once (more wait to be read). Default 16.
    #[arg(long, env = "UCHAT_MAX_IN_FLIGHT", default_value_t = 16)]
    pub max_in_flight: usize,
    /// Longest a call to a service may take, in milliseconds. Default 15000.
    #[arg(long, env = "UCHAT_REQUEST_TIMEOUT_MS", default_value_t = 15_000)]
    pub request_timeout_ms: u64,
    /// Largest frame accepted or sent, in bytes. Default 1048576 (1 MiB).
    #[arg(long, env = "UCHAT_MAX_FRAME_LEN", default_value_t = protocol::frame::DEFAULT_MAX_FRAME_LEN)]
    pub max_frame_len: usize,
    /// Most sends coalesced into one call to message-svc. Default 256.
    #[arg(long, env = "UCHAT_COALESCE_MAX", default_value_t = 256)]
    pub coalesce_max: usize,
    /// Registrations and logins per minute from one IP address (burst of 10). Default 30.
    #[arg(long, env = "UCHAT_AUTH_PER_MINUTE", default_value_t = 30)]
    pub auth_per_minute: u32,
    /// Friend requests per minute of one user (burst of 10). Default 20.
    #[arg(long, env = "UCHAT_FRIEND_REQUESTS_PER_MINUTE", default_value_t = 20)]
    pub friend_requests_per_minute: u32,
    /// Searches per minute of one user (burst of 20). Default 60.
    #[arg(long, env = "UCHAT_SEARCHES_PER_MINUTE", default_value_t = 60)]
    pub searches_per_minute: u32,
    /// Messages per minute of one session (burst of 200). Default 1200.
    #[arg(long, env = "UCHAT_MESSAGES_PER_MINUTE", default_value_t = 1200)]
    pub messages_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gateway_id: None,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            login_timeout_ms: 10_000,
            max_unauthenticated: 2_500,
            handshake_concurrency: 0,
            listen_backlog: 1024,
            outbound_queue: 1024,
            outbound_max_bytes: 4 * 1024 * 1024,
            max_in_flight: 16,
            request_timeout_ms: 15_000,
            max_frame_len: protocol::frame::DEFAULT_MAX_FRAME_LEN,
            coalesce_max: 256,
            auth_per_minute: 30,
            friend_requests_per_minute: 20,
            searches_per_minute: 60,
            messages_per_minute: 1200,
        }
    }
}

/// Where the services are.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    /// account-svc, e.g. `http://127.0.0.1:7001`.
    pub account: String,
    /// social-svc.
    pub social: String,
    /// message-svc: a name that may stand for several replicas (see [`discovery`]).
    pub message: String,
    /// How often message-svc's name is resolved again.
    pub resolve_every: Duration,
}

/// How often a service name is resolved again by default: `--resolve-every-ms`.
pub const DEFAULT_RESOLVE_EVERY_MS: u64 = 5_000;

/// gRPC clients of the services (cheap to clone: one HTTP/2 connection each, made lazily; or,
/// in `uchat-server`, calls into the services of the same process, `proto::transport`), and
/// the internal key their calls carry and the push server requires.
#[derive(Debug, Clone)]
pub struct Services {
    /// account-svc.
    pub account: AccountClient<Authenticated>,
    /// social-svc.
    pub social: SocialClient<Authenticated>,
    /// message-svc.
    pub message: MessageClient<Authenticated>,
    /// The deployment's internal key.
    pub key: InternalKey,
}

impl Services {
    /// Clients for `urls`; they connect on first use and reconnect by themselves. Calls to
    /// message-svc are balanced over every address its name resolves to, resolved again
    /// every `urls.resolve_every` (must be called within a tokio runtime).
    pub fn connect_lazy(urls: &ServiceUrls, key: InternalKey) -> anyhow::Result<Self> {
        Self::connect_with(urls, key, discovery::Dns)
    }

    /// [`Services::connect_lazy`] with message-svc's name resolved by `resolver`.
    pub fn connect_with(
        urls: &ServiceUrls,
        key: InternalKey,
        resolver: impl discovery::Resolve,
    ) -> anyhow::Result<Self> {
        let channel = |url: &str| -> anyhow::Result<Authenticated> {
            let channel = configure(
                Endpoint::from_shared(url.to_owned())
                    .with_context(|| format!("bad service address {url}"))?,
            )
            .connect_lazy();
            Ok(key.authenticate(channel))
        };
        let message = discovery::balanced(&urls.message, urls.resolve_every, resolver, configure)?;
        Ok(Self {
            account: AccountClient::new(channel(&urls.account)?),
            social: SocialClient::new(channel(&urls.social)?),
            message: MessageClient::new(key.authenticate(message)),
            key,
        })
    }
}

/// How the gateway connects to a service.
fn configure(endpoint: Endpoint) -> Endpoint {
    endpoint
        .connect_timeout(SERVICE_CONNECT_TIMEOUT)
        .tcp_nodelay(true)
}

/// The rate limits, by kind.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Registrations and logins, by IP address.
    pub auth: Limiter<IpAddr>,
    /// Friend requests, by user.
    pub friend_requests: Limiter<u64>,
    /// Searches, by user.
    pub searches: Limiter<u64>,
    /// Messages, by user.
    pub messages: Limiter<u64>,
}

impl Limits {
    fn new(config: &Config) -> Self {
        Self {
            auth: Limiter::new(Rate {
                burst: AUTH_BURST,
                per_minute: config.auth_per_minute,
            }),
            friend_requests: Limiter::new(Rate {
                burst: FRIEND_REQUEST_BURST,
                per_minute: config.friend_requests_per_minute,
            }),
            searches: Limiter::new(Rate {
                burst: SEARCH_BURST,
                per_minute: config.searches_per_minute,
            }),
            messages: Limiter::new(Rate {
                burst: MESSAGE_BURST,
                per_minute: config.messages_per_minute,
            }),
        }
    }
}

/// What every session of the gateway shares.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// This gateway's id.
    pub gateway_id: String,
    /// The server's long-term key and certificate.
    pub identity: Arc<ServerIdentity>,
    /// Ephemeral key pairs for handshakes.
    pub pool: Arc<EphemeralPool>,
    /// The services.
    pub services: Services,
    /// The sessions held here.
    pub hub: Hub,
    /// Coalesced sends.
    pub sends: SendQueue,
    /// Rate limits.
    pub limits: Limits,
    /// Becomes true when the gateway stops: sessions finish what they started and close.
    pub stopping: watch::Receiver<bool>,
    /// Permits to compute a handshake.
    pub handshakes: Semaphore,
    /// Slots of connections not yet logged in.
    pub unauthenticated: Arc<Semaphore>,
    /// Turns to record a logout ([`LOGOUTS_IN_FLIGHT`]).
    pub logouts: Semaphore,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Shared {
    /// The timeout of one service call.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    /// Counts a connection from `ip`; `None` when that address has too many.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.config.max_connections_per_ip {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            shared: self.clone(),
            ip,
        })
    }
}

/// A connection's place in the per-IP count, given back when dropped.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self
            .shared
            .per_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A gateway's listening sockets: clients, and the push server the services call.
#[derive(Debug)]
pub struct Listeners {
    /// Where clients connect.
    pub clients: TcpListener,
    /// Where services push.
    pub push: TcpListener,
    /// The push address services should use, `host:port` (the push listener's address by
    /// default).
    pub push_advertise: Option<String>,
}

/// Runs the gateway until `shutdown` resolves, then drains: no new connections, sessions
/// finish the requests they started, are told why and closed.
pub async fn serve(
    listeners: Listeners,
    identity: Arc<ServerIdentity>,
    services: Services,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_with_hub(
        listeners,
        identity,
        services,
        config,
        Hub::default(),
        shutdown,
    )
    .await
}

/// The gateway's Push service over `hub`'s sessions, refusing calls without `key`: what its
/// push listener serves, and what services in the same process call directly (`uchat-server`).
pub fn push_service(
    hub: Hub,
    key: &InternalKey,
) -> InterceptedService<PushServer<push::PushService>, Require> {
    InterceptedService::new(
        PushServer::new(push::PushService::new(hub))
            .max_decoding_message_size(proto::PUSH_MESSAGE_MAX_BYTES),
        key.require(),
    )
}

/// [`serve`], holding its sessions in `hub`: the one [`push_service`] was made over.
pub async fn serve_with_hub(
    listeners: Listeners,
    identity: Arc<ServerIdentity>,
    services: Services,
    config: Config,
    hub: Hub,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let gateway_id = config
        .gateway_id
        .clone()
        .unwrap_or_else(|| format!("gw-{:016x}", session::random_u63()));
    telemetry::register();
    let pool = Arc::new(EphemeralPool::new(EPHEMERAL_POOL).context("DH key pool")?);
    let (stop, stopping) = watch::channel(false);
    let sends = SendQueue::start(
        services.message.clone(),
        config.coalesce_max,
        Duration::from_millis(config.request_timeout_ms),
    );
    let push_addr = match listeners.push_advertise {
        Some(addr) => addr,
        None => listeners.push.local_addr()?.to_string(),
    };
    let (config_handshakes, unauthenticated) =
        (config.handshake_concurrency, config.max_unauthenticated);
    let shared = Arc::new(Shared {
        limits: Limits::new(&config),
        config,
        gateway_id,
        identity,
        pool,
        services,
        hub: hub.clone(),
        sends,
        stopping: stopping.clone(),
        handshakes: Semaphore::new(match config_handshakes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n.min(MAX_PERMITS),
        }),
        unauthenticated: Arc::new(Semaphore::new(unauthenticated.clamp(1, MAX_PERMITS))),
        logouts: Semaphore::new(LOGOUTS_IN_FLIGHT),
        per_ip: Mutex::new(HashMap::new()),
    });

    let mut push_stopping = stopping.clone();
    // Not serving until registered: a health check must not route clients here before then.
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let push_server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(ops::metrics::RpcMetricsLayer)
            .add_service(push_service(hub.clone(), &shared.services.key))
            .add_service(health_service)
            .serve_with_incoming_shutdown(ops::grpc::incoming(listeners.push), async move {
                let _ = push_stopping.wait_for(|s| *s).await;
            }),
    );
    // A stop asked for while account-svc is still out of reach ends the wait at once.
    tokio::pin!(shutdown);
    let lease = tokio::select! {
        lease = lease::register(&shared, &push_addr) => lease?,
        () = &mut shutdown => {
            tracing::info!("gateway stopping before it registered");
            stop.send_replace(true);
            let _ = push_server.await;
            return Ok(());
        }
    };
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let renewer = tokio::spawn(lease::renew(
        shared.clone(),
        push_addr,
        lease,
        health.clone(),
    ));

    let connections = Arc::new(Semaphore::new(
        shared.config.max_connections.clamp(1, MAX_PERMITS),
    ));
    let mut sessions = JoinSet::new();
    let mut refusals = limits::RefusalLog::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listeners.clients.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            // A session's task keeps its memory until it is joined: join each as it ends,
            // not only when the next client arrives (after a crowd leaves, none may).
            // (A panic was already reported by the panic hook.)
            Some(_ended) = sessions.join_next() => continue,
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refusals.refused(peer, "too many connections");
            continue;
        };
        let Some(slot) = shared.admit(peer.ip()) else {
            refusals.refused(peer, "too many from this address");
            continue;
        };
        let Ok(pending) = shared.unauthenticated.clone().try_acquire_owned() else {
            refusals.refused(peer, "too many connections not logged in");
            continue;
        };
        let shared = shared.clone();
        let open = telemetry::ConnectionOpen::accepted();
        sessions.spawn(async move {
            session::run(shared, stream, peer, pending).await;
            drop((slot, permit, open));
        });
    }

    tracing::info!(sessions = hub.len(), "gateway stopping; draining sessions");
    renewer.abort();
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    stop.send_replace(true);
    for session in hub.all() {
        session.outbound.end(SHUTTING_DOWN);
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = sessions.len(),
            "sessions still open after the drain timeout"
        );
        sessions.abort_all();
    }
    let _ = push_server.await;
    Ok(())
}

/// Binds a listener with the default backlog, with the address in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    bind_with_backlog(addr, Config::default().listen_backlog)
}

/// Binds a listener whose kernel queue holds `backlog` connections not yet accepted.
pub fn bind_with_backlog(addr: SocketAddr, backlog: u32) -> anyhow::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .with_context(|| format!("cannot listen on {addr}"))?;
    // As the standard listener does: a restarted gateway may bind while old connections wait.
    #[cfg(unix)]
    socket
        .set_reuseaddr(true)
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket
        .bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket
        .listen(backlog)
        .with_context(|| format!("cannot listen on {addr}"))
}
