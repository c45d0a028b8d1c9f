//! message-svc over real gRPC on 127.0.0.1, beside real account-svc and social-svc, against
//! SQLite (memory and file) and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use entity::{attachment, attachment_chunk};
use message_svc::attachments::CHUNK_LEN;
use proto::account::RegisterGatewayRequest;
use proto::account::account_client::AccountClient;
use proto::common::ErrorCode;
use proto::internal::Authenticated;
use proto::message::message_client::MessageClient;
use proto::message::*;
use proto::social::social_client::SocialClient;
use proto::social::{CreateRoomRequest, DeleteFriendRequest, JoinRoomRequest};
use protocol::UserId;
use protocol::e2e::{Envelope, Sealed, WRAPPED_KEY_LEN, WrappedKey};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_bytes::ByteBuf;
use service_kit::status::error_code;
use service_kit::testing::{self, Pushed, RecordingGateway, databases};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The length of `direct(_, 60)`: a bincode variant index, IV, length, 60 blocks and MAC.
const PAGE_ENVELOPE: usize = 4 + 16 + 8 + 60 * 16 + 16;

/// The page size in bytes of the test stack: three `PAGE_ENVELOPE`s with their overhead.
const PAGE_MAX_BYTES: usize = 3 * (PAGE_ENVELOPE + message_svc::logic::MESSAGE_OVERHEAD);

/// The attachment limit of the test stack: three chunks and a bit.
const MAX_ATTACHMENT: u64 = 3 * CHUNK_LEN as u64 + 100;

struct Stack {
    account: AccountClient<Authenticated>,
    social: SocialClient<Authenticated>,
    message: MessageClient<Authenticated>,
    gateway: RecordingGateway,
    db: DatabaseConnection,
    message_url: String,
}

/// A one-to-one envelope of `blocks` ciphertext blocks of `fill`: message-svc cannot open an
/// envelope, only check its outer structure, so any well-formed one will do.
fn direct(fill: u8, blocks: usize) -> Vec<u8> {
    Envelope::Direct(sealed(fill, blocks)).encode().unwrap()
}

