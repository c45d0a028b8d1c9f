//! `chat_history`, written by message-svc: one row per message, its envelope opaque.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: i64,
    /// Position in the conversation, from 1, without gaps; unique with the conversation.
    pub seq: i64,
    pub sender_id: i64,
    /// 16 bytes; unique with the conversation and sender, so a retry is recognised.
    pub client_msg_id: Vec<u8>,
    pub sent_at: i64,
    /// The end-to-end encrypted envelope.
    pub envelope: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
