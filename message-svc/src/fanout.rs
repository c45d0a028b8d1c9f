//! Fan-out: pushing freshly stored messages to the gateways that hold their recipients.
//!
//! The writer queues each fresh message right after its commit, in the order it stored them
//! (and a retry of a stored message again, in case the first push died with its replica).
//! One task takes what is queued (in batches, like the writer), finds the live sessions of all
//! the recipients with one query (on SQLite the writer read them already, in the transaction
//! that stored the messages: see `writer::sessions_under_lock`), and hands each gateway its
//! part of the round on that gateway's **lane**: a task making that gateway's `Deliver` calls
//! one after another. So a gateway receives one replica's messages in seq order, and one slow
//! gateway holds up only its own lane. Each recipient gets its own copy of a group message,
//! with only the key wrapped for it ([`ReaderCopies`]): the lanes carry a copy's size, not the
//! group's.
//!
//! It is best effort by design: the messages are already committed, so a full queue or lane,
//! a failed query or a gateway that does not answer costs only liveness (the recipient syncs;
//! client-core also fetches what a gap shows missing). Both the queue and each lane are
//! bounded in bytes as well as in count ([`FANOUT_QUEUE_MAX_BYTES`], [`LANE_MAX_BYTES`]), so a
//! burst of large messages to a stalled gateway cannot make the service hold more memory than
//! that; what does not fit is dropped and counted ([`FANOUT_DROPPED`]).
//!
//! A lane with nothing to push for [`LANE_IDLE`] ends, and the next round for its gateway
//! starts another: the lanes of gateways that went away (restarted on another address,
//! scaled down) do not stay for the life of the process.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proto::message::StoredMessage;
use sea_orm::DatabaseConnection;
use service_kit::push::{LiveSession, Pusher, live_sessions};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::logic::ReaderCopies;

/// Most messages one fan-out round takes from its queue.
pub const FANOUT_BATCH_MAX: usize = 1024;

/// Most envelope bytes waiting in the fan-out queue.
pub const FANOUT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Rounds waiting on one gateway's lane.
pub const LANE_ROUNDS: usize = 64;

/// Most envelope bytes waiting on one gateway's lane.
pub const LANE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// A lane with nothing to push for this long ends.
pub const LANE_IDLE: Duration = Duration::from_secs(60);

/// A stored message and who should get it.
#[derive(Debug)]
pub struct Fanout {
    /// The message.
    pub message: StoredMessage,
    /// Its conversation's members (the sender is skipped).
    pub members: Arc<Vec<i64>>,
    /// The live sessions of the recipients of the batch that stored it, when the writer read
    /// them in that batch's transaction; `None`: the fan-out reads them.
    pub sessions: Option<Arc<Vec<LiveSession>>>,
}

/// Everyone who gets one of `messages` (each its sender and its conversation's members), in
/// order, once.
pub fn recipients<'a>(messages: impl IntoIterator<Item = (i64, &'a Arc<Vec<i64>>)>) -> Vec<i64> {
    let recipients: BTreeSet<i64> = messages
        .into_iter()
        .flat_map(|(sender, members)| members.iter().copied().filter(move |m| *m != sender))
        .collect();
    recipients.into_iter().collect()
}

/// Stored messages waiting to be pushed (sampled as each batch is taken).
pub const FANOUT_QUEUE: &str = "uchat_message_fanout_queue";
/// Stored messages not pushed because the fan-out queue was full (their recipients sync).
pub const FANOUT_DROPPED: &str = "uchat_message_fanout_dropped_total";

/// The queue into the fan-out task. Never waits: a message that does not fit is left to sync.
#[derive(Debug, Clone)]
pub struct FanoutQueue {
    queue: mpsc::Sender<Fanout>,
    bytes: Arc<AtomicUsize>,
}

impl FanoutQueue {
    /// Starts the fan-out task with room for `capacity` waiting messages.
    pub fn start(db: DatabaseConnection, push: Pusher, capacity: usize) -> Self {
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        let bytes = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(db, push, jobs, bytes.clone()));
        Self { queue, bytes }
    }

    /// Queues `fanout`; drops it (counted) when the queue is full in count or bytes.
    pub fn push(&self, fanout: Fanout) {
        let size = fanout.message.envelope.len();
        if !take(&self.bytes, size, FANOUT_QUEUE_MAX_BYTES) {
            dropped(1, "fan-out queue full");
            return;
        }
        if self.queue.try_send(fanout).is_err() {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            dropped(1, "fan-out queue full");
        }
    }
}

/// Counts `size` into `held` unless that would pass `max`.
fn take(held: &AtomicUsize, size: usize, max: usize) -> bool {
    held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
        now.checked_add(size).filter(|total| *total <= max)
    })
    .is_ok()
}

