//! The store as a SQLite file: what a desktop client keeps between runs ([`LocalStore::File`]).
//!
//! [`LocalStore::File`]: crate::LocalStore::File

use std::path::Path;

use protocol::message::LoginBundle;
use protocol::{ClientMsgId, ConversationId, Seq, Timestamp, UserId, codec};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement, Value};

use super::{ACK_WINDOW, GAP_WINDOW, LocalMessage, Queued};
use crate::error::ClientError;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS messages (conversation INTEGER NOT NULL, seq INTEGER NOT NULL, \
     sender INTEGER NOT NULL, client_msg_id BLOB NOT NULL, sent_at INTEGER NOT NULL, \
     body BLOB NOT NULL, PRIMARY KEY (conversation, seq))",
    "CREATE TABLE IF NOT EXISTS read_marks (conversation INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (client_msg_id BLOB PRIMARY KEY, conversation INTEGER NOT NULL, \
     envelope BLOB NOT NULL, body BLOB NOT NULL, queued_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS certificates (user INTEGER PRIMARY KEY, public_key BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
];

/// One user's SQLite file.
#[derive(Debug, Clone)]
pub(super) struct Sqlite {
    db: DatabaseConnection,
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn int(v: u64) -> Value {
    Value::BigInt(Some(i64::try_from(v).unwrap_or(i64::MAX)))
}

fn blob(v: Vec<u8>) -> Value {
    Value::Bytes(Some(v))
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Sqlite {
    /// Opens (creating) the store at `path`.
    pub(super) async fn open(path: &Path) -> Result<Self, ClientError> {
        let db = Self::connect(format!("sqlite://{}?mode=rwc", path.display())).await?;
        // A local copy: the server holds the messages durably, so a crash that loses the
        // last local write costs only a re-sync. WAL with NORMAL sync avoids an fsync per
        // message.
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        db.execute_unprepared("PRAGMA synchronous=NORMAL").await?;
        Self::with_schema(db).await
    }

    async fn connect(url: String) -> Result<DatabaseConnection, ClientError> {
        let mut options = sea_orm::ConnectOptions::new(url);
        options.max_connections(1).sqlx_logging(false);
        Ok(Database::connect(options).await?)
    }

    async fn with_schema(db: DatabaseConnection) -> Result<Self, ClientError> {
        for sql in SCHEMA {
            db.execute_unprepared(sql).await?;
        }
        Ok(Self { db })
    }

    pub(super) async fn put_message(&self, message: &LocalMessage) -> Result<bool, ClientError> {
        let body = codec::encode(&message.body).map_err(protocol::E2eError::from)?;
        let done = self
            .db
            .execute_raw(stmt(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    int(message.conversation.0),
                    int(message.seq.0),
                    int(message.sender.0),
                    blob(message.client_msg_id.0.to_vec()),
                    int(message.sent_at.0),
                    blob(body),
                ],
            ))
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One query over an index range.
    pub(super) async fn ack_point(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<Seq, ClientError> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT MAX(seq) AS seq FROM messages AS m WHERE conversation = ? \
                 AND seq < ? AND seq >= ? AND NOT EXISTS (SELECT 1 FROM messages AS n \
                 WHERE n.conversation = m.conversation AND n.seq = m.seq + 1)",
                vec![
                    int(conversation.0),
                    int(seq.0),
                    int(seq.0.saturating_sub(ACK_WINDOW)),
                ],
            ))
            .await?;
        let gap: Option<i64> = match row {
            Some(row) => row.try_get("", "seq")?,
            None => None,
        };
        Ok(gap.map_or(seq, |held| Seq(unsigned(held))))
    }

