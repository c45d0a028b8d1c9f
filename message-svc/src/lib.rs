//! message-svc: durable, ordered, deduplicated message storage; fan-out to gateways; sync,
//! cursors and history.
//!
//! Layers: [`rpc`] decodes, authorises (membership read from social-svc's tables through
//! `service_kit::membership`) and maps errors (in [`error`]); [`writer`] is the one task that
//! writes messages, many per transaction (group commit); [`acks`] moves delivered and read
//! cursors, many per transaction too; [`store`] holds the reads and the cursor writes;
//! [`fanout`] pushes fresh messages to recipients' gateways in batches. It writes
//! `chat_history`, `conversation_heads` and `cursors`. [`attachments`] holds uploads and
//! downloads (`attachments`, `attachment_chunks`), in a database of their own where the
//! caller gives one ([`Stores`]).

pub mod acks;
pub mod attachments;
pub mod error;
pub mod fanout;
pub mod logic;
pub mod rpc;
pub mod store;
pub mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use proto::internal::{InternalKey, Require};
use proto::message::message_server::MessageServer;
use sea_orm::DatabaseConnection;
use service_kit::push::Pusher;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;

use crate::acks::AckQueue;
use crate::fanout::FanoutQueue;

pub use crate::error::Error;
pub use crate::rpc::MessageRpc;

/// message-svc's settings, from flags or environment.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "messages")]
pub struct Config {
    /// Largest envelope (one encrypted message) in bytes. Default 262144 (256 KiB); larger
    /// content travels as an attachment.
    #[arg(long, env = "UCHAT_MAX_ENVELOPE_BYTES", default_value_t = 256 * 1024)]
    pub max_envelope_bytes: usize,
    /// Most messages written in one transaction. Default 2048.
    #[arg(long, env = "UCHAT_BATCH_MAX", default_value_t = 2048)]
    pub batch_max: usize,
    /// Longest a batch waits for more messages before it commits, in microseconds, when the
    /// batch before it held more than one (under load). Default 250; a lone message never
    /// waits.
    #[arg(long, env = "UCHAT_BATCH_WAIT_US", default_value_t = 250)]
    pub batch_wait_us: u64,
    /// Sends waiting for the writer before senders wait too. Default 8192.
    #[arg(long, env = "UCHAT_WRITER_QUEUE", default_value_t = 8192)]
    pub writer_queue: usize,
    /// Stored messages waiting to be pushed to recipients' gateways; beyond it (or beyond
    /// 64 MiB of them, `fanout::FANOUT_QUEUE_MAX_BYTES`) they are left for the recipients to
    /// sync. Default 65536.
    #[arg(long, env = "UCHAT_FANOUT_QUEUE", default_value_t = 65536)]
    pub fanout_queue: usize,
    /// Most sends in one `SendBatch` call. Default 1024.
    #[arg(long, env = "UCHAT_SEND_BATCH_MAX", default_value_t = 1024)]
    pub send_batch_max: usize,
    /// Largest attachment in bytes. Default 104857600 (100 MiB).
    #[arg(long, env = "UCHAT_MAX_ATTACHMENT_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_attachment_bytes: u64,
    /// Most unfinished uploads one user may have at once (older than a day they are
    /// forgotten). Default 8.
    #[arg(long, env = "UCHAT_MAX_OPEN_UPLOADS", default_value_t = 8)]
    pub max_open_uploads: u64,
    /// Most messages one sync page returns. Default 500.
    #[arg(long, env = "UCHAT_SYNC_PAGE_MAX", default_value_t = 500)]
    pub sync_page_max: u32,
    /// Most bytes of envelopes one sync or history page returns. Default 786432 (768 KiB):
    /// a page fits one gRPC message and one client frame (1 MiB).
    #[arg(long, env = "UCHAT_PAGE_MAX_BYTES", default_value_t = 768 * 1024)]
    pub page_max_bytes: usize,
    /// Most messages one history page returns. Default 200.
    #[arg(long, env = "UCHAT_HISTORY_PAGE_MAX", default_value_t = 200)]
    pub history_page_max: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_envelope_bytes: 256 * 1024,
            batch_max: 2048,
            batch_wait_us: 250,
            writer_queue: 8192,
            fanout_queue: 65536,
            send_batch_max: 1024,
            max_attachment_bytes: 100 * 1024 * 1024,
            max_open_uploads: 8,
            sync_page_max: 500,
            history_page_max: 200,
            page_max_bytes: 768 * 1024,
        }
    }
}

/// The databases message-svc stores into: messages, cursors and heads in one, attachments in
/// the same or another with the same schema.
///
/// An upload writes tens of megabytes a second. On SQLite, whose one connection every query
/// waits behind, each of its 256 KiB chunks was a transaction that other users' messages
/// queued behind, and its log pages made the messages' checkpoints large: other users' chat
/// p99 during a 100 MB transfer was 26 – 34 ms in one file against 14 – 16 ms with the
/// attachments in a file of their own (docs/BENCHMARKS.md). PostgreSQL needs no second one.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Messages, cursors and conversation heads.
    pub messages: DatabaseConnection,
    /// Attachments and their chunks.
    pub attachments: DatabaseConnection,
}

impl From<DatabaseConnection> for Stores {
    /// Everything in one database.
    fn from(db: DatabaseConnection) -> Self {
        Self {
            messages: db.clone(),
            attachments: db,
        }
    }
}

/// Starts the writer and acknowledgement tasks and returns the tonic service around them.
pub fn service(
    stores: Stores,
    config: Arc<Config>,
    push: Pusher,
    key: &InternalKey,
) -> InterceptedService<MessageServer<MessageRpc>, Require> {
    let Stores {
        messages: db,
        attachments,
    } = stores;
    let (jobs, queue) = mpsc::channel(config.writer_queue.max(1));
    let fanout = FanoutQueue::start(db.clone(), push, config.fanout_queue);
    tokio::spawn(writer::run(
        db.clone(),
        queue,
        fanout,
        config.batch_max.max(1),
        Duration::from_micros(config.batch_wait_us),
    ));
    let acks = AckQueue::start(db.clone());
    MessageServer::with_interceptor(
        MessageRpc::new(db, attachments, jobs, acks, config),
        key.require(),
    )
}

/// Serves message-svc on `listener` until `shutdown` resolves, storing into `stores` (one
/// database converts into them). Callers, and the gateways it pushes to, authenticate with
/// `key`.
pub async fn serve(
    listener: TcpListener,
    stores: impl Into<Stores>,
    key: InternalKey,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let stores = stores.into();
    let db = stores.messages.clone();
    let router = service_kit::server().add_service(service(
        stores,
        Arc::new(config),
        Pusher::new(key.clone()),
        &key,
    ));
    service_kit::serve_router(router, listener, &db, shutdown).await
}
