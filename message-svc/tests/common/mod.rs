//! The stack message-svc's tests run against: real account-svc, social-svc and message-svc
//! over gRPC on 127.0.0.1, a recording gateway, and well-formed envelopes message-svc can
//! check but not open.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use message_svc::attachments::CHUNK_LEN;
use proto::account::RegisterGatewayRequest;
use proto::account::account_client::AccountClient;
use proto::common::Room;
use proto::internal::Authenticated;
use proto::message::message_client::MessageClient;
use proto::message::*;
use proto::social::social_client::SocialClient;
use proto::social::{CreateRoomRequest, JoinRoomRequest};
use protocol::UserId;
use protocol::e2e::{Envelope, Sealed, WRAPPED_KEY_LEN, WrappedKey};
use sea_orm::DatabaseConnection;
use serde_bytes::ByteBuf;
use service_kit::testing::{self, RecordingGateway};
use tokio::net::TcpListener;

/// The length of `direct(_, 60)`: a bincode variant index, IV, length, 60 blocks and MAC.
pub const PAGE_ENVELOPE: usize = 4 + 16 + 8 + 60 * 16 + 16;

/// The page size in bytes of the test stack: three `PAGE_ENVELOPE`s with their overhead.
pub const PAGE_MAX_BYTES: usize = 3 * (PAGE_ENVELOPE + message_svc::logic::MESSAGE_OVERHEAD);

/// The attachment limit of the test stack: three chunks and a bit.
pub const MAX_ATTACHMENT: u64 = 3 * CHUNK_LEN as u64 + 100;

pub struct Stack {
    pub account: AccountClient<Authenticated>,
    pub social: SocialClient<Authenticated>,
    pub message: MessageClient<Authenticated>,
    pub gateway: RecordingGateway,
    pub db: DatabaseConnection,
    pub message_url: String,
}

/// A one-to-one envelope of `blocks` ciphertext blocks of `fill`: message-svc cannot open an
/// envelope, only check its outer structure, so any well-formed one will do.
pub fn direct(fill: u8, blocks: usize) -> Vec<u8> {
    Envelope::Direct(sealed(fill, blocks)).encode().unwrap()
}

/// A group envelope with a key wrapped for each of `members`.
pub fn group(fill: u8, members: &[u64]) -> Vec<u8> {
    let keys = members
        .iter()
        .map(|&member| WrappedKey {
            recipient: UserId(member),
            iv: [fill; 16],
            wrapped: ByteBuf::from(vec![fill; WRAPPED_KEY_LEN]),
            mac: [fill; 16],
        })
        .collect();
    let body = sealed(fill, 2);
    Envelope::Group { body, keys }.encode().unwrap()
}

pub fn sealed(fill: u8, blocks: usize) -> Sealed {
    Sealed {
        iv: [fill; 16],
        ciphertext: ByteBuf::from(vec![fill; 16 * blocks]),
        mac: [fill; 16],
    }
}

pub async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// message-svc's settings in these tests: limits small enough to reach.
pub fn test_config() -> message_svc::Config {
    message_svc::Config {
        max_envelope_bytes: 1024,
        sync_page_max: 50,
        page_max_bytes: PAGE_MAX_BYTES,
        max_attachment_bytes: MAX_ATTACHMENT,
        ..message_svc::Config::default()
    }
}

pub async fn start(db: DatabaseConnection) -> Stack {
    start_with(db, test_config()).await
}

pub async fn start_with(db: DatabaseConnection, config: message_svc::Config) -> Stack {
    let account_config = account_svc::Config {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        ..account_svc::Config::default()
    };
    let (l, account_url) = listen().await;
    tokio::spawn(account_svc::serve(
        l,
        db.clone(),
        testing::internal_key(),
        account_config,
        std::future::pending(),
    ));
    let (l, social_url) = listen().await;
    tokio::spawn(social_svc::serve(
        l,
        db.clone(),
        testing::internal_key(),
        std::future::pending(),
    ));
    let (l, message_url) = listen().await;
    tokio::spawn(message_svc::serve(
        l,
        db.clone(),
        testing::internal_key(),
        config,
        std::future::pending(),
    ));
    let mut account = AccountClient::new(testing::channel(&account_url).await);
    let (gateway, push_addr) = RecordingGateway::start().await;
    account
        .register_gateway(RegisterGatewayRequest {
            gateway_id: "gw".into(),
            push_addr,
        })
        .await
        .unwrap();
    Stack {
        account,
        social: SocialClient::new(testing::channel(&social_url).await),
        message: MessageClient::new(testing::channel(&message_url).await),
        gateway,
        db,
        message_url,
    }
}

impl Stack {
    /// Registers `name`, and logs them in when `online`; returns the user id.
    pub async fn user(&mut self, name: &str, online: bool) -> u64 {
        let id = testing::register(&mut self.account, name).await;
        if online {
            testing::log_in(&mut self.account, name, id, 1).await;
        }
        id
    }

    /// Makes `a` and `b` friends; returns their conversation.
    pub async fn befriend(&mut self, a: u64, b: u64) -> u64 {
        testing::befriend(&mut self.social, a, b).await
    }

    /// A group named `name`, created by `owner`.
    pub async fn room(&mut self, owner: u64, name: &str) -> Room {
        self.social
            .create_room(CreateRoomRequest {
                user_id: owner,
                name: name.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap()
    }

    /// Registers `names` (logged in when `online`) and has them join `room`; returns their
    /// ids.
    pub async fn join(&mut self, room: &Room, names: &[&str], online: bool) -> Vec<u64> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            let id = self.user(name, online).await;
            self.social
                .join_room(JoinRoomRequest {
                    user_id: id,
                    room_id: room.id,
                })
                .await
                .unwrap();
            ids.push(id);
        }
        ids
    }

    /// `user`'s counters in `conversation`.
    pub async fn state(&mut self, user: u64, conversation: u64) -> ConversationState {
        let states = self
            .message
            .conversation_states(ConversationStatesRequest { user_id: user })
            .await
            .unwrap()
            .into_inner()
            .states;
        states
            .into_iter()
            .find(|s| s.conversation_id == conversation)
            .unwrap()
    }

    pub async fn send(
        &mut self,
        sender: u64,
        conversation: u64,
        id: u8,
    ) -> Result<SendResponse, tonic::Status> {
        self.message
            .send(SendRequest {
                sender_id: sender,
                conversation_id: conversation,
                client_msg_id: vec![id; 16],
                envelope: direct(id, 1),
            })
            .await
            .map(|r| r.into_inner())
    }
}
