//! A SQLite file's WAL checkpoints, off the writers' path.
//!
//! In WAL mode a commit appends its pages to the log, and by default the commit that takes
//! the log past 1,000 pages (4 MiB) then copies them into the database file and syncs it
//! before its caller hears anything. The server has one connection that every query waits
//! behind, so at 5,000 messages a second, every second or two, one transaction held it 5 to
//! 100 ms longer and every send queued behind it: that was most of the run's p99
//! (docs/BENCHMARKS.md).
//!
//! A [`Checkpointer`] has a connection of its own to the file and makes a `PASSIVE`
//! checkpoint every [`CHECKPOINT_EVERY`]: it copies what the log holds without waiting for
//! the writing connection or making it wait. The writing connection still checkpoints by
//! itself, but only past [`SERVING_WAL_AUTOCHECKPOINT`] pages: that is the safety net if the
//! checkpointer falls behind, and the moment the log starts again from its beginning (only a
//! checkpoint that finds no write after it lets the log restart, and under steady load that
//! is the writer's own), so the log's file stays bounded. By then the checkpointer has copied
//! nearly every page, and that commit has little left to do.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::task::JoinHandle;

/// How often the checkpointer copies the log into the database file.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Log pages (4 KiB each) past which the writing connection checkpoints by itself when a
/// [`Checkpointer`] runs: 16 MiB of log.
pub const SERVING_WAL_AUTOCHECKPOINT: u32 = 4096;

/// Checkpoints a SQLite file's log in the background for as long as it is kept (dropping it
/// stops them; the writing connection then checkpoints by itself, later than by default).
#[derive(Debug)]
pub struct Checkpointer {
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts checkpointing the file `url` names, on a connection of its own.
    pub(crate) async fn start(url: &str) -> Result<Self, DbErr> {
        let db = crate::db::open_sqlite(url, crate::db::DEFAULT_WAL_AUTOCHECKPOINT).await?;
        Ok(Self {
            task: tokio::spawn(run(db)),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(db: DatabaseConnection) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        every.tick().await;
        match db
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
        {
            Ok(_) if failing => {
                tracing::info!("WAL checkpoints resumed");
                failing = false;
            }
            Ok(_) => {}
            Err(err) if !failing => {
                tracing::warn!(%err, "WAL checkpoint failed; commits checkpoint by themselves");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, Statement};

    use super::*;
    use crate::db::connect_serving;

    /// Log pages of 1,000-byte rows, written in transactions of 1,000 rows.
    async fn write_megabytes(db: &DatabaseConnection, megabytes: usize) {
        for _ in 0..megabytes {
            db.execute_unprepared(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO t SELECT randomblob(1000) FROM n",
            )
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn a_served_file_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("served.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let (db, checkpointer) = connect_serving(&url).await.unwrap();
        assert!(checkpointer.is_some());
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA wal_autocheckpoint",
            ))
            .await
            .unwrap()
            .unwrap();
        let own: i64 = row.try_get_by_index(0).unwrap();
        assert_eq!(own, i64::from(SERVING_WAL_AUTOCHECKPOINT));

        // 8 MB: about 2,000 log pages, past SQLite's default threshold and below the
        // writer's own, so only the checkpointer copies them into the file.
        db.execute_unprepared("CREATE TABLE t (b BLOB)")
            .await
            .unwrap();
        write_megabytes(&db, 8).await;
        let copied = async {
            while std::fs::metadata(&file).map_or(0, |m| m.len()) < 8_000_000 {
                tokio::time::sleep(CHECKPOINT_EVERY / 10).await;
            }
        };
        tokio::time::timeout(CHECKPOINT_EVERY * 20, copied)
            .await
            .expect("the log was never copied into the database file");
    }

    #[tokio::test]
    async fn a_database_in_memory_has_no_checkpointer() {
        let (_db, checkpointer) = connect_serving("sqlite::memory:").await.unwrap();
        assert!(checkpointer.is_none());
    }
}
