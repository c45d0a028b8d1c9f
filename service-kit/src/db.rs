//! Connecting to the database: SQLite (a file or memory) or PostgreSQL, by URL.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

pub use crate::checkpoint::Checkpointer;
use crate::checkpoint::SERVING_WAL_AUTOCHECKPOINT;

/// How long a SQLite connection waits for a lock before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows a SQLite query may hand to its caller before the connection's thread waits for the
/// caller to take them. Every query here collects its whole result (`all()`), and the queries
/// that read envelopes are bounded by their `LIMIT`s, so this bounds nothing the result does
/// not take anyway. sqlx's default (50) made the connection's thread stop every 50 rows of a
/// batch's membership or head lookups (hundreds of rows) until the request's task ran again:
/// flat-out chat delivered about 15 % more with this (docs/BENCHMARKS.md).
pub const SQLITE_ROW_BUFFER: usize = 4096;

/// Default size of a PostgreSQL connection pool.
pub const DEFAULT_PG_POOL: u32 = 16;

/// Log pages past which a commit checkpoints by itself: SQLite's default.
pub const DEFAULT_WAL_AUTOCHECKPOINT: u32 = 1000;

/// Connects to `url`.
///
/// SQLite gets one connection: SQLite has one writer at a time, and a single connection makes
/// every transaction serial, so read-then-write logic needs no retry on `SQLITE_BUSY` and an
/// in-memory database is one database. The file is opened in WAL mode with `synchronous=FULL`,
/// so a committed write survives a power cut; a query may run [`SQLITE_ROW_BUFFER`] rows ahead
/// of its caller. PostgreSQL gets a pool and relies on row locks.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        open_sqlite(url, DEFAULT_WAL_AUTOCHECKPOINT).await
    } else {
        let mut options = ConnectOptions::new(url);
        options.sqlx_logging(false).max_connections(DEFAULT_PG_POOL);
        Database::connect(options).await
    }
}

/// Connects to `url` for a server that runs a while: as [`connect`], and for a SQLite file,
/// with its log checkpointed in the background by the [`Checkpointer`] returned (keep it as
/// long as the connection).
pub async fn connect_serving(
    url: &str,
) -> Result<(DatabaseConnection, Option<Checkpointer>), DbErr> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok((connect(url).await?, None));
    }
    let db = open_sqlite(url, SERVING_WAL_AUTOCHECKPOINT).await?;
    let checkpointer = Checkpointer::start(url).await?;
    Ok((db, Some(checkpointer)))
}

/// One connection to the SQLite database `url`, checkpointing by itself past `autocheckpoint`
/// log pages.
///
/// The pool does not ping it before handing it out, as it does a network connection by
/// default: an embedded connection cannot go stale, and each ping was one more hand-off to the
/// connection's thread and back in every transaction (at 20 messages/s, 30.1 → 28.8 context
/// switches a message on that thread and 52 → 48 on the runtime's, docs/BENCHMARKS.md).
pub(crate) async fn open_sqlite(
    url: &str,
    autocheckpoint: u32,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .sqlx_logging(false)
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .row_buffer_size(SQLITE_ROW_BUFFER)
                .pragma("wal_autocheckpoint", autocheckpoint.to_string())
        });
    Database::connect(options).await
}

/// Whether `err` is any unique-constraint (or primary-key) violation.
pub fn is_duplicate(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Whether `err` is a unique-constraint violation whose message names `column`.
pub fn is_unique_violation(err: &DbErr, column: &str) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) if message.contains(column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_connection_is_handed_out_without_a_ping() {
        let db = connect("sqlite::memory:").await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        assert!(!pool.options().get_test_before_acquire());
    }
}