/// A group envelope with a key wrapped for each of `members`.
fn group(fill: u8, members: &[u64]) -> Vec<u8> {
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

fn sealed(fill: u8, blocks: usize) -> Sealed {
    Sealed {
        iv: [fill; 16],
        ciphertext: ByteBuf::from(vec![fill; 16 * blocks]),
        mac: [fill; 16],
    }
}

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// message-svc's settings in these tests: limits small enough to reach.
fn test_config() -> message_svc::Config {
    message_svc::Config {
        max_envelope_bytes: 1024,
        sync_page_max: 50,
        page_max_bytes: PAGE_MAX_BYTES,
        max_attachment_bytes: MAX_ATTACHMENT,
        ..message_svc::Config::default()
    }
}

async fn start(db: DatabaseConnection) -> Stack {
    start_with(db, test_config()).await
}

async fn start_with(db: DatabaseConnection, config: message_svc::Config) -> Stack {
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
    async fn user(&mut self, name: &str, online: bool) -> u64 {
        let id = testing::register(&mut self.account, name).await;
        if online {
            testing::log_in(&mut self.account, name, id, 1).await;
        }
        id
    }

    /// Makes `a` and `b` friends; returns their conversation.
    async fn befriend(&mut self, a: u64, b: u64) -> u64 {
        testing::befriend(&mut self.social, a, b).await
    }

    /// `user`'s counters in `conversation`.
    async fn state(&mut self, user: u64, conversation: u64) -> ConversationState {
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

    async fn send(
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

#[tokio::test]
async fn a_retry_is_stored_once_and_pushed_again_as_stored() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (amy, bo) = (stack.user("amy", false).await, stack.user("bo", true).await);
        let conversation = stack.befriend(amy, bo).await;
        let first = stack.send(amy, conversation, 1).await.unwrap();
        // The retry seals again (another envelope under the same id): the first one stays.
        let retry = stack
            .message
            .send(SendRequest {
                sender_id: amy,
                conversation_id: conversation,
                client_msg_id: vec![1; 16],
                envelope: direct(9, 1),
            })
            .await
            .unwrap()
            .into_inner();
        let second = stack.send(amy, conversation, 2).await.unwrap();
        assert_eq!(
            (first.seq, retry.seq, second.seq),
            (1, 1, 2),
            "{}",
            test.backend
        );
        assert_eq!(first.sent_at, retry.sent_at);

        stack
            .gateway
            .wait_for("bo's second message", |p| {
                matches!(p, Pushed::Deliver(d) if d.deliveries.iter().any(|d| d.message.as_ref().is_some_and(|m| m.seq == 2)))
            })
            .await;
        let delivered: Vec<(u64, Vec<u8>)> = stack
            .gateway
            .deliveries()
            .into_iter()
            .map(|d| {
                assert_eq!(d.target.unwrap().user_id, bo);
                let message = d.message.unwrap();
                (message.seq, message.envelope)
            })
            .collect();
        // A retry means its sender had no answer: the first attempt's push may have died
        // with its replica, so the message is pushed again, as stored.
        assert_eq!(
            delivered,
            [(1, direct(1, 1)), (1, direct(1, 1)), (2, direct(2, 1))],
            "{}",
            test.backend
        );
    }
}

#[tokio::test]
async fn a_lone_message_does_not_wait_for_company() {
    // A batch waits for more sends only after one that had company; alone, a message is
    // stored at once. With a wait this long, a lone send that waited would time out.
    let config = message_svc::Config {
        batch_wait_us: 60_000_000,
        ..test_config()
    };
    for test in databases().await {
        let mut stack = start_with(test.db, config.clone()).await;
        let (amy, bo) = (
            stack.user("amy", false).await,
            stack.user("bo", false).await,
        );
        let conversation = stack.befriend(amy, bo).await;
        for id in 1..=3 {
            let sent = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                stack.send(amy, conversation, id),
            )
            .await;
            assert_eq!(
                sent.expect("the lone send waited").unwrap().seq,
                u64::from(id),
                "{}",
                test.backend
            );
        }
    }
}

#[tokio::test]
async fn pushes_skip_sessions_on_a_gateway_whose_lease_ran_out() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, Set};
    for test in databases().await {
        let mut stack = start(test.db).await;
        let amy = stack.user("amy", false).await;
        let (bo, cy) = (stack.user("bo", true).await, stack.user("cy", true).await);
        let (amy_bo, amy_cy) = (stack.befriend(amy, bo).await, stack.befriend(amy, cy).await);
        // bo's session is on a gateway that stopped renewing its lease and has not been swept
        // yet; it has the same push address as cy's, so a push to bo would still be seen.
        let live = entity::gateway::Entity::find_by_id("gw".to_owned())
            .one(&stack.db)
            .await
            .unwrap()
            .unwrap();
        entity::gateway::ActiveModel {
            id: Set("gone".into()),
            push_addr: Set(live.push_addr),
            lease_expires_at: Set(service_kit::now_ms() - 1_000),
        }
        .insert(&stack.db)
        .await
        .unwrap();
        entity::session::Entity::update_many()
            .col_expr(
                entity::session::Column::GatewayId,
                sea_orm::sea_query::Expr::value("gone"),
            )
            .filter(entity::session::Column::UserId.eq(bo))
            .exec(&stack.db)
            .await
            .unwrap();
        stack.send(amy, amy_bo, 1).await.unwrap();
        stack.send(amy, amy_cy, 2).await.unwrap();

        // Pushes leave in the order stored: once cy's is seen, bo's would have been.
        stack
            .gateway
            .wait_for("cy's message", |p| {
                matches!(p, Pushed::Deliver(d) if d.deliveries.iter().any(|d| d.message.as_ref().is_some_and(|m| m.conversation_id == amy_cy)))
            })
            .await;
        let delivered: Vec<u64> = stack
            .gateway
            .deliveries()
            .into_iter()
            .map(|d| d.target.unwrap().user_id)
            .collect();
        assert_eq!(delivered, [cy], "{}", test.backend);
    }
}

