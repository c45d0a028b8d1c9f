//! `rooms`, written by social-svc: groups; the id is the number people join by.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// As created, NFC-normalised.
    pub name: String,
    /// Lowercased `name`: unique.
    #[sea_orm(unique)]
    pub name_key: String,
    pub conversation_id: i64,
    pub created_by: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
