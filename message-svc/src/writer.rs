//! Group commit: concurrent sends are written by one task, many per transaction.
//!
//! Each send waits on a oneshot for its result, which comes only after the transaction that
//! holds it committed. The task takes the first waiting send, then whatever else is queued, up
//! to `batch_max` sends; so under load one commit (one fsync) carries many messages. When the
//! batch before had company (the sign of load), it also waits at most `batch_wait` for more.
//! Alone, a message never waits: there is nobody to wait for, and tokio's timer would round
//! even a 250 µs wait up to a millisecond or more (measured: p50 5.8 -> 4.3 ms at 20 messages/s
//! with no wait).
//!
//! Seqs: within the transaction each conversation's head row is created if missing and locked
//! by an upsert, in conversation order (PostgreSQL; SQLite's single connection serialises
//! transactions), so replicas writing to one conversation take turns and seqs stay unique and
//! gap-free.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use entity::{chat_history, conversation_head};
use proto::message::StoredMessage;
use protocol::e2e::EnvelopeShape;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use service_kit::membership::members_of_many;
use service_kit::push::{LiveSession, live_sessions};
use service_kit::wire_id;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::fanout::{self, Fanout, FanoutQueue};
use crate::store::{self, Forward, ROWS_PER_STATEMENT};

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
    /// Its outer structure, checked when it was received.
    pub shape: EnvelopeShape,
    /// Where the result goes once committed.
    pub reply: oneshot::Sender<Result<Outcome, Error>>,
}

/// What a send comes to: where it was stored, and who belongs to the conversation (for the
/// fan-out), read in the same transaction that authorised it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where it was stored.
    pub stored: Stored,
    /// The conversation's members.
    pub members: Arc<Vec<i64>>,
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

/// What the fan-out pushes for one send of a committed batch.
#[derive(Debug)]
enum Push {
    /// Nothing: the send was refused, or repeats one stored by this same batch.
    Nothing,
    /// A fresh message, with its own envelope.
    Fresh,
    /// A retry of a message stored before, with the envelope as stored. A sender retries when
    /// it had no answer, and the first attempt may have died with its replica between the
    /// commit and the push; recipients that hold the message already ignore it.
    Again(Vec<u8>),
}

/// One send of a committed batch: what it came to, and what the fan-out pushes for it.
type Committed = (Result<Outcome, Error>, Push);

/// A committed batch: each send's outcome, and the recipients' live sessions when they were
/// read in its transaction ([`sessions_under_lock`]).
struct Written {
    results: Vec<Committed>,
    sessions: Option<Arc<Vec<LiveSession>>>,
}

/// Messages waiting for the writer (sampled as each batch is taken).
pub const WRITER_QUEUE: &str = "uchat_message_writer_queue";
/// Messages stored per transaction.
pub const WRITER_BATCH_SIZE: &str = "uchat_message_writer_batch_size";