fn dropped(messages: usize, why: &str) {
    metrics::counter!(FANOUT_DROPPED).increment(messages as u64);
    tracing::debug!(messages, "{why}; recipients will sync");
}

async fn run(
    db: DatabaseConnection,
    push: Pusher,
    mut jobs: mpsc::Receiver<Fanout>,
    queued: Arc<AtomicUsize>,
) {
    let mut lanes = Lanes::new(push);
    let mut batch = Vec::new();
    while jobs.recv_many(&mut batch, FANOUT_BATCH_MAX).await > 0 {
        let taken: usize = batch.iter().map(|f| f.message.envelope.len()).sum();
        queued.fetch_sub(taken, Ordering::Relaxed);
        metrics::gauge!(FANOUT_QUEUE).set(jobs.len() as f64);
        let by_user = sessions(&db, &batch).await;
        // Each gateway's deliveries, in the order the messages were stored.
        let mut by_gateway: HashMap<String, Round> = HashMap::new();
        for fanout in batch.drain(..) {
            let copies = ReaderCopies::of(&fanout.message.envelope);
            for member in fanout.members.iter() {
                if service_kit::wire_id(*member) == fanout.message.sender_id {
                    continue;
                }
                let Some(sessions) = by_user.get(member) else {
                    continue;
                };
                let message = &fanout.message;
                let copy = StoredMessage {
                    conversation_id: message.conversation_id,
                    seq: message.seq,
                    sender_id: message.sender_id,
                    client_msg_id: message.client_msg_id.clone(),
                    sent_at: message.sent_at,
                    envelope: copies.for_reader(&message.envelope, *member),
                };
                for session in sessions {
                    let round = by_gateway.entry(session.push_addr.clone()).or_default();
                    round.bytes += copy.envelope.len();
                    round.deliveries.push((session.clone(), copy.clone()));
                }
            }
        }
        lanes.forget_ended();
        for (gateway, round) in by_gateway {
            lanes.send(gateway, round);
        }
    }
}

/// The live sessions of the recipients of `batch`, by user: those the writer read, and those
/// of the other messages' recipients, read now with one query (none where that fails).
async fn sessions(db: &DatabaseConnection, batch: &[Fanout]) -> HashMap<i64, Vec<LiveSession>> {
    let unread = recipients(
        batch
            .iter()
            .filter(|f| f.sessions.is_none())
            .filter_map(|f| Some((service_kit::db_id(f.message.sender_id)?, &f.members))),
    );
    let read_now = match live_sessions(db, &unread).await {
        Ok(sessions) => sessions,
        Err(err) => {
            tracing::warn!(%err, "cannot find recipients' sessions");
            Vec::new()
        }
    };
    // A writer's batch shares one list among its messages, queued one after the other.
    let mut read_before: Vec<&Arc<Vec<LiveSession>>> = Vec::new();
    for list in batch.iter().filter_map(|f| f.sessions.as_ref()) {
        if read_before
            .last()
            .is_none_or(|last| !Arc::ptr_eq(last, list))
        {
            read_before.push(list);
        }
    }
    let mut by_user: HashMap<i64, Vec<LiveSession>> = HashMap::new();
    let sessions = read_before
        .into_iter()
        .flat_map(|list| list.iter().cloned());
    for session in sessions.chain(read_now) {
        let held = by_user.entry(session.user_id).or_default();
        if !held.contains(&session) {
            held.push(session);
        }
    }
    by_user
}

/// One gateway's part of a round.
#[derive(Default)]
struct Round {
    deliveries: Vec<(LiveSession, StoredMessage)>,
    bytes: usize,
}

/// A lane's way in, and the bytes waiting on it.
struct Lane {
    rounds: mpsc::Sender<Round>,
    bytes: Arc<AtomicUsize>,
}

/// Every gateway's lane, started on the first round for it.
struct Lanes {
    push: Pusher,
    lanes: HashMap<String, Lane>,
}

impl Lanes {
    fn new(push: Pusher) -> Self {
        Self {
            push,
            lanes: HashMap::new(),
        }
    }

    /// Forgets the lanes that ended for want of work.
    fn forget_ended(&mut self) {
        self.lanes.retain(|_, lane| !lane.rounds.is_closed());
    }

