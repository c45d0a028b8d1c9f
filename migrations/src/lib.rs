//! The Uchat schema as SeaORM migrations, identical on SQLite and PostgreSQL.
//!
//! Each migration is self-contained (it names tables and columns itself and imports nothing
//! from `entity`) and reversible. [`Migrator::up`] applies what is pending; `uchat-server` and
//! the split stack's one-shot `migrate` run it before any service starts.

mod m20261127_000001_create_accounts;
mod m20261127_000002_create_social;
mod m20261127_000003_create_messages;
mod m20261129_000004_account_keys;

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_accounts::Migration),
            Box::new(m20261127_000002_create_social::Migration),
            Box::new(m20261127_000003_create_messages::Migration),
            Box::new(m20261129_000004_account_keys::Migration),
        ]
    }
}
