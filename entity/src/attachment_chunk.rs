//! `attachment_chunks`, written by message-svc: the content of attachments, chunk by chunk.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachment_chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub attachment_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub chunk_index: i64,
    pub data: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
