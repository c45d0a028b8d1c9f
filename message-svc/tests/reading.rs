//! Reading what message-svc stored, over real gRPC, against SQLite (memory and file) and
//! PostgreSQL: sync and history pages, each reader's copy, acknowledgements.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use proto::common::ErrorCode;
use proto::message::*;
use protocol::e2e::Envelope;
use sea_orm::EntityTrait;
use service_kit::status::error_code;
use service_kit::testing::databases;

use common::*;

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
        let room = stack.room(owner, "readers").await;
        let mut members = vec![owner];
        members.extend(stack.join(&room, &["m1", "m2", "m3"], true).await);
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
