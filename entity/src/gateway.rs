//! `gateways`, written by account-svc: live gateways, their push address and lease.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gateways")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// host:port of the gateway's Push gRPC service.
    pub push_addr: String,
    /// Sessions on a gateway whose lease expired count as offline and are cleaned up.
    pub lease_expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