#[tokio::test]
async fn only_friends_and_members_may_write_and_limits_hold() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (cy, di, ed) = (
            stack.user("cy", false).await,
            stack.user("di", false).await,
            stack.user("ed", false).await,
        );
        let conversation = stack.befriend(cy, di).await;
        let code = |r: Result<SendResponse, tonic::Status>| error_code(&r.unwrap_err());
        assert_eq!(
            code(stack.send(ed, conversation, 1).await),
            ErrorCode::NotFriends,
            "{}",
            test.backend
        );
        assert_eq!(
            code(stack.send(cy, 999_999, 1).await),
            ErrorCode::ConversationNotFound
        );
        let room = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: cy,
                name: "club".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap();
        assert_eq!(
            code(stack.send(ed, room.conversation_id, 1).await),
            ErrorCode::NotMember
        );

        let mut big = SendRequest {
            sender_id: cy,
            conversation_id: conversation,
            client_msg_id: vec![9; 16],
            envelope: vec![0; 1025],
        };
        let status = stack.message.send(big.clone()).await.unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::TooLarge);
        assert!(status.message().contains("1024"), "{}", status.message());
        big.envelope = vec![0; 10];
        big.client_msg_id = vec![1; 3];
        let status = stack.message.send(big).await.unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::InvalidRequest);

        stack.send(cy, conversation, 1).await.unwrap();
        stack
            .social
            .delete_friend(DeleteFriendRequest {
                user_id: di,
                friend_id: cy,
            })
            .await
            .unwrap();
        assert_eq!(
            code(stack.send(cy, conversation, 2).await),
            ErrorCode::NotFriends
        );
        // Nothing of the refused sends was stored.
        let states = stack
            .message
            .conversation_states(ConversationStatesRequest { user_id: cy })
            .await
            .unwrap()
            .into_inner()
            .states;
        assert_eq!(states.len(), 1, "only the room is left");
    }
}

#[tokio::test]
async fn envelopes_are_checked_without_being_opened() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (ida, jo, kit) = (
            stack.user("ida", false).await,
            stack.user("jo", false).await,
            stack.user("kit", false).await,
        );
        let direct_conversation = stack.befriend(ida, jo).await;
        let room = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: ida,
                name: "sealed".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap();
        let send = |conversation: u64, id: u8, envelope: Vec<u8>| SendRequest {
            sender_id: ida,
            conversation_id: conversation,
            client_msg_id: vec![id; 16],
            envelope,
        };
        let refused = |request: SendRequest| {
            let mut client = stack.message.clone();
            async move { client.send(request).await.unwrap_err() }
        };

        let status = refused(send(direct_conversation, 1, b"garbage".to_vec())).await;
        assert_eq!(
            error_code(&status),
            ErrorCode::InvalidRequest,
            "{}",
            test.backend
        );
        assert!(
            status.message().contains("envelope"),
            "{}",
            status.message()
        );
        let status = refused(send(room.conversation_id, 2, direct(2, 1))).await;
        assert_eq!(error_code(&status), ErrorCode::InvalidRequest);
        assert!(status.message().contains("group"), "{}", status.message());
        let status = refused(send(direct_conversation, 3, group(3, &[ida, jo]))).await;
        assert_eq!(error_code(&status), ErrorCode::InvalidRequest);

        // Sealed for the members the sender knew; someone joined since.
        stack
            .social
            .join_room(JoinRoomRequest {
                user_id: kit,
                room_id: room.id,
            })
            .await
            .unwrap();
        let status = refused(send(room.conversation_id, 4, group(4, &[ida]))).await;
        assert_eq!(error_code(&status), ErrorCode::MembersChanged);
        let status = refused(send(room.conversation_id, 4, group(4, &[ida, kit, jo]))).await;
        assert_eq!(
            error_code(&status),
            ErrorCode::MembersChanged,
            "not a member"
        );
        // Sealed again for the current members under the same id, it is stored.
        let stored = stack
            .message
            .send(send(room.conversation_id, 4, group(4, &[kit, ida])))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stored.seq, 1, "nothing refused took a seq");
    }
}

