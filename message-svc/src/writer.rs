//! Group commit: concurrent sends are written by one task, many per transaction.
//!
//! Each send waits on a oneshot for its result, which comes only after the transaction that
//! holds it committed. The task takes the first waiting send, then whatever else is queued, and
//! waits at most `batch_wait` for more, up to `batch_max` sends; so under load one commit (one
//! fsync) carries many messages, and alone a message waits at most `batch_wait`.
//!
//! Seqs: within the transaction each conversation's head row is created if missing and read
//! `FOR UPDATE` (PostgreSQL; SQLite's single connection serialises transactions), so replicas
//! writing to one conversation take turns and seqs stay unique and gap-free.

use std::collections::HashMap;
use std::time::Duration;

use entity::{chat_history, conversation_head};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;

/// A message to store.
#[derive(Debug)]
pub struct Job {
    /// Who sends it (already authorised).
    pub sender: i64,
    /// Where.
    pub conversation: i64,
    /// The sender's id for it (16 bytes).
    pub client_msg_id: Vec<u8>,
    /// The end-to-end envelope.
    pub envelope: Vec<u8>,
    /// Where the result goes once committed.
    pub reply: oneshot::Sender<Result<Stored, Error>>,
}

/// Where a message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its seq in the conversation.
    pub seq: i64,
    /// When it was stored (Unix ms).
    pub sent_at: i64,
    /// False when it was a retry of a message already stored.
    pub fresh: bool,
}

/// Runs the writer until every sender handle is dropped.
pub async fn run(
    db: DatabaseConnection,
    mut jobs: mpsc::Receiver<Job>,
    batch_max: usize,
    batch_wait: Duration,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() < batch_max && !batch_wait.is_zero() {
            let deadline = tokio::time::Instant::now() + batch_wait;
            while batch.len() < batch_max {
                match tokio::time::timeout_at(deadline, jobs.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
        }
        let outcome = commit(&db, &batch).await;
        match outcome {
            Ok(results) => {
                for (job, stored) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(stored));
                }
            }
            Err(err) => {
                tracing::error!(%err, size = batch.len(), "message batch failed");
                for job in batch {
                    let _ = job.reply.send(Err(Error::Db(DbErr::Custom(
                        "the batch holding this message failed".into(),
                    ))));
                }
            }
        }
    }
}

async fn commit(db: &DatabaseConnection, batch: &[Job]) -> Result<Vec<Stored>, DbErr> {
    let txn = db.begin().await?;
    let now = service_kit::now_ms();
    let mut heads: HashMap<i64, i64> = HashMap::new();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        if let Some(existing) = find_existing(&txn, job).await? {
            results.push(existing);
            continue;
        }
        let head = match heads.get(&job.conversation) {
            Some(head) => *head,
            None => lock_head(&txn, job.conversation).await?,
        };
        let seq = head + 1;
        chat_history::ActiveModel {
            conversation_id: Set(job.conversation),
            seq: Set(seq),
            sender_id: Set(job.sender),
            client_msg_id: Set(job.client_msg_id.clone()),
            sent_at: Set(now),
            envelope: Set(job.envelope.clone()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        heads.insert(job.conversation, seq);
        results.push(Stored {
            seq,
            sent_at: now,
            fresh: true,
        });
    }
    for (conversation, max_seq) in heads {
        conversation_head::Entity::update_many()
            .col_expr(conversation_head::Column::MaxSeq, max_seq.into())
            .col_expr(conversation_head::Column::LastMessageAt, now.into())
            .filter(conversation_head::Column::ConversationId.eq(conversation))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(results)
}

async fn find_existing(txn: &impl ConnectionTrait, job: &Job) -> Result<Option<Stored>, DbErr> {
    Ok(chat_history::Entity::find()
        .filter(chat_history::Column::ConversationId.eq(job.conversation))
        .filter(chat_history::Column::SenderId.eq(job.sender))
        .filter(chat_history::Column::ClientMsgId.eq(job.client_msg_id.clone()))
        .one(txn)
        .await?
        .map(|row| Stored {
            seq: row.seq,
            sent_at: row.sent_at,
            fresh: false,
        }))
}

/// Creates the conversation's head row if missing, locks it, and returns its `max_seq`.
async fn lock_head(txn: &impl ConnectionTrait, conversation: i64) -> Result<i64, DbErr> {
    conversation_head::Entity::insert(conversation_head::ActiveModel {
        conversation_id: Set(conversation),
        max_seq: Set(0),
        last_message_at: Set(0),
    })
    .on_conflict(
        OnConflict::column(conversation_head::Column::ConversationId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(conversation_head::Entity::find_by_id(conversation)
        .lock_exclusive()
        .one(txn)
        .await?
        .map_or(0, |head| head.max_seq))
}
