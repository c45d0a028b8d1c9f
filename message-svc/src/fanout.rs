//! Fan-out: pushing freshly stored messages to the gateways that hold their recipients.
//!
//! One task does it, in batches like the writer: it takes what is queued, finds the live
//! sessions of all the recipients with one query, and makes one `Deliver` call per gateway.
//! It is best effort by design: the messages are already committed, so a full queue, a failed
//! query or a gateway that does not answer costs only liveness (the recipient syncs).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use proto::message::StoredMessage;
use sea_orm::DatabaseConnection;
use service_kit::push::{Pusher, live_sessions};
use tokio::sync::{Semaphore, mpsc};

/// Most messages one fan-out round takes from its queue.
pub const FANOUT_BATCH_MAX: usize = 1024;

/// Most rounds whose `Deliver` calls may be in flight at once, so one slow gateway does not
/// hold up every other recipient.
pub const FANOUT_CONCURRENCY: usize = 8;

/// A stored message and who should get it.
#[derive(Debug)]
pub struct Fanout {
    /// The message.
    pub message: StoredMessage,
    /// Its conversation's members (the sender is skipped).
    pub members: Arc<Vec<i64>>,
}

/// Stored messages waiting to be pushed (sampled as each batch is taken).
pub const FANOUT_QUEUE: &str = "uchat_message_fanout_queue";
/// Stored messages not pushed because the fan-out queue was full (their recipients sync).
pub const FANOUT_DROPPED: &str = "uchat_message_fanout_dropped_total";

/// The queue into the fan-out task. Never waits: a message that does not fit is left to sync.
#[derive(Debug, Clone)]
pub struct FanoutQueue(mpsc::Sender<Fanout>);

impl FanoutQueue {
    /// Starts the fan-out task with room for `capacity` waiting messages.
    pub fn start(db: DatabaseConnection, push: Pusher, capacity: usize) -> Self {
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(db, push, jobs));
        Self(queue)
    }

    /// Queues `fanout`; drops it (with a debug line) when the queue is full.
    pub fn push(&self, fanout: Fanout) {
        if self.0.try_send(fanout).is_err() {
            metrics::counter!(FANOUT_DROPPED).increment(1);
            tracing::debug!("fan-out queue full; recipients will sync");
        }
    }
}

async fn run(db: DatabaseConnection, push: Pusher, mut jobs: mpsc::Receiver<Fanout>) {
    let rounds = Arc::new(Semaphore::new(FANOUT_CONCURRENCY));
    let mut batch = Vec::new();
    while jobs.recv_many(&mut batch, FANOUT_BATCH_MAX).await > 0 {
        metrics::gauge!(FANOUT_QUEUE).set(jobs.len() as f64);
        let recipients: BTreeSet<i64> = batch
            .iter()
            .flat_map(|f| {
                let sender = f.message.sender_id;
                f.members
                    .iter()
                    .copied()
                    .filter(move |m| service_kit::wire_id(*m) != sender)
            })
            .collect();
        let recipients: Vec<i64> = recipients.into_iter().collect();
        let sessions = match live_sessions(&db, &recipients).await {
            Ok(sessions) => sessions,
            Err(err) => {
                tracing::warn!(%err, "cannot find recipients' sessions");
                batch.clear();
                continue;
            }
        };
        if sessions.is_empty() {
            batch.clear();
            continue;
        }
        let mut by_user: HashMap<i64, Vec<_>> = HashMap::new();
        for session in sessions {
            by_user.entry(session.user_id).or_default().push(session);
        }
        let mut deliveries = Vec::new();
        for fanout in batch.drain(..) {
            for member in fanout.members.iter() {
                if service_kit::wire_id(*member) == fanout.message.sender_id {
                    continue;
                }
                for session in by_user.get(member).into_iter().flatten() {
                    deliveries.push((session.clone(), fanout.message.clone()));
                }
            }
        }
        let Ok(round) = rounds.clone().acquire_owned().await else {
            return;
        };
        let push = push.clone();
        tokio::spawn(async move {
            push.deliver(deliveries).await;
            drop(round);
        });
    }
}
