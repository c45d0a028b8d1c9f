//! Protocol 2's accounts: how each password is stretched, the wrapped private key and its
//! version (`users`), and account-svc's own secrets (`account_secrets`).
//!
//! Accounts made before this keep NULL parameters and cannot log in with protocol 2; none
//! exist outside tests (see docs/SECURITY.md, "Accounts made before protocol 2").

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    KdfSalt,
    KdfMemoryKib,
    KdfIterations,
    KdfParallelism,
    KeyVersion,
    WrappedKey,
}

#[derive(DeriveIden)]
enum AccountSecrets {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        let columns = [
            blob_null(Users::KdfSalt),
            integer(Users::KdfMemoryKib).default(0).to_owned(),
            integer(Users::KdfIterations).default(0).to_owned(),
            integer(Users::KdfParallelism).default(0).to_owned(),
            integer(Users::KeyVersion).default(1).to_owned(),
            blob_null(Users::WrappedKey),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AccountSecrets::Table)
                    .col(string(AccountSecrets::Name).primary_key())
                    .col(blob(AccountSecrets::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountSecrets::Table).to_owned())
            .await?;
        for column in [
            Users::WrappedKey,
            Users::KeyVersion,
            Users::KdfParallelism,
            Users::KdfIterations,
            Users::KdfMemoryKib,
            Users::KdfSalt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
