//! Accounts: `users`, `sessions`, `gateways` (account-svc's tables).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
    Email,
    EmailKey,
    PasswordHash,
    Sex,
    Age,
    PublicKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserId,
    SessionId,
    Epoch,
    Online,
    GatewayId,
    PeerIp,
    PeerPort,
    Since,
}

#[derive(DeriveIden)]
enum Gateways {
    Table,
    Id,
    PushAddr,
    LeaseExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string(Users::Username))
                    .col(string_uniq(Users::UsernameKey))
                    .col(string(Users::Email))
                    .col(string_uniq(Users::EmailKey))
                    .col(string(Users::PasswordHash))
                    .col(small_integer(Users::Sex))
                    .col(small_integer(Users::Age))
                    .col(blob(Users::PublicKey))
                    .col(big_integer(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(big_integer(Sessions::UserId).primary_key())
                    .col(big_integer(Sessions::SessionId))
                    .col(big_integer(Sessions::Epoch))
                    .col(boolean(Sessions::Online))
                    .col(string(Sessions::GatewayId))
                    .col(string(Sessions::PeerIp))
                    .col(integer(Sessions::PeerPort))
                    .col(big_integer(Sessions::Since))
                    .to_owned(),
            )
            .await?;
        // Finding a gateway's sessions when its lease expires, and the online list.
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_gateway_online")
                    .table(Sessions::Table)
                    .col(Sessions::GatewayId)
                    .col(Sessions::Online)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Gateways::Table)
                    .col(string(Gateways::Id).primary_key())
                    .col(string(Gateways::PushAddr))
                    .col(big_integer(Gateways::LeaseExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Gateways::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}
