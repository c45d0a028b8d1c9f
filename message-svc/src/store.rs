//! message-svc's reads and cursor writes: plain async functions over a connection.

use std::collections::{BTreeMap, HashMap, VecDeque};

use entity::{chat_history, conversation_head, cursor};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

/// Most rows one statement inserts or looks up. Statements of at most this many rows have few
/// distinct shapes, so the driver's prepared-statement cache keeps them all.
pub const ROWS_PER_STATEMENT: usize = 32;

/// Rows read per query while a page is filled by size.
pub const FETCH_ROWS: u64 = 32;

/// Messages a conversation gives a sync page per turn before the next one with news gets its
/// turn.
pub const SYNC_SLICE_ROWS: u64 = 8;

/// `reader`'s sync page: the messages after each `(conversation, cursor)`, each cut to the
/// reader's copy ([`crate::logic::ReaderCopies`]), as many as `budget` allows, and whether
/// more follow. Conversations with news take turns, [`SYNC_SLICE_ROWS`] at a
/// time, so one busy conversation cannot keep the others waiting page after page; each
/// conversation's messages stay in seq order. Conversations with nothing new cost no query
/// beyond the one that reads every head.
pub async fn sync_page(
    db: &impl ConnectionTrait,
    reader: i64,
    cursors: Vec<(i64, i64)>,
    budget: &mut crate::logic::PageBudget,
) -> Result<(Vec<chat_history::Model>, bool), DbErr> {
    let heads = max_seqs(db, cursors.iter().map(|c| c.0)).await?;
    let mut turns: VecDeque<(i64, i64)> = cursors
        .into_iter()
        .filter(|(conversation, cursor)| heads.get(conversation).is_some_and(|max| max > cursor))
        .collect();
    let mut page = Vec::new();
    while let Some((conversation, mut cursor)) = turns.pop_front() {
        let (rows, more) = self::after(db, conversation, cursor, SYNC_SLICE_ROWS).await?;
        for mut row in rows {
            crate::logic::cut_for_reader(&mut row.envelope, reader);
            if !budget.take(&row) {
                return Ok((page, true));
            }
            cursor = row.seq;
            page.push(row);
        }
        if more {
            turns.push_back((conversation, cursor));
        }
        if budget.is_spent() {
            return Ok((page, !turns.is_empty()));
        }
    }
    Ok((page, false))
}

/// `reader`'s page of `conversation` before `before` (0: from the newest), newest first, each
/// message cut to the reader's copy, as many as `budget` allows, and whether more follow.
pub async fn page_before(
    db: &impl ConnectionTrait,
    reader: i64,
    conversation: i64,
    mut before: i64,
    budget: &mut crate::logic::PageBudget,
) -> Result<(Vec<chat_history::Model>, bool), DbErr> {
    let mut page = Vec::new();
    loop {
        let (rows, more) = self::before(db, conversation, before, FETCH_ROWS).await?;
        for mut row in rows {
            crate::logic::cut_for_reader(&mut row.envelope, reader);
            if !budget.take(&row) {
                return Ok((page, true));
            }
            before = row.seq;
            page.push(row);
        }
        if !more {
            return Ok((page, false));
        }
    }
}

