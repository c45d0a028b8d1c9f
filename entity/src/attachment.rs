//! `attachments`, written by message-svc: uploads of end-to-end encrypted content.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    pub size: i64,
    /// SHA-256 of the whole content, checked when the last chunk arrives.
    pub sha256: Vec<u8>,
    pub received: i64,
    pub complete: bool,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
