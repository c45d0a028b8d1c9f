//! `friends`, written by social-svc: friend requests and friendships.
//!
//! A pending request is one row `from → to` with `accepted` false. A friendship is two rows,
//! one each way, both accepted and naming the pair's conversation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "friends")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub from_user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub to_user_id: i64,
    pub accepted: bool,
    pub conversation_id: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