#[tokio::test]
async fn concurrent_senders_in_a_group_get_unique_gap_free_seqs() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let owner = stack.user("owner", false).await;
        let room = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: owner,
                name: "busy".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap();
        let mut members = vec![owner];
        for name in ["m1", "m2", "m3", "m4"] {
            let id = stack.user(name, false).await;
            stack
                .social
                .join_room(JoinRoomRequest {
                    user_id: id,
                    room_id: room.id,
                })
                .await
                .unwrap();
            members.push(id);
        }
        let per_sender = 40u8;
        let tasks: Vec<_> = members
            .iter()
            .map(|&member| {
                let mut client = stack.message.clone();
                let conversation = room.conversation_id;
                let members = members.clone();
                tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for i in 0..per_sender {
                        let response = client
                            .send(SendRequest {
                                sender_id: member,
                                conversation_id: conversation,
                                client_msg_id: [vec![i; 8], member.to_be_bytes().to_vec()].concat(),
                                envelope: group(i, &members),
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        seqs.push(response.seq);
                    }
                    seqs
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            let seqs = task.await.unwrap();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "one sender's messages keep their order"
            );
            all.extend(seqs);
        }
        all.sort_unstable();
        let total = members.len() as u64 * u64::from(per_sender);
        assert_eq!(all, (1..=total).collect::<Vec<_>>(), "{}", test.backend);

        // History pages back through all of them, newest first.
        let mut seen = Vec::new();
        let mut before = 0;
        loop {
            let page = stack
                .message
                .history(HistoryRequest {
                    user_id: owner,
                    conversation_id: room.conversation_id,
                    before,
                    limit: 64,
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.messages.iter().map(|m| m.seq));
            before = page.messages.last().map_or(0, |m| m.seq);
            if !page.more {
                break;
            }
        }
        assert_eq!(seen, (1..=total).rev().collect::<Vec<_>>());
    }
}

/// The recipients a stored envelope's group keys are wrapped for.
fn wrapped_for(envelope: &[u8]) -> Vec<u64> {
    match Envelope::decode(envelope).unwrap() {
        Envelope::Group { keys, .. } => keys.iter().map(|k| k.recipient.0).collect(),
        Envelope::Direct(_) => panic!("a group envelope expected"),
    }
}

#[tokio::test]
async fn each_reader_gets_a_group_message_with_only_its_own_key() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let owner = stack.user("owner", false).await;
        let room = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: owner,
                name: "readers".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap();
        let mut members = vec![owner];
        for name in ["m1", "m2", "m3"] {
            let id = stack.user(name, true).await;
            stack
                .social
                .join_room(JoinRoomRequest {
                    user_id: id,
                    room_id: room.id,
                })
                .await
                .unwrap();
            members.push(id);
        }
        let envelope = group(7, &members);
        stack
            .message
            .send(SendRequest {
                sender_id: owner,
                conversation_id: room.conversation_id,
                client_msg_id: vec![7; 16],
                envelope: envelope.clone(),
            })
            .await
            .unwrap();

        // Pushed: each online member its own copy.
        stack
            .gateway
            .wait_for("every member's copy", |_| {
                stack.gateway.deliveries().len() == 3
            })
            .await;
        for delivery in stack.gateway.deliveries() {
            let reader = delivery.target.unwrap().user_id;
            assert_eq!(
                wrapped_for(&delivery.message.unwrap().envelope),
                [reader],
                "{}",
                test.backend
            );
        }
        // Fetched: by sync and by history, each reader its own copy.
        for &reader in &members {
            let synced = stack
                .message
                .sync(SyncRequest {
                    user_id: reader,
                    cursors: vec![],
                    limit: 0,
                })
                .await
                .unwrap()
                .into_inner()
                .messages;
            let history = stack
                .message
                .history(HistoryRequest {
                    user_id: reader,
                    conversation_id: room.conversation_id,
                    before: 0,
                    limit: 0,
                })
                .await
                .unwrap()
                .into_inner()
                .messages;
            for message in synced.iter().chain(&history) {
                assert_eq!(wrapped_for(&message.envelope), [reader], "{}", test.backend);
            }
            assert_eq!((synced.len(), history.len()), (1, 1));
        }
        // Stored whole.
        let stored = entity::chat_history::Entity::find()
            .one(&stack.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.envelope, envelope, "{}", test.backend);
    }
}

