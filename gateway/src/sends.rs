//! Coalescing: the sends of all this gateway's sessions go to message-svc in `SendBatch`
//! calls, so the per-call cost is paid once per batch (see docs/BENCHMARKS.md).
//!
//! Order: each conversation's sends go through one of [`SEND_LANES`] lanes, chosen by the
//! conversation, and a lane makes one call at a time; message-svc stores a call's sends in the
//! order given. So a conversation's messages are stored in the order they were queued, and a
//! session queues its sends in the order it read them (see `session.rs`): one sender's
//! messages keep their order even when pipelined. Lanes run in parallel, so several calls are
//! in flight when the traffic spans conversations.
//!
//! A lane takes whatever is queued when it is free (no added wait: a lone send goes out at
//! once), up to the batch bound.
//!
//! A call that fails because its message-svc replica died or did not answer in time is made
//! again (see [`crate::retry`]) with the same client message ids: message-svc's dedupe by
//! client message id makes a repeat of a send that was stored after all return the stored
//! seq, not a second row. Each message still gets exactly one answer.

use std::time::Duration;

use proto::internal::Authenticated;
use proto::message::message_client::MessageClient;
use proto::message::{SendBatchRequest, SendBatchResponse, SendRequest, SendResponse};
use protocol::message::Error;
use tokio::sync::{mpsc, oneshot};

use crate::convert::{client_code, unavailable};

/// Lanes, each with one `SendBatch` call in flight at a time. Calls waiting at message-svc's
/// writer go into its next transaction together, so more lanes make fewer, larger
/// transactions under load; a lone send still goes at once. Flat-out chat with 1,000 clients
/// (docs/BENCHMARKS.md): 4 lanes about 9,000 delivered/s, 8 about 13,700, 16 about 15,000,
/// 32 no more.
pub const SEND_LANES: usize = 16;

type Reply = oneshot::Sender<Result<SendResponse, Error>>;

/// The queue into the coalescing lanes.
#[derive(Debug, Clone)]
pub struct SendQueue {
    lanes: Vec<mpsc::Sender<(SendRequest, Reply)>>,
}

/// A send in its lane, waiting for its commit.
#[derive(Debug)]
pub struct QueuedSend(oneshot::Receiver<Result<SendResponse, Error>>);

impl QueuedSend {
    /// Waits until the message is stored (or refused).
    pub async fn stored(self) -> Result<SendResponse, Error> {
        self.0.await.map_err(|_| unavailable())?
    }
}

impl SendQueue {
    /// Starts the lanes: batches of at most `batch_max`, each call bounded by `timeout`.
    pub fn start(
        client: MessageClient<Authenticated>,
        batch_max: usize,
        timeout: Duration,
    ) -> Self {
        let batch_max = batch_max.max(1);
        let lanes = (0..SEND_LANES)
            .map(|_| {
                let (queue, jobs) = mpsc::channel(batch_max);
                tokio::spawn(lane(client.clone(), jobs, batch_max, timeout));
                queue
            })
            .collect();
        Self { lanes }
    }

    /// Queues one message in its conversation's lane, waiting only for room there. Messages
    /// queued one after the other are stored in that order.
    pub async fn queue(&self, request: SendRequest) -> Result<QueuedSend, Error> {
        let index = usize::try_from(request.conversation_id).unwrap_or(0) % SEND_LANES;
        let lane = self.lanes.get(index).ok_or_else(unavailable)?;
        let (reply, answer) = oneshot::channel();
        lane.send((request, reply))
            .await
            .map_err(|_| unavailable())?;
        Ok(QueuedSend(answer))
    }
}

async fn lane(
    client: MessageClient<Authenticated>,
    mut jobs: mpsc::Receiver<(SendRequest, Reply)>,
    batch_max: usize,
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while jobs.recv_many(&mut batch, batch_max).await > 0 {
        let (sends, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        metrics::histogram!(crate::telemetry::SEND_BATCH_SIZE).record(sends.len() as f64);
        match send_batch(&client, &sends, timeout).await {
            Ok(response) => {
                let mut outcomes = response.outcomes.into_iter();
                for reply in replies {
                    let result = match outcomes.next() {
                        Some(outcome) => match outcome.stored {
                            Some(stored) => Ok(stored),
                            None => Err(match client_code(outcome.error()) {
                                Some(code) => Error::new(code, outcome.message),
                                None => Error::new(
                                    protocol::message::ErrorCode::Internal,
                                    "internal error",
                                ),
                            }),
                        },
                        None => Err(unavailable()),
                    };
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Makes the call, again while the replica is gone or slow (the sends are safe to repeat).
async fn send_batch(
    client: &MessageClient<Authenticated>,
    sends: &[SendRequest],
    timeout: Duration,
) -> Result<SendBatchResponse, Error> {
    crate::retry::repeatable("SendBatch", timeout, || {
        let mut client = client.clone();
        // A copy per call: tonic takes the request, and the next attempt needs the sends.
        let request = SendBatchRequest {
            sends: sends.to_vec(),
        };
        async move { client.send_batch(request).await }
    })
    .await
}
