//! `sessions`, written by account-svc: each user's current (or last) session.
//!
//! The row outlives a logout (`online` false) so that `epoch` only ever grows: a push stamped
//! with an older epoch is stale and the gateway drops it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// The gateway's id for the connection.
    pub session_id: i64,
    pub epoch: i64,
    pub online: bool,
    pub gateway_id: String,
    pub peer_ip: String,
    pub peer_port: i32,
    pub since: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