#[tokio::test]
async fn sync_pages_by_cursor_and_cursors_only_move_forward() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (fi, gil) = (
            stack.user("fi", false).await,
            stack.user("gil", false).await,
        );
        let conversation = stack.befriend(fi, gil).await;
        for i in 1..=7 {
            stack.send(fi, conversation, i).await.unwrap();
        }
        // gil was offline: sync from nothing, three at a time.
        let mut cursor = 0;
        let mut got = Vec::new();
        loop {
            let page = stack
                .message
                .sync(SyncRequest {
                    user_id: gil,
                    cursors: vec![Cursor {
                        conversation_id: conversation,
                        seq: cursor,
                    }],
                    limit: 3,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.messages.len() <= 3);
            got.extend(page.messages.iter().map(|m| m.seq));
            cursor = got.last().copied().unwrap_or(0);
            if !page.more {
                break;
            }
        }
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7], "{}", test.backend);

        let ack = |seq| AckRequest {
            user_id: gil,
            conversation_id: conversation,
            seq,
        };
        let mut message = stack.message.clone();
        message.ack_read(ack(5)).await.unwrap();
        message.ack_read(ack(3)).await.unwrap();
        message.ack_delivered(ack(99)).await.unwrap();
        let state = stack.state(gil, conversation).await;
        assert_eq!(
            (state.max_seq, state.delivered_seq, state.read_seq),
            (7, 7, 5),
            "read never moves back; delivered stops at the newest message"
        );
        assert_eq!(state.max_seq - state.read_seq, 2, "unread");
        assert!(state.last_message_at > 0);
    }
}

#[tokio::test]
async fn acknowledgements_taken_together_are_each_checked_and_answered() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (ida, jo, kim, lu) = (
            stack.user("ida", false).await,
            stack.user("jo", false).await,
            stack.user("kim", false).await,
            stack.user("lu", false).await,
        );
        let ours = stack.befriend(ida, jo).await;
        let theirs = stack.befriend(kim, lu).await;
        for n in 1..=4 {
            stack.send(ida, ours, n).await.unwrap();
            stack.send(kim, theirs, n).await.unwrap();
        }
        let ack = |user_id, conversation_id, seq| AckRequest {
            user_id,
            conversation_id,
            seq,
        };
        // All at once, so that they are taken together: allowed ones and refused ones mixed.
        let calls = [
            ack(jo, ours, 3),
            ack(kim, ours, 4),
            ack(lu, theirs, 2),
            ack(jo, 999_999, 1),
            ack(lu, theirs, 1),
            ack(ida, ours, 99),
        ]
        .map(|request| {
            let mut message = stack.message.clone();
            tokio::spawn(async move { message.ack_delivered(request).await.map(|_| ()) })
        });
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap().map_err(|s| error_code(&s)));
        }
        assert_eq!(
            results,
            [
                Ok(()),
                Err(ErrorCode::NotFriends),
                Ok(()),
                Err(ErrorCode::ConversationNotFound),
                Ok(()),
                Ok(()),
            ],
            "{}",
            test.backend
        );
        let delivered = |state: ConversationState| state.delivered_seq;
        assert_eq!(
            delivered(stack.state(jo, ours).await),
            3,
            "{}",
            test.backend
        );
        assert_eq!(delivered(stack.state(lu, theirs).await), 2, "never back");
        assert_eq!(
            delivered(stack.state(ida, ours).await),
            4,
            "not past the newest"
        );
    }
}

