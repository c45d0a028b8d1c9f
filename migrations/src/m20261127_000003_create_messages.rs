//! Messages: `conversation_heads`, `cursors`, `chat_history`, `attachments`,
//! `attachment_chunks` (message-svc's tables).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConversationHeads {
    Table,
    ConversationId,
    MaxSeq,
    LastMessageAt,
}

#[derive(DeriveIden)]
enum Cursors {
    Table,
    ConversationId,
    UserId,
    DeliveredSeq,
    ReadSeq,
}

#[derive(DeriveIden)]
enum ChatHistory {
    Table,
    Id,
    ConversationId,
    Seq,
    SenderId,
    ClientMsgId,
    SentAt,
    Envelope,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    OwnerId,
    Size,
    Sha256,
    Received,
    Complete,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AttachmentChunks {
    Table,
    AttachmentId,
    ChunkIndex,
    Data,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConversationHeads::Table)
                    .col(big_integer(ConversationHeads::ConversationId).primary_key())
                    .col(big_integer(ConversationHeads::MaxSeq))
                    .col(big_integer(ConversationHeads::LastMessageAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Cursors::Table)
                    .col(big_integer(Cursors::ConversationId))
                    .col(big_integer(Cursors::UserId))
                    .col(big_integer(Cursors::DeliveredSeq))
                    .col(big_integer(Cursors::ReadSeq))
                    .primary_key(
                        Index::create()
                            .col(Cursors::ConversationId)
                            .col(Cursors::UserId),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's cursors at login.
        manager
            .create_index(
                Index::create()
                    .name("idx_cursors_user")
                    .table(Cursors::Table)
                    .col(Cursors::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChatHistory::Table)
                    .col(big_pk_auto(ChatHistory::Id))
                    .col(big_integer(ChatHistory::ConversationId))
                    .col(big_integer(ChatHistory::Seq))
                    .col(big_integer(ChatHistory::SenderId))
                    .col(blob(ChatHistory::ClientMsgId))
                    .col(big_integer(ChatHistory::SentAt))
                    .col(blob(ChatHistory::Envelope))
                    .to_owned(),
            )
            .await?;
        // Sync and history read by (conversation, seq); seqs are unique per conversation.
        manager
            .create_index(
                Index::create()
                    .name("uq_chat_history_conversation_seq")
                    .table(ChatHistory::Table)
                    .col(ChatHistory::ConversationId)
                    .col(ChatHistory::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A retry is recognised by (conversation, sender, client message id).
        manager
            .create_index(
                Index::create()
                    .name("uq_chat_history_client_msg")
                    .table(ChatHistory::Table)
                    .col(ChatHistory::ConversationId)
                    .col(ChatHistory::SenderId)
                    .col(ChatHistory::ClientMsgId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(big_pk_auto(Attachments::Id))
                    .col(big_integer(Attachments::OwnerId))
                    .col(big_integer(Attachments::Size))
                    .col(blob(Attachments::Sha256))
                    .col(big_integer(Attachments::Received))
                    .col(boolean(Attachments::Complete))
                    .col(big_integer(Attachments::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AttachmentChunks::Table)
                    .col(big_integer(AttachmentChunks::AttachmentId))
                    .col(big_integer(AttachmentChunks::ChunkIndex))
                    .col(blob(AttachmentChunks::Data))
                    .primary_key(
                        Index::create()
                            .col(AttachmentChunks::AttachmentId)
                            .col(AttachmentChunks::ChunkIndex),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AttachmentChunks::Table.into_iden(),
            Attachments::Table.into_iden(),
            ChatHistory::Table.into_iden(),
            Cursors::Table.into_iden(),
            ConversationHeads::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
