//! The services called in process, as `uchat-server` calls them: no listener anywhere, the
//! same calls, the same internal key required, pushes to a gateway of the same process.
//! Against SQLite (memory and file) and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use proto::account::RegisterGatewayRequest;
use proto::account::account_client::AccountClient;
use proto::message::SendRequest;
use proto::message::message_client::MessageClient;
use proto::social::social_client::SocialClient;
use service_kit::push::Pusher;
use service_kit::testing::{self, Pushed, RecordingGateway, databases};

use common::{direct, test_config};

/// The push address the gateway advertises: nothing listens there (a name that never
/// resolves), so a push arrives only if it went in process.
const NOWHERE: &str = "in-process.invalid:1";

#[tokio::test]
async fn a_message_is_stored_and_pushed_without_a_socket() {
    for test in databases().await {
        let key = testing::internal_key();
        let (gateway, to_gateway) = RecordingGateway::in_process();
        let push = Pusher::new(key.clone()).with_local(NOWHERE.into(), to_gateway);
        let account_config = account_svc::Config {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            ..account_svc::Config::default()
        };
        let (account, sweeper) =
            account_svc::start(test.db.clone(), account_config, push.clone(), &key)
                .await
                .unwrap();
        let social = social_svc::service(test.db.clone(), push.clone(), &key);
        let message =
            message_svc::service(test.db.clone().into(), Arc::new(test_config()), push, &key);
        let mut account = AccountClient::new(key.authenticate(service_kit::in_process(account)));
        let mut social = SocialClient::new(key.authenticate(service_kit::in_process(social)));
        let mut messages =
            MessageClient::new(key.authenticate(service_kit::in_process(message.clone())));

        account
            .register_gateway(RegisterGatewayRequest {
                gateway_id: "gw".into(),
                push_addr: NOWHERE.into(),
            })
            .await
            .unwrap();
        let amy = testing::register(&mut account, "amy").await;
        let bo = testing::register(&mut account, "bo").await;
        testing::log_in(&mut account, "bo", 1, 1).await;
        let conversation = testing::befriend(&mut social, amy, bo).await;
        let send = SendRequest {
            sender_id: amy,
            conversation_id: conversation,
            client_msg_id: vec![1; 16],
            envelope: direct(5, 1),
        };
        let stored = messages.send(send.clone()).await.unwrap().into_inner();
        gateway
            .wait_for("amy's message, pushed in process", |p| {
                matches!(p, Pushed::Deliver(d) if d.deliveries.iter().any(|d| {
                    d.target.as_ref().is_some_and(|t| t.user_id == bo)
                        && d.message.as_ref().is_some_and(|m| m.seq == stored.seq)
                }))
            })
            .await;

        // In process as over the network, a caller without the key is refused before the
        // handler runs.
        let mut stranger = MessageClient::new(service_kit::in_process(message));
        let refused = stranger.send(send).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::Unauthenticated,
            "{}",
            test.backend
        );
        sweeper.abort();
    }
}