/// Several acknowledgements of one cursor in one transaction (one upsert row, PostgreSQL
/// refuses a row twice): each cursor moves to the furthest of them.
#[tokio::test]
async fn acknowledgements_of_one_cursor_in_one_batch_take_the_furthest() {
    use message_svc::acks::{Ack, AckQueue};
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (mo, ned) = (
            stack.user("mo", false).await,
            stack.user("ned", false).await,
        );
        let conversation = stack.befriend(mo, ned).await;
        for n in 1..=4 {
            stack.send(mo, conversation, n).await.unwrap();
        }
        let queue = AckQueue::start(stack.db.clone());
        let ack = |seq, read| {
            queue.ack(Ack {
                user: i64::try_from(ned).unwrap(),
                conversation: i64::try_from(conversation).unwrap(),
                seq,
                read,
            })
        };
        // Joined in one task: all are queued before the queue's task runs, so they are taken
        // in one batch.
        let results = tokio::join!(ack(2, true), ack(3, true), ack(1, true), ack(4, false));
        assert!(
            matches!(results, (Ok(()), Ok(()), Ok(()), Ok(()))),
            "{}: {results:?}",
            test.backend
        );
        let state = stack.state(ned, conversation).await;
        assert_eq!(
            (state.delivered_seq, state.read_seq),
            (4, 3),
            "{}",
            test.backend
        );
    }
}

#[tokio::test]
async fn a_batch_answers_each_send_on_its_own() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (fay, gus, hal) = (
            stack.user("fay", false).await,
            stack.user("gus", false).await,
            stack.user("hal", false).await,
        );
        let conversation = stack.befriend(fay, gus).await;
        let send = |sender: u64, id: u8, envelope: Vec<u8>| SendRequest {
            sender_id: sender,
            conversation_id: conversation,
            client_msg_id: vec![id; 16],
            envelope,
        };
        let outcomes = stack
            .message
            .send_batch(SendBatchRequest {
                sends: vec![
                    send(fay, 1, direct(1, 1)),
                    send(hal, 1, direct(9, 1)),
                    send(fay, 1, direct(1, 2)),
                    send(gus, 1, direct(2, 1)),
                    send(fay, 2, vec![0; 1025]),
                    send(fay, 3, direct(3, 1)),
                ],
            })
            .await
            .unwrap()
            .into_inner()
            .outcomes;
        let summary: Vec<(Option<u64>, ErrorCode)> = outcomes
            .iter()
            .map(|o| (o.stored.as_ref().map(|s| s.seq), o.error()))
            .collect();
        assert_eq!(
            summary,
            [
                (Some(1), ErrorCode::Unspecified),
                (None, ErrorCode::NotFriends),
                (Some(1), ErrorCode::Unspecified),
                (Some(2), ErrorCode::Unspecified),
                (None, ErrorCode::TooLarge),
                (Some(3), ErrorCode::Unspecified),
            ],
            "{}",
            test.backend
        );
        assert!(outcomes[1].message.contains("not friends"));

        let history = stack
            .message
            .history(HistoryRequest {
                user_id: gus,
                conversation_id: conversation,
                before: 0,
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .messages;
        let stored: Vec<&[u8]> = history.iter().map(|m| m.envelope.as_slice()).collect();
        assert_eq!(stored, [direct(3, 1), direct(2, 1), direct(1, 1)]);

        let too_many = SendBatchRequest {
            sends: (0..=message_svc::Config::default().send_batch_max)
                .map(|i| send(fay, (i % 200) as u8, direct(0, 1)))
                .collect(),
        };
        let status = stack.message.send_batch(too_many).await.unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::TooLarge);
    }
}

fn upload_chunk(user: u64, attachment: u64, offset: u64, data: &[u8]) -> UploadChunkRequest {
    UploadChunkRequest {
        user_id: user,
        attachment_id: attachment,
        offset,
        data: data.to_vec(),
    }
}

