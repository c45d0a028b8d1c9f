//! Connecting to the database: SQLite (a file or memory) or PostgreSQL, by URL.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

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

/// Connects to `url`.
///
/// SQLite gets one connection: SQLite has one writer at a time, and a single connection makes
/// every transaction serial, so read-then-write logic needs no retry on `SQLITE_BUSY` and an
/// in-memory database is one database. The file is opened in WAL mode with `synchronous=FULL`,
/// so a committed write survives a power cut; a query may run [`SQLITE_ROW_BUFFER`] rows ahead
/// of its caller. PostgreSQL gets a pool and relies on row locks.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .row_buffer_size(SQLITE_ROW_BUFFER)
            });
    } else {
        options.max_connections(DEFAULT_PG_POOL);
    }
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
