//! Coalescing: the sends of all this gateway's sessions go to message-svc in `SendBatch`
//! calls, so the per-call cost is paid once per batch (see docs/BENCHMARKS.md).
//!
//! The task takes whatever is queued when it is free (no added wait: a lone send goes out at
//! once) and keeps a few calls in flight.

use std::sync::Arc;
use std::time::Duration;

use proto::message::message_client::MessageClient;
use proto::message::{SendBatchRequest, SendRequest, SendResponse};
use protocol::message::Error;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::transport::Channel;

use crate::convert::{client_code, status_to_error, unavailable};

/// `SendBatch` calls in flight at once.
pub const SEND_CALLS_IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<Result<SendResponse, Error>>;

/// The queue into the coalescing task.
#[derive(Debug, Clone)]
pub struct SendQueue(mpsc::Sender<(SendRequest, Reply)>);

impl SendQueue {
    /// Starts the task: batches of at most `batch_max`, each call bounded by `timeout`.
    pub fn start(client: MessageClient<Channel>, batch_max: usize, timeout: Duration) -> Self {
        let batch_max = batch_max.clamp(1, Semaphore::MAX_PERMITS / SEND_CALLS_IN_FLIGHT);
        let (queue, jobs) = mpsc::channel(batch_max * SEND_CALLS_IN_FLIGHT);
        tokio::spawn(run(client, jobs, batch_max, timeout));
        Self(queue)
    }

    /// Sends one message and waits for its commit.
    pub async fn send(&self, request: SendRequest) -> Result<SendResponse, Error> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send((request, reply))
            .await
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }
}

async fn run(
    client: MessageClient<Channel>,
    mut jobs: mpsc::Receiver<(SendRequest, Reply)>,
    batch_max: usize,
    timeout: Duration,
) {
    let calls = Arc::new(Semaphore::new(SEND_CALLS_IN_FLIGHT));
    let mut batch = Vec::with_capacity(batch_max);
    while jobs.recv_many(&mut batch, batch_max).await > 0 {
        let Ok(call) = calls.clone().acquire_owned().await else {
            return;
        };
        // Take what arrived while waiting for a free call, up to the bound.
        while batch.len() < batch_max {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (sends, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let mut client = client.clone();
        tokio::spawn(async move {
            let answer =
                tokio::time::timeout(timeout, client.send_batch(SendBatchRequest { sends })).await;
            match answer {
                Ok(Ok(response)) => {
                    let outcomes = response.into_inner().outcomes;
                    let mut outcomes = outcomes.into_iter();
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
                Ok(Err(status)) => {
                    let error = status_to_error(&status);
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                Err(_) => {
                    for reply in replies {
                        let _ = reply.send(Err(unavailable()));
                    }
                }
            }
            drop(call);
        });
    }
}