    /// Queues `round` on `gateway`'s lane (started if it has none, or if it just ended);
    /// drops it (counted) when the lane is full.
    fn send(&mut self, gateway: String, round: Round) {
        let (count, size) = (round.deliveries.len(), round.bytes);
        let lane = self.lane(gateway.clone());
        if !take(&lane.bytes, size, LANE_MAX_BYTES) {
            dropped(count, "a gateway's fan-out lane is full");
            return;
        }
        match lane.rounds.try_send(round) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                lane.bytes.fetch_sub(size, Ordering::Relaxed);
                dropped(count, "a gateway's fan-out lane is full");
            }
            // It ended after `forget_ended` looked: a new lane takes the round.
            Err(TrySendError::Closed(round)) => {
                self.lanes.remove(&gateway);
                self.send(gateway, round);
            }
        }
    }

    fn lane(&mut self, gateway: String) -> &Lane {
        let push = &self.push;
        self.lanes.entry(gateway).or_insert_with(|| {
            let (rounds, queue) = mpsc::channel(LANE_ROUNDS);
            let bytes = Arc::new(AtomicUsize::new(0));
            tokio::spawn(lane(push.clone(), queue, bytes.clone()));
            Lane { rounds, bytes }
        })
    }
}

/// Makes one gateway's `Deliver` calls, one round after another.
/// Ends after [`LANE_IDLE`] without a round.
async fn lane(push: Pusher, mut rounds: mpsc::Receiver<Round>, bytes: Arc<AtomicUsize>) {
    loop {
        let round = match tokio::time::timeout(LANE_IDLE, rounds.recv()).await {
            Ok(Some(round)) => round,
            Ok(None) => return,
            Err(_) => {
                // Closed before the last look, so no round can be queued here and then lost.
                rounds.close();
                match rounds.recv().await {
                    Some(round) => round,
                    None => return,
                }
            }
        };
        bytes.fetch_sub(round.bytes, Ordering::Relaxed);
        push.deliver(round.deliveries).await;
    }
}

#[cfg(test)]
mod tests {
    use entity::{gateway, session};
    use sea_orm::{ActiveModelTrait, Set};

    use super::*;

    fn live(user_id: i64, epoch: i64) -> LiveSession {
        LiveSession {
            user_id,
            epoch,
            gateway_id: "gw".into(),
            push_addr: "gw:1".into(),
            peer_ip: "127.0.0.1".into(),
            peer_port: 1,
        }
    }

    fn fanout(members: &[i64], sessions: Option<&Arc<Vec<LiveSession>>>) -> Fanout {
        Fanout {
            message: StoredMessage {
                sender_id: 1,
                ..StoredMessage::default()
            },
            members: Arc::new(members.to_vec()),
            sessions: sessions.cloned(),
        }
    }

    #[tokio::test]
    async fn sessions_the_writer_read_are_used_and_only_the_others_are_read() {
        for test in service_kit::testing::databases().await {
            let db = &test.db;
            gateway::ActiveModel {
                id: Set("gw".into()),
                push_addr: Set("gw:1".into()),
                lease_expires_at: Set(i64::MAX),
            }
            .insert(db)
            .await
            .unwrap();
            for user_id in [2, 3] {
                session::ActiveModel {
                    user_id: Set(user_id),
                    session_id: Set(1),
                    epoch: Set(1),
                    online: Set(true),
                    gateway_id: Set("gw".into()),
                    peer_ip: Set("127.0.0.1".into()),
                    peer_port: Set(1),
                    since: Set(0),
                }
                .insert(db)
                .await
                .unwrap();
            }
            // What the writer read for user 2 differs from the table: only its list gives it.
            let read_before = Arc::new(vec![live(2, 7)]);
            let batch = [
                fanout(&[1, 2], Some(&read_before)),
                fanout(&[1, 2], Some(&read_before)),
                fanout(&[1, 3], None),
            ];
            let by_user = sessions(db, &batch).await;
            assert_eq!(by_user.get(&2), Some(&vec![live(2, 7)]), "{}", test.backend);
            assert_eq!(by_user.get(&3), Some(&vec![live(3, 1)]), "{}", test.backend);
            assert_eq!(by_user.len(), 2, "not the sender: {}", test.backend);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_lane_ends_and_the_next_round_starts_another() {
        let mut lanes = Lanes::new(Pusher::new(service_kit::testing::internal_key()));
        // No deliveries: the lane has nothing to call its gateway for.
        lanes.send("gone:1".into(), Round::default());
        tokio::time::sleep(LANE_IDLE / 2).await;
        lanes.forget_ended();
        assert_eq!(
            lanes.lanes.len(),
            1,
            "a lane lives while it had work lately"
        );

        tokio::time::sleep(LANE_IDLE * 2).await;
        lanes.forget_ended();
        assert!(lanes.lanes.is_empty(), "an idle lane ended");

        lanes.send("gone:1".into(), Round::default());
        assert!(lanes.lanes.values().all(|lane| !lane.rounds.is_closed()));
    }
}
