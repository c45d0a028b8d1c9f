//! Social: `conversations`, `friends`, `rooms`, `room_user` (social-svc's tables).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Friends {
    Table,
    FromUserId,
    ToUserId,
    Accepted,
    ConversationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
    Name,
    NameKey,
    ConversationId,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RoomUser {
    Table,
    RoomId,
    UserId,
    JoinedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(big_pk_auto(Conversations::Id))
                    .col(small_integer(Conversations::Kind))
                    .col(big_integer(Conversations::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Friends::Table)
                    .col(big_integer(Friends::FromUserId))
                    .col(big_integer(Friends::ToUserId))
                    .col(boolean(Friends::Accepted))
                    .col(big_integer_null(Friends::ConversationId))
                    .col(big_integer(Friends::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Friends::FromUserId)
                            .col(Friends::ToUserId),
                    )
                    .to_owned(),
            )
            .await?;
        // Requests waiting for a user's answer, and the reverse side of friendships.
        manager
            .create_index(
                Index::create()
                    .name("idx_friends_to_accepted")
                    .table(Friends::Table)
                    .col(Friends::ToUserId)
                    .col(Friends::Accepted)
                    .to_owned(),
            )
            .await?;
        // Message authorisation: who may write to a direct conversation.
        manager
            .create_index(
                Index::create()
                    .name("idx_friends_conversation")
                    .table(Friends::Table)
                    .col(Friends::ConversationId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .col(big_pk_auto(Rooms::Id))
                    .col(string(Rooms::Name))
                    .col(string_uniq(Rooms::NameKey))
                    .col(big_integer_uniq(Rooms::ConversationId))
                    .col(big_integer(Rooms::CreatedBy))
                    .col(big_integer(Rooms::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomUser::Table)
                    .col(big_integer(RoomUser::RoomId))
                    .col(big_integer(RoomUser::UserId))
                    .col(big_integer(RoomUser::JoinedAt))
                    .primary_key(Index::create().col(RoomUser::RoomId).col(RoomUser::UserId))
                    .to_owned(),
            )
            .await?;
        // A user's rooms.
        manager
            .create_index(
                Index::create()
                    .name("idx_room_user_user")
                    .table(RoomUser::Table)
                    .col(RoomUser::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RoomUser::Table.into_iden(),
            Rooms::Table.into_iden(),
            Friends::Table.into_iden(),
            Conversations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
