//! Delivery semantics at the protocol level: a sender's pipelined messages keep their order,
//! a sender's own messages never count as unread for them, and large fan-outs reach reading
//! members live.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;

use client_core::ClientEvent;
use e2e::{EVENT_WAIT, TestCluster, befriend};
use protocol::message::{ClientMessage, Request, Response, SendMessage, ServerMessage};
use protocol::{ClientMsgId, SecureConnection};
use serde_bytes::ByteBuf;
use tokio::net::TcpStream;

/// Messages one connection sends back to back without waiting for answers.
const PIPELINED: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_are_stored_in_the_order_sent() {
    let cluster = TestCluster::start_with(|options| {
        // The run sends faster than a person types.
        options.gateway.messages_per_minute = 1_000_000;
    })
    .await;
    let amy = cluster.user("amy").await;
    let bob = cluster.user("bob").await;
    let conversation = befriend(&amy, &bob).await;

    let mut conn = logged_in(&cluster, "amy").await;

    // Every request is written before any answer is read, as a reconnecting outbox or a
    // fast typist does.
    for id in 1..=PIPELINED {
        let mut client_msg_id = [0u8; 16];
        client_msg_id[..8].copy_from_slice(&id.to_be_bytes());
        let body = Request::SendMessage(SendMessage {
            conversation,
            client_msg_id: ClientMsgId(client_msg_id),
            envelope: ByteBuf::from(e2e::opaque_envelope(1, 4)),
        });
        conn.write_message(&ClientMessage::Request { id, body })
            .await
            .unwrap();
    }
    let mut seqs = HashMap::new();
    while (seqs.len() as u64) < PIPELINED {
        match conn.read_message::<ServerMessage>().await.unwrap() {
            Some(ServerMessage::Response { id, result }) => match result {
                Ok(Response::MessageAccepted { seq, .. }) => {
                    seqs.insert(id, seq.0);
                }
                other => panic!("send {id}: {other:?}"),
            },
            Some(ServerMessage::Event(_)) => {}
            None => panic!("closed while answering"),
        }
    }
    let in_order: Vec<u64> = (1..=PIPELINED).map(|id| seqs[&id]).collect();
    let mut sorted = in_order.clone();
    sorted.sort_unstable();
    assert_eq!(
        in_order, sorted,
        "seqs follow the order the messages were sent"
    );
    assert_eq!(sorted, (1..=PIPELINED).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_senders_own_messages_are_not_unread_for_them() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let bob = cluster.user("bob").await;
    let conversation = befriend(&amy, &bob).await;
    for text in ["one", "two", "three"] {
        amy.client
            .send_text(conversation, client_core::plain(text))
            .await
            .unwrap();
    }
    let unread = |bundle: &protocol::message::LoginBundle| {
        let state = bundle
            .conversations
            .iter()
            .find(|s| s.conversation == conversation)
            .unwrap();
        state.unread()
    };
    let amy_sees = amy.client.refresh_contacts().await.unwrap();
    assert_eq!(
        unread(&amy_sees),
        0,
        "PROTOCOL.md's max_seq - read_seq, for the sender"
    );
    let bob_sees = bob.client.refresh_contacts().await.unwrap();
    assert_eq!(unread(&bob_sees), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fan_out_reaches_reading_members_live() {
    let cluster = TestCluster::start_with(|o| o.gateway.messages_per_minute = u32::MAX).await;
    let amy = cluster.user("amy").await;
    let mut readers = Vec::new();
    for name in ["bob", "cat", "dan", "eve"] {
        readers.push(cluster.user(name).await);
    }
    let room = amy.client.create_room("Photos").await.unwrap();
    for reader in &readers {
        reader.client.join_room(room.id).await.unwrap();
    }
    let mut members = vec![amy.id];
    members.extend(readers.iter().map(|r| r.id));

    // amy pipelines COUNT large group messages on a raw connection: stored in one or two
    // batches and fanned out together, several times tonic's default 4 MiB per push for the
    // readers' gateway, while each reader's share stays within its own outbound budget.
    const COUNT: u64 = 30;
    let mut conn = logged_in(&cluster, "amy").await;
    let envelope = group_envelope(&members, 120 * 1024);
    for id in 1..=COUNT {
        let mut client_msg_id = [0u8; 16];
        client_msg_id[..8].copy_from_slice(&id.to_be_bytes());
        let body = Request::SendMessage(SendMessage {
            conversation: room.conversation,
            client_msg_id: ClientMsgId(client_msg_id),
            envelope: ByteBuf::from(envelope.clone()),
        });
        conn.write_message(&ClientMessage::Request { id, body })
            .await
            .unwrap();
    }

    for reader in &mut readers {
        let mut live = std::collections::HashSet::new();
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        while (live.len() as u64) < COUNT {
            let event = tokio::time::timeout_at(deadline, reader.events.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {COUNT} arrived live", live.len()))
                .unwrap();
            match event {
                ClientEvent::Message(message) if message.conversation == room.conversation => {
                    live.insert(message.seq);
                }
                ClientEvent::Reconnected => panic!("a reader's session was dropped"),
                _ => {}
            }
        }
    }
}

/// A raw connection logged in as `name` (registered by client-core with the test password).
async fn logged_in(cluster: &TestCluster, name: &str) -> SecureConnection<TcpStream> {
    let stream = TcpStream::connect(cluster.addr()).await.unwrap();
    let (mut conn, _) =
        SecureConnection::connect(stream, None, protocol::frame::DEFAULT_MAX_FRAME_LEN)
            .await
            .unwrap();
    let login = e2e::raw_login(&mut conn, name, u64::MAX).await;
    conn.write_message(&ClientMessage::Request { id: 0, body: login })
        .await
        .unwrap();
    loop {
        match conn.read_message::<ServerMessage>().await.unwrap() {
            Some(ServerMessage::Response { id: 0, result }) => {
                assert!(matches!(result, Ok(Response::LoggedIn(_))), "{result:?}");
                return conn;
            }
            Some(_) => continue,
            None => panic!("closed at login"),
        }
    }
}

/// A group envelope of about `len` bytes with a key wrapped for each of `members`: the
/// server checks its shape only (the readers show it as a message that does not open).
fn group_envelope(members: &[protocol::UserId], len: usize) -> Vec<u8> {
    use protocol::e2e::{Envelope, Sealed, WRAPPED_KEY_LEN, WrappedKey};
    let keys = members
        .iter()
        .map(|&recipient| WrappedKey {
            recipient,
            iv: [1; 16],
            wrapped: ByteBuf::from(vec![2; WRAPPED_KEY_LEN]),
            mac: [3; 16],
        })
        .collect();
    let body = Sealed {
        iv: [4; 16],
        ciphertext: ByteBuf::from(vec![5; len / 16 * 16]),
        mac: [6; 16],
    };
    Envelope::Group { body, keys }.encode().unwrap()
}
