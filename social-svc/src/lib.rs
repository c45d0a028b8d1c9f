//! social-svc: friend requests, friendships and groups.
//!
//! Layers: [`rpc`] decodes and maps errors (in [`error`]), [`logic`] holds the pure rules,
//! [`store`] the database access. It writes `friends`, `conversations`, `rooms` and
//! `room_user`; it reads `users`, `sessions` and `gateways` (account-svc's) for names and
//! presence, and `conversation_heads` (message-svc's) for last message times. Every change
//! another user must see is pushed to that user's gateway once committed.

pub mod error;
pub mod logic;
pub mod rpc;
pub mod store;

use std::future::Future;

use proto::internal::{InternalKey, Require};
use proto::social::social_server::SocialServer;
use sea_orm::DatabaseConnection;
use service_kit::push::Pusher;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use crate::error::Error;
pub use crate::rpc::SocialRpc;

/// The tonic service, refusing calls without the internal key, for a router that serves
/// several services.
pub fn service(
    db: DatabaseConnection,
    push: Pusher,
    key: &InternalKey,
) -> InterceptedService<SocialServer<SocialRpc>, Require> {
    SocialServer::with_interceptor(SocialRpc::new(db, push), key.require())
}

/// Serves social-svc on `listener` until `shutdown` resolves. Callers, and the gateways it
/// pushes to, authenticate with `key`.
pub async fn serve(
    listener: TcpListener,
    db: DatabaseConnection,
    key: InternalKey,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let router =
        service_kit::server().add_service(service(db.clone(), Pusher::new(key.clone()), &key));
    service_kit::serve_router(router, listener, &db, shutdown).await
}
