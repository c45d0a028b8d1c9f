//! `conversation_heads`, written by message-svc: each conversation's newest seq and time.
//!
//! Kept apart from `conversations` so that each table has one writer: social-svc creates
//! conversations, message-svc numbers their messages.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: i64,
    pub max_seq: i64,
    pub last_message_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