/// Runs the writer until every sender handle is dropped. Each fresh message goes to
/// `fanout` right after its commit, in the order stored, so pushes leave in seq order; a
/// retry of a stored message goes again (see [`Push::Again`]).
pub async fn run(
    db: DatabaseConnection,
    mut jobs: mpsc::Receiver<Job>,
    fanout: FanoutQueue,
    batch_max: usize,
    batch_wait: Duration,
) {
    let mut busy = false;
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if busy && batch.len() < batch_max && !batch_wait.is_zero() {
            let deadline = tokio::time::Instant::now() + batch_wait;
            while batch.len() < batch_max {
                match tokio::time::timeout_at(deadline, jobs.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
        }
        busy = batch.len() > 1;
        metrics::histogram!(WRITER_BATCH_SIZE).record(batch.len() as f64);
        metrics::gauge!(WRITER_QUEUE).set(jobs.len() as f64);
        match store(&db, &batch).await {
            Ok(Written { results, sessions }) => {
                for (job, (outcome, push)) in batch.into_iter().zip(results) {
                    let Job {
                        sender,
                        conversation,
                        client_msg_id,
                        envelope,
                        reply,
                        ..
                    } = job;
                    let envelope = match push {
                        Push::Nothing => None,
                        Push::Fresh => Some(envelope),
                        Push::Again(stored) => Some(stored),
                    };
                    if let (Ok(Outcome { stored, members }), Some(envelope)) = (&outcome, envelope)
                    {
                        // Durable now; a recipient who misses the push syncs it later.
                        fanout.push(Fanout {
                            message: StoredMessage {
                                conversation_id: wire_id(conversation),
                                seq: wire_id(stored.seq),
                                sender_id: wire_id(sender),
                                client_msg_id,
                                sent_at: wire_id(stored.sent_at),
                                envelope,
                            },
                            members: members.clone(),
                            sessions: sessions.clone(),
                        });
                    }
                    let _ = reply.send(outcome);
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

/// Checks that the sender may write to the conversation, given its members, and that the
/// envelope is sealed for them.
fn authorise(
    memberships: &HashMap<i64, (i16, Arc<Vec<i64>>)>,
    job: &Job,
) -> Result<Arc<Vec<i64>>, Error> {
    let (kind, members) = memberships
        .get(&job.conversation)
        .ok_or(Error::ConversationNotFound)?;
    crate::logic::may_write(*kind, members, job.sender)?;
    crate::logic::sealed_for(*kind, members, &job.shape)?;
    Ok(members.clone())
}

/// Whether a batch's sends are looked up among the stored messages before they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retries {
    /// Not looked up: a send already stored makes its insert do nothing, and the transaction
    /// is given up.
    Unexpected,
    /// Looked up first, and answered as stored.
    LookedUp,
}

/// Stores a batch. A retry (a sender that lost its answer and sent again under the same id)
/// is rare, so the batch is first written as if it held none, without the lookup (3 – 13 ms
/// of a 768-message batch's 30 – 45 under load, docs/BENCHMARKS.md); if a send turns out to
/// be stored already, that transaction is rolled back before it gave out a seq, and the
/// batch is written again with its retries looked up.
async fn store(db: &DatabaseConnection, batch: &[Job]) -> Result<Written, DbErr> {
    if let Some(written) = commit(db, batch, Retries::Unexpected).await? {
        return Ok(written);
    }
    commit(db, batch, Retries::LookedUp).await?.ok_or_else(|| {
        DbErr::Custom("a send was stored elsewhere while this batch was written".into())
    })
}

/// Authorises and writes a batch in one transaction, with statements per batch, not per
/// message or conversation (each is a hand-off to SQLite's thread and back, and a batch under
/// load holds hundreds of conversations): the memberships of the conversations involved, one
/// locking upsert for the heads, and per [`ROWS_PER_STATEMENT`] rows (with `retries` looked
/// up, one query for those already stored) one insert of new messages, one upsert of the
/// senders' cursors and one of the new heads. `None`, rolled back, when an insert met a
/// message already stored.
async fn commit(
    db: &DatabaseConnection,
    batch: &[Job],
    retries: Retries,
) -> Result<Option<Written>, DbErr> {
    let txn = db.begin().await?;
    let now = service_kit::now_ms();
    let mut conversations: Vec<i64> = batch.iter().map(|j| j.conversation).collect();
    conversations.sort_unstable();
    conversations.dedup();
    let memberships: HashMap<i64, (i16, Arc<Vec<i64>>)> = members_of_many(&txn, &conversations)
        .await?
        .into_iter()
        .map(|(id, (kind, members))| (id, (kind, Arc::new(members))))
        .collect();
    let existing = match retries {
        Retries::LookedUp => find_existing(&txn, batch).await?,
        Retries::Unexpected => HashMap::new(),
    };
    let mut heads = lock_heads(&txn, &conversations).await?;

    let mut results = Vec::with_capacity(batch.len());
    let mut fresh: HashMap<(i64, i64, &[u8]), Stored> = HashMap::new();
    let mut rows = Vec::new();
    for job in batch {
        let members = match authorise(&memberships, job) {
            Ok(members) => members,
            Err(err) => {
                results.push((Err(err), Push::Nothing));
                continue;
            }
        };
        let key = (job.conversation, job.sender, job.client_msg_id.as_slice());
        if let Some((stored, envelope)) = existing.get(&key) {
            let outcome = Outcome {
                stored: *stored,
                members,
            };
            results.push((Ok(outcome), Push::Again(envelope.clone())));
            continue;
        }
        if let Some(stored) = fresh.get(&key) {
            let stored = Stored {
                fresh: false,
                ..*stored
            };
            results.push((Ok(Outcome { stored, members }), Push::Nothing));
            continue;
        }
        let head = heads.entry(job.conversation).or_insert(0);
        *head += 1;
        let stored = Stored {
            seq: *head,
            sent_at: now,
            fresh: true,
        };
        fresh.insert(key, stored);
        results.push((Ok(Outcome { stored, members }), Push::Fresh));
        rows.push(chat_history::ActiveModel {
            conversation_id: Set(job.conversation),
            seq: Set(stored.seq),
            sender_id: Set(job.sender),
            client_msg_id: Set(job.client_msg_id.clone()),
            sent_at: Set(now),
            envelope: Set(job.envelope.clone()),
            ..Default::default()
        });
    }
    if !rows.is_empty() {
        let stored_already = OnConflict::columns([
            chat_history::Column::ConversationId,
            chat_history::Column::SenderId,
            chat_history::Column::ClientMsgId,
        ])
        .do_nothing()
        .to_owned();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
            let expected = chunk.len() as u64;
            let inserted = chat_history::Entity::insert_many(chunk)
                .on_conflict(stored_already.clone())
                .exec_without_returning(&txn)
                .await?;
            if inserted < expected {
                txn.rollback().await?;
                return Ok(None);
            }
        }
        let touched: BTreeSet<i64> = batch
            .iter()
            .zip(&results)
            .filter(|(_, (_, push))| matches!(push, Push::Fresh))
            .map(|(job, _)| job.conversation)
            .collect();
        advance_senders(&txn, batch, &results).await?;
        let moved: Vec<conversation_head::ActiveModel> = touched
            .into_iter()
            .map(|conversation| conversation_head::ActiveModel {
                conversation_id: Set(conversation),
                max_seq: Set(heads.get(&conversation).copied().unwrap_or(0)),
                last_message_at: Set(now),
            })
            .collect();
        move_heads(&txn, moved).await?;
    }
    let sessions = sessions_under_lock(&txn, batch, &results).await;
    txn.commit().await?;
    Ok(Some(Written { results, sessions }))
}

/// On SQLite, the live sessions of the recipients of the batch's messages, read in its
/// transaction, for the fan-out; `None` elsewhere, or if the read failed (the fan-out then
/// reads them after the commit, as it does on PostgreSQL).
///
/// Why it is safe here and not there. A session missed by the fan-out must sync the message
/// instead: it must log in after the message is committed. On SQLite the batch's first write
/// took the database's write lock, held until the commit, so a login (a write) that this read
/// does not see commits after the messages, and its sync finds them. (A batch of retries alone
/// writes nothing, but its messages were committed before it began.) PostgreSQL locks rows,
/// not the database: a login could commit between this read and the commit, then sync before
/// the messages are visible, and get neither push nor sync. Read after the commit, at the cost
/// of a hand-off to a connection idle since it: 0.16 ms of a lone message's latency on SQLite
/// (docs/BENCHMARKS.md).
async fn sessions_under_lock(
    txn: &DatabaseTransaction,
    batch: &[Job],
    results: &[Committed],
) -> Option<Arc<Vec<LiveSession>>> {
    if txn.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let pushed = batch
        .iter()
        .zip(results)
        .filter(|(_, (_, push))| !matches!(push, Push::Nothing))
        .filter_map(|(job, (outcome, _))| Some((job.sender, &outcome.as_ref().ok()?.members)));
    match live_sessions(txn, &fanout::recipients(pushed)).await {
        Ok(sessions) => Some(Arc::new(sessions)),
        Err(err) => {
            tracing::warn!(%err, "cannot find recipients' sessions before the commit");
            None
        }
    }
}

/// Writes the new heads of the conversations the batch stored messages in: one upsert per
/// [`ROWS_PER_STATEMENT`] conversations, in conversation order (their rows exist and are
/// locked: [`lock_heads`] made them).
async fn move_heads(
    txn: &impl ConnectionTrait,
    heads: Vec<conversation_head::ActiveModel>,
) -> Result<(), DbErr> {
    let upsert = OnConflict::column(conversation_head::Column::ConversationId)
        .update_columns([
            conversation_head::Column::MaxSeq,
            conversation_head::Column::LastMessageAt,
        ])
        .to_owned();
    store::upsert_many(txn, heads, upsert).await
}

/// Moves each sender's cursors (delivered and read) up to the newest message they stored in
/// the batch, never back: what I wrote I hold, and by answering I have read what came before.
/// So `unread = max_seq - read_seq` never counts a user's own messages.
async fn advance_senders(
    txn: &impl ConnectionTrait,
    batch: &[Job],
    results: &[Committed],
) -> Result<(), DbErr> {
    let mut newest: BTreeMap<(i64, i64), Forward> = BTreeMap::new();
    for (job, (outcome, push)) in batch.iter().zip(results) {
        if let (Ok(outcome), Push::Fresh) = (outcome, push) {
            let seq = outcome.stored.seq;
            let to = newest.entry((job.conversation, job.sender)).or_default();
            to.delivered = to.delivered.max(seq);
            to.read = to.read.max(seq);
        }
    }
    store::advance_cursors(txn, newest).await
}

/// The batch's messages that are already stored (retries), by (conversation, sender, id),
/// with their envelopes as stored.
async fn find_existing<'a>(
    txn: &impl ConnectionTrait,
    batch: &'a [Job],
) -> Result<HashMap<(i64, i64, &'a [u8]), (Stored, Vec<u8>)>, DbErr> {
    let mut rows = Vec::new();
    for jobs in batch.chunks(ROWS_PER_STATEMENT) {
        let mut any = Condition::any();
        for job in jobs {
            any = any.add(
                Condition::all()
                    .add(chat_history::Column::ConversationId.eq(job.conversation))
                    .add(chat_history::Column::SenderId.eq(job.sender))
                    .add(chat_history::Column::ClientMsgId.eq(job.client_msg_id.clone())),
            );
        }
        rows.extend(chat_history::Entity::find().filter(any).all(txn).await?);
    }
    let mut found = HashMap::new();
    for row in rows {
        if let Some(job) = batch.iter().find(|j| {
            j.conversation == row.conversation_id
                && j.sender == row.sender_id
                && j.client_msg_id == row.client_msg_id
        }) {
            found.insert(
                (job.conversation, job.sender, job.client_msg_id.as_slice()),
                (
                    Stored {
                        seq: row.seq,
                        sent_at: row.sent_at,
                        fresh: false,
                    },
                    row.envelope,
                ),
            );
        }
    }
    Ok(found)
}

/// Creates the conversations' head rows where missing, locks them, and returns each
/// `max_seq`, in one statement: an upsert whose update changes nothing but takes the row's
/// lock (PostgreSQL; a replica storing into the same conversation waits for this commit, then
/// reads the head it left), returning every row.
async fn lock_heads(
    txn: &impl ConnectionTrait,
    conversations: &[i64],
) -> Result<HashMap<i64, i64>, DbErr> {
    let unchanged = Expr::col((conversation_head::Entity, conversation_head::Column::MaxSeq));
    Ok(
        conversation_head::Entity::insert_many(conversations.iter().map(|&conversation| {
            conversation_head::ActiveModel {
                conversation_id: Set(conversation),
                max_seq: Set(0),
                last_message_at: Set(0),
            }
        }))
        .on_conflict(
            OnConflict::column(conversation_head::Column::ConversationId)
                .value(conversation_head::Column::MaxSeq, unchanged)
                .to_owned(),
        )
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .map(|head| (head.conversation_id, head.max_seq))
        .collect(),
    )
}
