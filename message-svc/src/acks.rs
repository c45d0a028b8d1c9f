//! Acknowledgements (delivered and read cursors), many per transaction.
//!
//! Every client acknowledges what it was told a moment after it was told, so there are about
//! as many acknowledgements as deliveries: a group message to 100 members brings 99. Each
//! moves one cursor row, and alone each would be a transaction of its own (one fsync on
//! SQLite, whose one connection every other query waits behind). One task takes whatever
//! acknowledgements are waiting, up to [`ACK_BATCH_MAX`], and in one transaction checks them
//! with one membership query, reads the conversations' newest seqs with one more and moves
//! their cursors with one upsert per [`ROWS_PER_STATEMENT`] cursors (statements, not
//! acknowledgements: each statement is a hand-off to SQLite's thread and back). Each caller
//! hears its own result once that transaction committed.
//!
//! [`ROWS_PER_STATEMENT`]: crate::store::ROWS_PER_STATEMENT
//!
//! The queue holds at most [`ACK_QUEUE`] acknowledgements, each a few dozen bytes of fixed
//! size, so its count bounds its bytes. When it is full, callers wait for room (their calls
//! have deadlines); nothing is dropped, since a dropped acknowledgement would be answered as
//! done.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use service_kit::membership::members_of_many;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::logic;
use crate::store::{self, Forward};

/// Most acknowledgements one transaction takes.
pub const ACK_BATCH_MAX: usize = 1024;

/// Most acknowledgements waiting for the task.
pub const ACK_QUEUE: usize = 8192;

/// One acknowledgement: `user` holds `conversation` up to `seq` (and has read it, with
/// `read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Who acknowledges.
    pub user: i64,
    /// Where.
    pub conversation: i64,
    /// Up to which message.
    pub seq: i64,
    /// Read as well as delivered.
    pub read: bool,
}

/// The way into the acknowledgement task.
#[derive(Debug, Clone)]
pub struct AckQueue {
    queue: mpsc::Sender<(Ack, oneshot::Sender<Result<(), Error>>)>,
}

impl AckQueue {
    /// Starts the task on `db`.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, waiting) = mpsc::channel(ACK_QUEUE);
        tokio::spawn(run(db, waiting));
        Self { queue }
    }

    /// Moves the cursor as `ack` says (never back, never past the newest message), once the
    /// transaction holding it committed.
    pub async fn ack(&self, ack: Ack) -> Result<(), Error> {
        let (reply, result) = oneshot::channel();
        self.queue
            .send((ack, reply))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        result.await.map_err(|_| Error::ShuttingDown)?
    }
}

async fn run(
    db: DatabaseConnection,
    mut waiting: mpsc::Receiver<(Ack, oneshot::Sender<Result<(), Error>>)>,
) {
    let mut batch = Vec::with_capacity(ACK_BATCH_MAX);
    while waiting.recv_many(&mut batch, ACK_BATCH_MAX).await > 0 {
        let acks: Vec<Ack> = batch.iter().map(|(ack, _)| *ack).collect();
        match apply(&db, &acks).await {
            Ok(results) => {
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::warn!(%err, acks = batch.len(), "acknowledgements not stored");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(Error::Db(DbErr::Custom(
                        "acknowledgement not stored".into(),
                    ))));
                }
            }
        }
    }
}

/// Checks and applies `acks` in one transaction; returns each one's result, in order.
async fn apply(db: &DatabaseConnection, acks: &[Ack]) -> Result<Vec<Result<(), Error>>, DbErr> {
    let txn = db.begin().await?;
    let conversations: Vec<i64> = acks
        .iter()
        .map(|a| a.conversation)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let members = members_of_many(&txn, &conversations).await?;
    let results: Vec<Result<(), Error>> = acks
        .iter()
        .map(|ack| match members.get(&ack.conversation) {
            Some((kind, members)) => logic::may_write(*kind, members, ack.user),
            None => Err(Error::ConversationNotFound),
        })
        .collect();
    let heads = store::max_seqs(&txn, conversations).await?;
    // Merged per cursor: one row may appear once in an upsert (PostgreSQL refuses a second).
    let mut forward: BTreeMap<(i64, i64), Forward> = BTreeMap::new();
    for (ack, _) in acks
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.is_ok())
    {
        // Never past the newest message.
        let seq = ack
            .seq
            .min(heads.get(&ack.conversation).copied().unwrap_or(0));
        let to = forward.entry((ack.conversation, ack.user)).or_default();
        to.delivered = to.delivered.max(seq);
        if ack.read {
            to.read = to.read.max(seq);
        }
    }
    store::advance_cursors(&txn, forward).await?;
    txn.commit().await?;
    Ok(results)
}