/// Up to `limit` messages of `conversation` after `after`, in seq order, and whether more
/// follow.
pub async fn after(
    db: &impl ConnectionTrait,
    conversation: i64,
    after: i64,
    limit: u64,
) -> Result<(Vec<chat_history::Model>, bool), DbErr> {
    let mut rows = chat_history::Entity::find()
        .filter(chat_history::Column::ConversationId.eq(conversation))
        .filter(chat_history::Column::Seq.gt(after))
        .order_by_asc(chat_history::Column::Seq)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// Up to `limit` messages of `conversation` before `before` (0 = from the newest), newest
/// first, and whether older ones remain.
pub async fn before(
    db: &impl ConnectionTrait,
    conversation: i64,
    before: i64,
    limit: u64,
) -> Result<(Vec<chat_history::Model>, bool), DbErr> {
    let mut query =
        chat_history::Entity::find().filter(chat_history::Column::ConversationId.eq(conversation));
    if before > 0 {
        query = query.filter(chat_history::Column::Seq.lt(before));
    }
    let mut rows = query
        .order_by_desc(chat_history::Column::Seq)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// The newest seq of each of `conversations` that has a message.
pub async fn max_seqs(
    db: &impl ConnectionTrait,
    conversations: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    Ok(conversation_head::Entity::find()
        .filter(conversation_head::Column::ConversationId.is_in(conversations))
        .all(db)
        .await?
        .into_iter()
        .map(|head| (head.conversation_id, head.max_seq))
        .collect())
}

/// Where one user's cursors in one conversation move to (0: where it is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forward {
    /// Held up to here.
    pub delivered: i64,
    /// Read up to here.
    pub read: i64,
}

/// Moves each `(conversation, user)`'s cursors forward to its [`Forward`], never back,
/// creating the row where there is none: one upsert per [`ROWS_PER_STATEMENT`] rows. The
/// map's order is the order rows are locked in, the same in every transaction, so two on
/// PostgreSQL never wait for each other's rows.
pub async fn advance_cursors(
    db: &impl ConnectionTrait,
    cursors: BTreeMap<(i64, i64), Forward>,
) -> Result<(), DbErr> {
    let forward = |column: &str| {
        Expr::cust(format!(
            "CASE WHEN excluded.{column} > cursors.{column} THEN excluded.{column} \
             ELSE cursors.{column} END"
        ))
    };
    let upsert = OnConflict::columns([cursor::Column::ConversationId, cursor::Column::UserId])
        .value(cursor::Column::DeliveredSeq, forward("delivered_seq"))
        .value(cursor::Column::ReadSeq, forward("read_seq"))
        .to_owned();
    let rows = cursors
        .into_iter()
        .map(|((conversation, user), to)| cursor::ActiveModel {
            conversation_id: Set(conversation),
            user_id: Set(user),
            delivered_seq: Set(to.delivered),
            read_seq: Set(to.read),
        })
        .collect();
    upsert_many(db, rows, upsert).await
}

/// Inserts `rows`, or does what `conflict` says where one exists, one statement per
/// [`ROWS_PER_STATEMENT`] rows.
pub async fn upsert_many<A>(
    db: &impl ConnectionTrait,
    rows: Vec<A>,
    conflict: OnConflict,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        A::Entity::insert_many(rows.by_ref().take(ROWS_PER_STATEMENT))
            .on_conflict(conflict.clone())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// One user's counters in one conversation (seqs and Unix ms; 0 where there is nothing yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRow {
    /// The conversation.
    pub conversation: i64,
    /// Its newest seq.
    pub max_seq: i64,
    /// The highest seq the user holds.
    pub delivered_seq: i64,
    /// The highest seq the user has read.
    pub read_seq: i64,
    /// When its last message was sent.
    pub last_message_at: i64,
}

/// The counters of each of `conversations` for `user`.
pub async fn states(
    db: &impl ConnectionTrait,
    user: i64,
    conversations: Vec<i64>,
) -> Result<Vec<StateRow>, DbErr> {
    let heads = conversation_head::Entity::find()
        .filter(conversation_head::Column::ConversationId.is_in(conversations.clone()))
        .all(db)
        .await?;
    let cursors = cursor::Entity::find()
        .filter(cursor::Column::UserId.eq(user))
        .filter(cursor::Column::ConversationId.is_in(conversations.clone()))
        .all(db)
        .await?;
    Ok(conversations
        .into_iter()
        .map(|conversation| {
            let head = heads.iter().find(|h| h.conversation_id == conversation);
            let cursor = cursors.iter().find(|c| c.conversation_id == conversation);
            StateRow {
                conversation,
                max_seq: head.map_or(0, |h| h.max_seq),
                delivered_seq: cursor.map_or(0, |c| c.delivered_seq),
                read_seq: cursor.map_or(0, |c| c.read_seq),
                last_message_at: head.map_or(0, |h| h.last_message_at),
            }
        })
        .collect())
}
