//! message-svc's sending path over real gRPC, against SQLite (memory and file) and
//! PostgreSQL: storing once, seqs, who may write, envelope checks, pushes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use proto::common::ErrorCode;
use proto::message::*;
use proto::social::{DeleteFriendRequest, JoinRoomRequest};
use sea_orm::EntityTrait;
use service_kit::status::error_code;
use service_kit::testing::{Pushed, databases};

use common::*;

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
async fn retries_among_fresh_sends_keep_their_seqs_and_leave_no_gap() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (amy, bo) = (
            stack.user("amy", false).await,
            stack.user("bo", false).await,
        );
        let conversation = stack.befriend(amy, bo).await;
        stack.send(amy, conversation, 1).await.unwrap();
        stack.send(bo, conversation, 2).await.unwrap();
        // One batch: fresh sends around the retries of both stored messages. The batch is
        // first written as if it held no retry; meeting one, it is written again.
        let send = |sender: u64, id: u8| SendRequest {
            sender_id: sender,
            conversation_id: conversation,
            client_msg_id: vec![id; 16],
            envelope: direct(id, 1),
        };
        let outcomes = stack
            .message
            .send_batch(SendBatchRequest {
                sends: vec![send(amy, 3), send(amy, 1), send(bo, 4), send(bo, 2)],
            })
            .await
            .unwrap()
            .into_inner()
            .outcomes;
        let seqs: Vec<u64> = outcomes
            .iter()
            .map(|o| o.stored.as_ref().unwrap().seq)
            .collect();
        assert_eq!(seqs, [3, 1, 4, 2], "{}", test.backend);
        let history: Vec<(u64, Vec<u8>)> = stack
            .message
            .history(HistoryRequest {
                user_id: amy,
                conversation_id: conversation,
                before: 0,
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .messages
            .into_iter()
            .map(|m| (m.seq, m.envelope))
            .collect();
        let expected: Vec<(u64, Vec<u8>)> = [4, 3, 2, 1]
            .map(|id| (u64::from(id), direct(id, 1)))
            .to_vec();
        assert_eq!(history, expected, "{}", test.backend);
        assert_eq!(
            stack.state(amy, conversation).await.max_seq,
            4,
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
        let room = stack.room(cy, "club").await;
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
        let room = stack.room(ida, "sealed").await;
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
        let room = stack.room(owner, "busy").await;
        let mut members = vec![owner];
        members.extend(stack.join(&room, &["m1", "m2", "m3", "m4"], false).await);
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