#[tokio::test]
async fn an_interrupted_upload_resumes_and_is_verified() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (ivy, jo) = (
            stack.user("ivy", false).await,
            stack.user("jo", false).await,
        );
        let content: Vec<u8> = (0..2 * CHUNK_LEN + 1000).map(|i| (i % 251) as u8).collect();
        let started = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: ivy,
                size: content.len() as u64,
                sha256: Sha256::digest(&content).to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(started.chunk_size as usize, CHUNK_LEN, "{}", test.backend);
        let id = started.attachment_id;
        let chunks: Vec<&[u8]> = content.chunks(CHUNK_LEN).collect();
        let progress = stack
            .message
            .upload_chunk(upload_chunk(ivy, id, 0, chunks[0]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (progress.received, progress.complete),
            (CHUNK_LEN as u64, false)
        );

        // The connection drops; a new one asks where the upload stands.
        let mut again = MessageClient::new(testing::channel(&stack.message_url).await);
        let status = again
            .upload_status(UploadStatusRequest {
                user_id: ivy,
                attachment_id: id,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.received, CHUNK_LEN as u64);
        // Someone else's upload does not exist for them; not yet complete, not downloadable.
        let status = again
            .upload_status(UploadStatusRequest {
                user_id: jo,
                attachment_id: id,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::AttachmentNotFound);
        let status = again
            .download(DownloadRequest {
                user_id: jo,
                attachment_id: id,
                offset: 0,
                max_len: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::AttachmentNotFound);
        // A repeated chunk, a chunk of the wrong length.
        let status = again
            .upload_chunk(upload_chunk(ivy, id, 0, chunks[0]))
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::UploadOffsetMismatch);
        assert!(
            status.message().contains(&CHUNK_LEN.to_string()),
            "{}",
            status.message()
        );
        let status = again
            .upload_chunk(upload_chunk(ivy, id, CHUNK_LEN as u64, &chunks[1][..10]))
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::InvalidRequest);

        for (index, chunk) in chunks.iter().enumerate().skip(1) {
            let progress = again
                .upload_chunk(upload_chunk(ivy, id, (index * CHUNK_LEN) as u64, chunk))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(progress.complete, index == chunks.len() - 1);
        }
        // Its answer lost, the last chunk is sent again: still complete, nothing doubled.
        let progress = again
            .upload_chunk(upload_chunk(ivy, id, (2 * CHUNK_LEN) as u64, chunks[2]))
            .await
            .unwrap()
            .into_inner();
        assert!(progress.complete);

        // Anyone holding the id downloads it (it is ciphertext; the key is in the message).
        let mut downloaded = Vec::new();
        loop {
            let piece = again
                .download(DownloadRequest {
                    user_id: jo,
                    attachment_id: id,
                    offset: downloaded.len() as u64,
                    max_len: 100_000,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(piece.total, content.len() as u64);
            if piece.data.is_empty() {
                break;
            }
            assert!(piece.data.len() <= 100_000);
            downloaded.extend(piece.data);
        }
        assert!(downloaded == content, "downloaded bytes differ");
        let past_end = again
            .download(DownloadRequest {
                user_id: jo,
                attachment_id: id,
                offset: content.len() as u64 + 1,
                max_len: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&past_end), ErrorCode::InvalidRequest);
        assert_eq!(
            past_end.message(),
            format!(
                "the file has {} bytes; ask for an offset up to that",
                content.len()
            )
        );
        assert_eq!(
            attachment_chunk::Entity::find()
                .count(&stack.db)
                .await
                .unwrap(),
            3
        );
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let kai = stack.user("kai", false).await;
        let status = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: kai,
                size: MAX_ATTACHMENT + 1,
                sha256: vec![0; 32],
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::TooLarge, "{}", test.backend);
        assert!(
            status.message().contains(&MAX_ATTACHMENT.to_string()),
            "{}",
            status.message()
        );
        assert_eq!(
            attachment::Entity::find().count(&stack.db).await.unwrap(),
            0
        );

        // All bytes arrive but they are not the declared ones: refused and deleted.
        let content = vec![7u8; 1000];
        let id = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: kai,
                size: 1000,
                sha256: Sha256::digest(b"something else").to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .attachment_id;
        let status = stack
            .message
            .upload_chunk(upload_chunk(kai, id, 0, &content))
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::ChecksumMismatch);
        assert_eq!(
            attachment::Entity::find().count(&stack.db).await.unwrap(),
            0
        );
        assert_eq!(
            attachment_chunk::Entity::find()
                .count(&stack.db)
                .await
                .unwrap(),
            0
        );

        // Too many unfinished uploads.
        let limit = message_svc::Config::default().max_open_uploads;
        for _ in 0..limit {
            stack
                .message
                .upload_start(UploadStartRequest {
                    user_id: kai,
                    size: 10,
                    sha256: vec![0; 32],
                })
                .await
                .unwrap();
        }
        let status = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: kai,
                size: 10,
                sha256: vec![0; 32],
            })
            .await
            .unwrap_err();
        assert!(
            status.message().contains("unfinished"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn pages_of_large_messages_are_cut_by_size() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (lu, mo) = (stack.user("lu", false).await, stack.user("mo", false).await);
        let conversation = stack.befriend(lu, mo).await;
        for id in 1..=10u8 {
            stack
                .message
                .send(SendRequest {
                    sender_id: lu,
                    conversation_id: conversation,
                    client_msg_id: vec![id; 16],
                    envelope: direct(id, 60),
                })
                .await
                .unwrap();
        }
        let mut cursor = 0;
        let mut pages = Vec::new();
        loop {
            let page = stack
                .message
                .sync(SyncRequest {
                    user_id: mo,
                    cursors: vec![Cursor {
                        conversation_id: conversation,
                        seq: cursor,
                    }],
                    limit: 0,
                })
                .await
                .unwrap()
                .into_inner();
            cursor = page.messages.last().map_or(cursor, |m| m.seq);
            pages.push(page.messages.len());
            if !page.more {
                break;
            }
        }
        assert_eq!(pages, [3, 3, 3, 1], "{}", test.backend);
        let history = stack
            .message
            .history(HistoryRequest {
                user_id: mo,
                conversation_id: conversation,
                before: 0,
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let seqs: Vec<u64> = history.messages.iter().map(|m| m.seq).collect();
        assert_eq!((seqs, history.more), (vec![10, 9, 8], true));
    }
}

#[tokio::test]
async fn storing_a_message_advances_its_senders_cursors() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (hu, ida) = (
            stack.user("hu", false).await,
            stack.user("ida", false).await,
        );
        let conversation = stack.befriend(hu, ida).await;
        for i in 1..=3 {
            stack.send(ida, conversation, i).await.unwrap();
        }
        for i in 11..=16 {
            stack.send(hu, conversation, i).await.unwrap();
        }
        // A batch with a retry and a later message: the cursor follows the newest.
        stack.send(hu, conversation, 12).await.unwrap();
        let counters = |s: ConversationState| (s.max_seq, s.delivered_seq, s.read_seq);
        assert_eq!(
            counters(stack.state(hu, conversation).await),
            (9, 9, 9),
            "{}: what I wrote is mine to have read, and I answered what came before it",
            test.backend
        );
        assert_eq!(
            counters(stack.state(ida, conversation).await),
            (9, 3, 3),
            "{}",
            test.backend
        );
        let (max, _, read) = counters(stack.state(ida, conversation).await);
        assert_eq!(max - read, 6, "ida has hu's six messages unread");

        // A cursor never moves back: an older read mark after sending changes nothing.
        let mut message = stack.message.clone();
        message
            .ack_read(AckRequest {
                user_id: hu,
                conversation_id: conversation,
                seq: 2,
            })
            .await
            .unwrap();
        assert_eq!(
            counters(stack.state(hu, conversation).await),
            (9, 9, 9),
            "{}",
            test.backend
        );
    }
}

#[tokio::test]
async fn sync_pages_share_out_among_conversations_with_news() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (jo, kim, lu) = (
            stack.user("jo", false).await,
            stack.user("kim", false).await,
            stack.user("lu", false).await,
        );
        // The busy conversation is the older one (the lower id), which sync used to drain
        // before looking at any other.
        let busy = stack.befriend(kim, jo).await;
        let quiet = stack.befriend(lu, jo).await;
        assert!(busy < quiet);
        for i in 0..100u8 {
            stack.send(kim, busy, i).await.unwrap();
        }
        for i in 0..3u8 {
            stack.send(lu, quiet, i).await.unwrap();
        }
        let page = stack
            .message
            .sync(SyncRequest {
                user_id: jo,
                cursors: Vec::new(),
                limit: 20,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.messages.len(), 20);
        assert!(page.more);
        let from = |conversation| {
            page.messages
                .iter()
                .filter(|m| m.conversation_id == conversation)
                .map(|m| m.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            from(quiet),
            [1, 2, 3],
            "{}: the quiet conversation is not kept waiting",
            test.backend
        );
        assert_eq!(
            from(busy),
            (1..=17).collect::<Vec<_>>(),
            "each conversation in seq order"
        );
    }
}