    /// One query: a count over an index range.
    pub(super) async fn gap_below(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<bool, ClientError> {
        if seq.0 <= 1 {
            return Ok(false);
        }
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE conversation = ?1 AND seq = ?2 - 1) \
                 OR (SELECT COUNT(*) FROM messages WHERE conversation = ?1 AND seq <= ?2 AND seq >= \
                 (SELECT MIN(seq) FROM messages WHERE conversation = ?1 AND seq >= ?3)) \
                 < ?2 + 1 - (SELECT MIN(seq) FROM messages WHERE conversation = ?1 AND seq >= ?3) AS gap",
                vec![
                    int(conversation.0),
                    int(seq.0),
                    int(seq.0.saturating_sub(GAP_WINDOW)),
                ],
            ))
            .await?;
        match row {
            Some(row) => Ok(row.try_get("", "gap")?),
            None => Ok(false),
        }
    }

    pub(super) async fn history(
        &self,
        conversation: ConversationId,
        before: Seq,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        let before = if before.0 == 0 {
            u64::MAX >> 1
        } else {
            before.0
        };
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT * FROM messages WHERE conversation = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                vec![int(conversation.0), int(before), int(u64::from(limit))],
            ))
            .await?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let id: Vec<u8> = row.try_get("", "client_msg_id")?;
            let body: Vec<u8> = row.try_get("", "body")?;
            messages.push(LocalMessage {
                conversation,
                seq: Seq(unsigned(row.try_get("", "seq")?)),
                sender: UserId(unsigned(row.try_get("", "sender")?)),
                client_msg_id: ClientMsgId(id.try_into().unwrap_or([0; 16])),
                sent_at: Timestamp(unsigned(row.try_get("", "sent_at")?)),
                body: codec::decode(&body).map_err(protocol::E2eError::from)?,
            });
        }
        Ok(messages)
    }

    pub(super) async fn cursors(&self) -> Result<Vec<(ConversationId, Seq)>, ClientError> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT conversation, MIN(seq) AS seq FROM messages AS m WHERE NOT EXISTS \
                 (SELECT 1 FROM messages AS n WHERE n.conversation = m.conversation \
                 AND n.seq = m.seq + 1) GROUP BY conversation",
                vec![],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    ConversationId(unsigned(row.try_get("", "conversation")?)),
                    Seq(unsigned(row.try_get("", "seq")?)),
                ))
            })
            .collect::<Result<_, DbErr>>()
            .map_err(ClientError::from)
    }

    pub(super) async fn mark_read(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<(), ClientError> {
        self.db
            .execute_raw(stmt(
                "INSERT INTO read_marks VALUES (?, ?) ON CONFLICT (conversation) \
                 DO UPDATE SET seq = MAX(seq, excluded.seq)",
                vec![int(conversation.0), int(seq.0)],
            ))
            .await?;
        Ok(())
    }

    pub(super) async fn unread(
        &self,
        conversation: ConversationId,
        me: UserId,
    ) -> Result<u64, ClientError> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT COUNT(*) AS n FROM messages WHERE conversation = ? AND sender != ? AND seq > \
                 COALESCE((SELECT seq FROM read_marks WHERE conversation = ?), 0)",
                vec![int(conversation.0), int(me.0), int(conversation.0)],
            ))
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .map_or(0, unsigned))
    }

    pub(super) async fn enqueue(&self, queued: &Queued) -> Result<(), ClientError> {
        let body = codec::encode(&queued.body).map_err(protocol::E2eError::from)?;
        self.db
            .execute_raw(stmt(
                "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?, ?)",
                vec![
                    blob(queued.client_msg_id.0.to_vec()),
                    int(queued.conversation.0),
                    blob(queued.envelope.clone()),
                    blob(body),
                    int(Timestamp::now().0),
                ],
            ))
            .await?;
        Ok(())
    }

    pub(super) async fn dequeue(&self, id: ClientMsgId) -> Result<(), ClientError> {
        self.db
            .execute_raw(stmt(
                "DELETE FROM outbox WHERE client_msg_id = ?",
                vec![blob(id.0.to_vec())],
            ))
            .await?;
        Ok(())
    }

    pub(super) async fn outbox(&self) -> Result<Vec<Queued>, ClientError> {
        let rows = self
            .db
            .query_all_raw(stmt("SELECT * FROM outbox ORDER BY queued_at", vec![]))
            .await?;
        let mut queued = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Vec<u8> = row.try_get("", "client_msg_id")?;
            let body: Vec<u8> = row.try_get("", "body")?;
            queued.push(Queued {
                client_msg_id: ClientMsgId(id.try_into().unwrap_or([0; 16])),
                conversation: ConversationId(unsigned(row.try_get("", "conversation")?)),
                envelope: row.try_get("", "envelope")?,
                body: codec::decode(&body).map_err(protocol::E2eError::from)?,
            });
        }
        Ok(queued)
    }

    pub(super) async fn certificate(&self, user: UserId) -> Result<Option<Vec<u8>>, ClientError> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT public_key FROM certificates WHERE user = ?",
                vec![int(user.0)],
            ))
            .await?;
        Ok(row.map(|r| r.try_get("", "public_key")).transpose()?)
    }

    pub(super) async fn put_certificate(
        &self,
        user: UserId,
        key: &[u8],
    ) -> Result<(), ClientError> {
        self.db
            .execute_raw(stmt(
                "INSERT OR REPLACE INTO certificates VALUES (?, ?)",
                vec![int(user.0), blob(key.to_vec())],
            ))
            .await?;
        Ok(())
    }

    pub(super) async fn put_contacts(&self, bundle: &LoginBundle) -> Result<(), ClientError> {
        let bytes = codec::encode(bundle).map_err(protocol::E2eError::from)?;
        self.db
            .execute_raw(stmt(
                "INSERT OR REPLACE INTO state VALUES ('contacts', ?)",
                vec![blob(bytes)],
            ))
            .await?;
        Ok(())
    }

    pub(super) async fn contacts(&self) -> Result<Option<LoginBundle>, ClientError> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT value FROM state WHERE key = 'contacts'",
                vec![],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row.try_get("", "value")?;
        Ok(Some(
            codec::decode(&bytes).map_err(protocol::E2eError::from)?,
        ))
    }
}
