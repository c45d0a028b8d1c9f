//! The data directory's second SQLite file: attachments' bytes, apart from the messages (see
//! `message_svc::Stores` for why), and the move of attachments a server stored in its main
//! file before it had the second.

use std::path::Path;

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use service_kit::db::{Checkpointer, connect_serving};

/// The attachments' SQLite file name in the data directory.
pub const ATTACHMENTS_FILE: &str = "attachments.db";

/// The name the main file is attached under while its attachments move.
const MAIN: &str = "main_file";

/// The SQLite URL of the data directory's attachments file.
pub fn attachments_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(ATTACHMENTS_FILE).display()
    )
}

/// Opens the data directory's attachments file (creating and migrating it: it has the main
/// file's schema, of which only the attachment tables are written), then moves into it the
/// attachments the main file `main` holds. Keep the checkpointer as long as the connection.
pub async fn open(
    data_dir: &Path,
    main: &Path,
) -> anyhow::Result<(DatabaseConnection, Option<Checkpointer>)> {
    let (files, checkpointer) = connect_serving(&attachments_url(data_dir))
        .await
        .context("cannot open the attachments database")?;
    Migrator::up(&files, None)
        .await
        .context("cannot migrate the attachments database")?;
    let moved = move_from(main, &files)
        .await
        .with_context(|| format!("cannot move the attachments of {}", main.display()))?;
    if moved > 0 {
        tracing::info!(
            moved,
            file = ATTACHMENTS_FILE,
            "attachments moved to their own file"
        );
    }
    Ok((files, checkpointer))
}

/// Moves the attachments of the SQLite file `main` into `files`; returns how many. Copied in
/// one transaction, then deleted from `main` in another: a crash between leaves them in both
/// (the next start's copy skips those already there, then deletes), never in neither.
async fn move_from(main: &Path, files: &DatabaseConnection) -> anyhow::Result<i64> {
    let path = main.to_str().context("the database's path is not UTF-8")?;
    files
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!("ATTACH DATABASE ? AS {MAIN}"),
            [path.into()],
        ))
        .await?;
    let moved = copy_then_delete(files).await;
    files
        .execute_unprepared(&format!("DETACH DATABASE {MAIN}"))
        .await?;
    moved
}

async fn copy_then_delete(files: &DatabaseConnection) -> anyhow::Result<i64> {
    let count = files
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("SELECT count(*) FROM {MAIN}.attachments"),
        ))
        .await?
        .context("no count")?
        .try_get_by_index::<i64>(0)?;
    if count == 0 {
        return Ok(0);
    }
    let copy = files.begin().await?;
    for table in ["attachments", "attachment_chunks"] {
        copy.execute_unprepared(&format!(
            "INSERT OR IGNORE INTO {table} SELECT * FROM {MAIN}.{table}"
        ))
        .await?;
    }
    copy.commit().await?;
    let delete = files.begin().await?;
    for table in ["attachment_chunks", "attachments"] {
        delete
            .execute_unprepared(&format!("DELETE FROM {MAIN}.{table}"))
            .await?;
    }
    delete.commit().await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use entity::{attachment, attachment_chunk};
    use sea_orm::{EntityTrait, PaginatorTrait, Set};

    use super::*;

    async fn store_attachment(db: &DatabaseConnection, id: i64) {
        attachment::Entity::insert(attachment::ActiveModel {
            id: Set(id),
            owner_id: Set(1),
            size: Set(3),
            sha256: Set(vec![0; 32]),
            received: Set(3),
            complete: Set(true),
            created_at: Set(0),
        })
        .exec_without_returning(db)
        .await
        .unwrap();
        attachment_chunk::Entity::insert(attachment_chunk::ActiveModel {
            attachment_id: Set(id),
            chunk_index: Set(0),
            data: Set(vec![1, 2, 3]),
        })
        .exec_without_returning(db)
        .await
        .unwrap();
    }

    async fn migrated(url: &str) -> (DatabaseConnection, Option<Checkpointer>) {
        let (db, checkpointer) = connect_serving(url).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        (db, checkpointer)
    }

    async fn counts(db: &DatabaseConnection) -> (u64, u64) {
        (
            attachment::Entity::find().count(db).await.unwrap(),
            attachment_chunk::Entity::find().count(db).await.unwrap(),
        )
    }

    #[tokio::test]
    async fn attachments_of_the_main_file_move_to_their_own_once() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join(crate::DATABASE_FILE);
        let (db, _checkpointer) = migrated(&crate::sqlite_url(dir.path())).await;
        store_attachment(&db, 7).await;
        store_attachment(&db, 8).await;

        let (files, _files_checkpointer) = open(dir.path(), &main).await.unwrap();
        assert_eq!(counts(&files).await, (2, 2));
        assert_eq!(counts(&db).await, (0, 0));
        let chunk = attachment_chunk::Entity::find_by_id((7, 0))
            .one(&files)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(chunk.data, vec![1, 2, 3]);

        // A second start finds nothing to move and keeps what moved.
        drop((files, _files_checkpointer));
        let (files, _files_checkpointer) = open(dir.path(), &main).await.unwrap();
        assert_eq!(counts(&files).await, (2, 2));
    }

    #[tokio::test]
    async fn a_move_interrupted_after_its_copy_finishes_without_doubles() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join(crate::DATABASE_FILE);
        let (db, _checkpointer) = migrated(&crate::sqlite_url(dir.path())).await;
        store_attachment(&db, 7).await;
        // As if a start copied attachment 7, then stopped before deleting it from the main
        // file.
        let (files, _files_checkpointer) = migrated(&attachments_url(dir.path())).await;
        store_attachment(&files, 7).await;
        drop((files, _files_checkpointer));

        let (files, _files_checkpointer) = open(dir.path(), &main).await.unwrap();
        assert_eq!(counts(&files).await, (1, 1));
        assert_eq!(counts(&db).await, (0, 0));
    }
}
