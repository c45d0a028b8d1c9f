//! The migrations apply, revert and apply again on every backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use migrations::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use service_kit::testing::databases;

#[tokio::test]
async fn migrations_are_reversible_on_every_backend() {
    for test in databases().await {
        // `databases` hands them out migrated.
        let applied = Migrator::get_applied_migrations(&test.db).await.unwrap();
        assert_eq!(
            applied.len(),
            Migrator::migrations().len(),
            "{}",
            test.backend
        );
        Migrator::down(&test.db, None).await.unwrap();
        assert!(
            Migrator::get_applied_migrations(&test.db)
                .await
                .unwrap()
                .is_empty()
        );
        let gone = test.db.execute_unprepared("SELECT id FROM users").await;
        assert!(gone.is_err(), "{}: users should be dropped", test.backend);
        Migrator::up(&test.db, None).await.unwrap();
        test.db
            .execute_unprepared("INSERT INTO conversations (kind, created_at) VALUES (1, 0)")
            .await
            .unwrap();
        assert!(
            Migrator::get_pending_migrations(&test.db)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
