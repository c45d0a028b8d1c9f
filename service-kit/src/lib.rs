//! Plumbing shared by the three gRPC services, so each service's crate holds only its own
//! rules and storage: connecting to the database, stamping a failed status with its
//! [`ErrorCode`](proto::common::ErrorCode), pushing to gateways, and serving on a bound
//! listener until a shutdown future resolves, with health ([`health`]) and per-call metrics.
//!
//! It is not a service and owns no table: it reads `gateways` and `sessions` (account-svc's)
//! through `entity` to find where to push.

pub mod checkpoint;
pub mod db;
pub mod health;
pub mod membership;
pub mod push;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;

use ops::metrics::RpcMetricsLayer;
use proto::transport::{BoxError, Transport};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tower::Layer;
use tower::layer::util::{Identity, Stack};

/// What a service binary needs before it serves: its database, its bound listener and the
/// internal key its callers must present.
pub struct Startup {
    /// The database connection.
    pub db: sea_orm::DatabaseConnection,
    /// A SQLite file's background checkpoints, while the binary runs (see [`checkpoint`]).
    pub checkpointer: Option<db::Checkpointer>,
    /// The gRPC listener.
    pub listener: TcpListener,
    /// The deployment's internal key.
    pub key: proto::internal::InternalKey,
}

/// Sets up logging and metrics, reads the internal key, connects to `database_url` and binds
/// `listen`, with errors that say which step failed.
pub async fn start_service(
    name: &str,
    database_url: &str,
    listen: std::net::SocketAddr,
    key_file: &std::path::Path,
    metrics: &ops::metrics::Args,
) -> Result<Startup, StartupError> {
    ops::init_logging().map_err(StartupError::Logging)?;
    metrics.serve()?;
    let key = proto::internal::InternalKey::load(key_file)?;
    let (db, checkpointer) = db::connect_serving(database_url)
        .await
        .map_err(StartupError::Database)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartupError::Listen(listen, e))?;
    tracing::info!(addr = %listen, "{name} listening");
    Ok(Startup {
        db,
        checkpointer,
        listener,
        key,
    })
}

/// Why a service binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database is unreachable or the URL is wrong.
    #[error("cannot connect to the database: {0}")]
    Database(sea_orm::DbErr),
    /// The address is taken or not ours.
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// The log settings are wrong.
    #[error("{0}")]
    Logging(String),
    /// The internal key file is missing or malformed.
    #[error(transparent)]
    Key(#[from] proto::internal::KeyError),
    /// The metrics address is taken or not ours.
    #[error(transparent)]
    Metrics(#[from] ops::metrics::MetricsError),
}

/// Returns the current time in Unix milliseconds (0 before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The server every service is built on: every call counted and timed
/// ([`ops::metrics::RpcMetricsLayer`]). [`serve_router`] sets `TCP_NODELAY` on its
/// connections ([`ops::grpc`]).
pub fn server() -> Server<Stack<RpcMetricsLayer, Identity>> {
    Server::builder().layer(RpcMetricsLayer)
}

/// `service` for a caller in this process ([`proto::transport`]), behind the layers
/// [`server`] puts around every service, so its calls are counted as served ones are.
pub fn in_process<S, B>(service: S) -> Transport
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync,
    S: 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Transport::in_process(RpcMetricsLayer.layer(service))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight calls.
/// The server also answers gRPC health checks: `SERVING` while `db` answers ([`health`]).
pub async fn serve_router(
    router: Router<Stack<RpcMetricsLayer, Identity>>,
    listener: TcpListener,
    db: &sea_orm::DatabaseConnection,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, prober) = health::database_health(db.clone());
    let served = router
        .add_service(health)
        .serve_with_incoming_shutdown(ops::grpc::incoming(listener), shutdown)
        .await;
    prober.abort();
    served
}

/// Normalises a name (username, room name) to NFC, as it is stored and shown.
pub fn normalize_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect()
}

/// Returns the key a name is unique by, looked up by and searched by: NFKC, lowercase, then
/// the confusable skeleton of Unicode's UTS #39, so `Alice`, `alice`, the fullwidth `ａｌｉｃｅ`
/// and `аlice` with a Cyrillic `а` are one name in both databases: nobody can register a
/// look-alike of another's name.
pub fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded = name.nfkc().collect::<String>().to_lowercase();
    unicode_security::confusable_detection::skeleton(&folded).collect()
}

/// Whether `name` is written in one script (digits and other common characters go with any),
/// as UTS #39 defines it: `amudwe` or `小明2`, not Latin and Cyrillic mixed.
pub fn single_script(name: &str) -> bool {
    use unicode_security::MixedScript;
    name.is_single_script()
}

/// Converts a database id to the wire's `u64` (ids are positive).
pub fn wire_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

/// Converts a wire id to the database's `i64`; ids above `i64::MAX` cannot exist.
pub fn db_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}
