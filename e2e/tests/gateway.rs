//! The gateway's rules at the protocol level, with a raw connection instead of client-core:
//! what is allowed before login, timeouts, caps, and bad input that must not hurt others.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use e2e::TestCluster;
use e2e::raw::{Conn, ask, connect, login, raw_user, register};
use protocol::message::{ClientMessage, ErrorCode, Field, Request, Response, ServerMessage};
use protocol::{KeyPair, SecureConnection};
use serde_bytes::ByteBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server closes `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

/// `conn` accepts `from`'s friend request as request `id`.
async fn accept(conn: &mut Conn, id: u64, from: protocol::UserId) -> Response {
    let accept = Request::ResolveFriendRequest {
        from,
        decision: protocol::message::FriendDecision::Accept,
    };
    ask(conn, id, accept).await.unwrap()
}

#[tokio::test]
async fn only_register_login_and_ping_before_login() {
    let cluster = TestCluster::start().await;
    let (mut conn, certificate) = connect(&cluster).await;
    assert_eq!(
        ask(&mut conn, 1, Request::Ping { nonce: 7 }).await,
        Ok(Response::Pong { nonce: 7 })
    );
    let refused = ask(&mut conn, 2, Request::Contacts).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotLoggedIn);

    // A key that is not an element of the group is refused at the gateway, field by field.
    let refused = ask(&mut conn, 3, register("zed", vec![0; 256]))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidField);
    assert_eq!(refused.fields[0].field, Field::PublicKey);

    // Registration hands back the server's certificate, the one the handshake presented.
    let keys = KeyPair::generate().unwrap();
    let registered = ask(
        &mut conn,
        4,
        register("zed", keys.public().as_bytes().to_vec()),
    )
    .await
    .unwrap();
    let Response::Registered {
        server_certificate, ..
    } = registered
    else {
        panic!("{registered:?}")
    };
    assert_eq!(
        server_certificate.as_slice(),
        certificate.encode().as_slice()
    );
}

#[tokio::test]
async fn slow_handshakes_and_idle_connections_are_closed() {
    let cluster = TestCluster::start_with(|o| {
        o.gateway.handshake_timeout_ms = 300;
        o.gateway.idle_timeout_ms = 500;
    })
    .await;
    let mut silent = TcpStream::connect(cluster.addr()).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "handshake timeout"
    );

    let (mut idle, _) = connect(&cluster).await;
    let gone =
        tokio::time::timeout(Duration::from_secs(5), idle.read_message::<ServerMessage>()).await;
    assert!(
        matches!(gone, Ok(Ok(None)) | Ok(Err(_))),
        "idle timeout: {gone:?}"
    );

    // Pings keep a connection alive past the idle time.
    let (mut busy, _) = connect(&cluster).await;
    for n in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(ask(&mut busy, n, Request::Ping { nonce: n }).await.is_ok());
    }
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let cluster = TestCluster::start_with(|o| o.gateway.max_connections_per_ip = 2).await;
    let (_a, _) = connect(&cluster).await;
    let (_b, _) = connect(&cluster).await;
    let mut third = TcpStream::connect(cluster.addr()).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(5)).await);
    drop((_a, _b));
    // Once the server has seen them close, a new connection is served.
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let stream = TcpStream::connect(cluster.addr()).await.unwrap();
            let handshake =
                SecureConnection::connect(stream, None, protocol::frame::DEFAULT_MAX_FRAME_LEN);
            if let Ok((mut again, _)) = handshake.await
                && ask(&mut again, 1, Request::Ping { nonce: 1 }).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the closed connections kept their slots");
}

#[tokio::test]
async fn garbage_ends_only_its_own_connection() {
    let cluster = TestCluster::start().await;
    let (mut good, _) = connect(&cluster).await;

    // Not our protocol at all.
    let mut junk = TcpStream::connect(cluster.addr()).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut junk, Duration::from_secs(5)).await);

    // A good handshake, then bytes that are not a frame.
    let mut raw = TcpStream::connect(cluster.addr()).await.unwrap();
    let handshake = protocol::handshake::ClientHandshake::new(None).unwrap();
    raw.write_all(handshake.hello()).await.unwrap();
    let mut flight = Vec::new();
    let len = loop {
        if let Some(len) = protocol::handshake::ClientHandshake::flight_len(&flight).unwrap() {
            break len;
        }
        let mut buf = [0u8; 4096];
        let n = raw.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed during the handshake");
        flight.extend_from_slice(&buf[..n]);
    };
    handshake.finish(&flight[..len]).unwrap();
    raw.write_all(&[0xff; 4096]).await.unwrap();
    assert!(closed_within(&mut raw, Duration::from_secs(5)).await);

    assert!(
        ask(&mut good, 1, Request::Ping { nonce: 1 }).await.is_ok(),
        "others are unaffected"
    );
}

#[tokio::test]
async fn after_login_the_connection_state_requests_are_answered_and_logout_closes() {
    let cluster = TestCluster::start().await;
    let (mut conn, _) = raw_user(&cluster, "ada").await;
    assert_eq!(
        ask(&mut conn, 3, Request::Ping { nonce: 9 }).await,
        Ok(Response::Pong { nonce: 9 })
    );
    let again = login("ada");
    let refused = ask(&mut conn, 4, again).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::AlreadyLoggedIn);
    let refused = ask(&mut conn, 5, register("bob", vec![0; 256]))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::AlreadyLoggedIn);

    assert_eq!(ask(&mut conn, 6, Request::Logout).await, Ok(Response::Done));
    let end = tokio::time::timeout(Duration::from_secs(5), conn.read_message::<ServerMessage>())
        .await
        .expect("the connection closes after Logout");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_closed_and_syncs_everything_later() {
    // Four messages queued at most.
    a_slow_reader_is_closed(|g| g.outbound_queue = 4).await;
}

#[tokio::test]
async fn a_reader_that_falls_behind_in_bytes_is_closed_too() {
    // Room for a thousand messages, but only 1 MiB of them: five of amy's.
    a_slow_reader_is_closed(|g| g.outbound_max_bytes = 1024 * 1024).await;
}

/// amy and bo, raw users and friends, on a server whose gateway `config` changes (messages
/// not rate-limited); returns the server, their connections and their conversation.
async fn raw_friends(
    config: impl FnOnce(&mut gateway::Config),
) -> (TestCluster, Conn, Conn, protocol::ConversationId) {
    let cluster = TestCluster::start_with(|o| {
        config(&mut o.gateway);
        o.gateway.messages_per_minute = u32::MAX;
    })
    .await;
    let (mut amy, amy_id) = raw_user(&cluster, "amy").await;
    let (mut bo, bo_id) = raw_user(&cluster, "bo").await;
    ask(&mut amy, 3, Request::AddFriend { user: bo_id })
        .await
        .unwrap();
    let accepted = accept(&mut bo, 3, amy_id).await;
    let Response::Friend(friend) = accepted else {
        panic!("{accepted:?}")
    };
    (cluster, amy, bo, friend.conversation)
}

/// `from` sends `count` messages of 200 KiB into `conversation`, each answered (stored)
/// before the next.
async fn send_large(from: &mut Conn, conversation: protocol::ConversationId, count: u64) {
    for n in 0..count {
        let send = Request::SendMessage(protocol::message::SendMessage {
            conversation,
            client_msg_id: protocol::ClientMsgId([n as u8; 16]),
            envelope: ByteBuf::from(e2e::opaque_envelope(n as u8, 200 * 64)),
        });
        ask(from, 10 + n, send)
            .await
            .unwrap_or_else(|e| panic!("send {n}: {e:?}"));
    }
}

/// bo stops reading while amy sends sixty 200 KiB messages: bo's connection is closed by the
/// bound `bound` sets, amy is never held up, and bo then syncs every message.
async fn a_slow_reader_is_closed(bound: impl FnOnce(&mut gateway::Config)) {
    let (cluster, mut amy, mut bo, conversation) = raw_friends(bound).await;
    // bo stops reading. amy sends far more than the socket buffers and the queue hold, and
    // every send is answered: amy is not held up.
    let count = 60u64;
    send_large(&mut amy, conversation, count).await;
    // bo's session was closed rather than waited for.
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bo.read_message::<ServerMessage>().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "bo's connection is closed");

    // Nothing was lost: a new session syncs every message.
    let (mut again, _) = connect(&cluster).await;
    ask(&mut again, 1, login("bo")).await.unwrap();
    let mut seqs = Vec::new();
    let mut cursor = protocol::Seq(0);
    for id in 2.. {
        let sync = Request::Sync {
            cursors: vec![protocol::message::Cursor {
                conversation,
                seq: cursor,
            }],
            limit: 0,
        };
        let Response::Messages { messages, more } = ask(&mut again, id, sync).await.unwrap() else {
            panic!("not messages")
        };
        seqs.extend(messages.iter().map(|m| m.seq.0));
        cursor = messages.last().map_or(cursor, |m| m.seq);
        if !more {
            break;
        }
    }
    assert_eq!(seqs, (1..=count).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_reader_that_never_reads_loses_its_socket_at_once() {
    // Closing a slow reader must free its socket and queue now, not when its writes time out
    // (the idle time, a minute): an attacker's connections that never read would otherwise
    // keep their full queues for that long.
    let (_cluster, mut amy, mut bo, conversation) =
        raw_friends(|g| g.outbound_max_bytes = 1024 * 1024).await;
    send_large(&mut amy, conversation, 60).await;
    // bo never reads. Once the server has closed the socket, bo's writes fail (the peer
    // answers them with a reset).
    let ping = ClientMessage::Request {
        id: 1,
        body: Request::Ping { nonce: 1 },
    };
    let gone = tokio::time::timeout(Duration::from_secs(8), async {
        while bo.write_message(&ping).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "bo's socket is still open");
}

#[tokio::test]
async fn a_client_that_pipelines_pages_waits_for_its_budget_instead_of_being_closed() {
    // bo asks for forty 1 MiB pages at once and reads nothing for a while: the server makes
    // answers only as the 2 MiB budget allows (it holds no more), and once bo reads, every
    // answer arrives. Its own requests never get it closed.
    let (_cluster, mut amy, mut bo, conversation) =
        raw_friends(|g| g.outbound_max_bytes = 2 * 1024 * 1024).await;
    send_large(&mut amy, conversation, 10).await;
    let pages = 40u64;
    for id in 0..pages {
        let page = Request::History {
            conversation,
            before: protocol::Seq(0),
            limit: 50,
        };
        bo.queue(&ClientMessage::Request {
            id: 100 + id,
            body: page,
        })
        .unwrap();
    }
    bo.flush().await.unwrap();
    // Not reading is the behaviour under test: the server has time to fill the budget.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut answered = 0;
    while answered < pages {
        match tokio::time::timeout(Duration::from_secs(10), bo.read_message::<ServerMessage>())
            .await
        {
            Ok(Ok(Some(ServerMessage::Response { result, .. }))) => {
                assert!(
                    matches!(result, Ok(Response::Messages { .. })),
                    "{result:?}"
                );
                answered += 1;
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("after {answered} answers: {other:?}"),
        }
    }
}

#[tokio::test]
async fn before_login_frames_are_small() {
    let cluster = TestCluster::start().await;
    let (mut conn, _) = connect(&cluster).await;
    // A 20 KiB search before login: more than any login or registration needs.
    let big = Request::SearchUsers {
        query: "x".repeat(20 * 1024),
    };
    conn.write_message(&ClientMessage::Request { id: 1, body: big })
        .await
        .unwrap();
    let gone =
        tokio::time::timeout(Duration::from_secs(5), conn.read_message::<ServerMessage>()).await;
    assert!(
        matches!(gone, Ok(Ok(None)) | Ok(Err(_))),
        "closed on a large frame before login: {gone:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_logs_in_is_closed_even_if_it_pings() {
    let cluster = TestCluster::start_with(|o| o.gateway.login_timeout_ms = 400).await;
    let (mut conn, _) = connect(&cluster).await;
    let started = std::time::Instant::now();
    let mut answered = 0u64;
    while started.elapsed() < Duration::from_secs(5) {
        let ping = Request::Ping { nonce: answered };
        if conn
            .write_message(&ClientMessage::Request {
                id: answered,
                body: ping,
            })
            .await
            .is_err()
        {
            break;
        }
        match conn.read_message::<ServerMessage>().await {
            Ok(Some(_)) => answered += 1,
            _ => break,
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed at the login deadline, pings or not ({answered} answered)"
    );
}

#[tokio::test]
async fn connections_not_logged_in_cannot_take_every_slot() {
    let cluster = TestCluster::start_with(|o| o.gateway.max_unauthenticated = 2).await;
    let (_silent, _) = connect(&cluster).await;
    let (mut waiting, _) = connect(&cluster).await;
    let mut third = TcpStream::connect(cluster.addr()).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(5)).await,
        "a third connection not logged in is refused"
    );
    // A login gives its slot back: the next newcomer gets in.
    let keys = KeyPair::generate().unwrap();
    ask(
        &mut waiting,
        1,
        register("cy", keys.public().as_bytes().to_vec()),
    )
    .await
    .unwrap();
    ask(&mut waiting, 2, login("cy")).await.unwrap();
    let (mut newcomer, _) = connect(&cluster).await;
    assert!(
        ask(&mut newcomer, 1, Request::Ping { nonce: 1 })
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn certificates_show_an_email_only_to_those_close_to_its_owner() {
    let cluster = TestCluster::start().await;
    let (mut amy, amy_id) = raw_user(&cluster, "amy").await;
    let (mut bo, bo_id) = raw_user(&cluster, "bo").await;
    let email_of = async |conn: &mut Conn, id: u64, user: protocol::UserId| {
        let answer = ask(conn, id, Request::GetCertificates { users: vec![user] })
            .await
            .unwrap();
        let Response::Certificates(certificates) = answer else {
            panic!("{answer:?}")
        };
        certificates[0].email.clone()
    };
    // Sequential ids make every account's certificate reachable; a stranger gets no email.
    assert_eq!(email_of(&mut amy, 3, bo_id).await, "");
    assert_eq!(email_of(&mut amy, 4, amy_id).await, "amy@example.com");
    // Once amy asks, bo (who received the request) sees hers; after he accepts, both do.
    ask(&mut amy, 5, Request::AddFriend { user: bo_id })
        .await
        .unwrap();
    assert_eq!(email_of(&mut bo, 3, amy_id).await, "amy@example.com");
    assert_eq!(email_of(&mut amy, 6, bo_id).await, "");
    accept(&mut bo, 4, amy_id).await;
    assert_eq!(email_of(&mut amy, 7, bo_id).await, "bo@example.com");

    // Members of a group see each other's.
    let (mut cy, cy_id) = raw_user(&cluster, "cy").await;
    assert_eq!(email_of(&mut amy, 8, cy_id).await, "");
    let created = ask(
        &mut cy,
        3,
        Request::CreateRoom {
            name: "club".into(),
        },
    )
    .await
    .unwrap();
    let Response::Room(room) = created else {
        panic!("{created:?}")
    };
    ask(&mut amy, 9, Request::JoinRoom { room: room.id })
        .await
        .unwrap();
    assert_eq!(email_of(&mut amy, 10, cy_id).await, "cy@example.com");
}
