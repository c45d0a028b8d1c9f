//! The handshake and framed messages over real TCP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use protocol::frame::DEFAULT_MAX_FRAME_LEN;
use protocol::handshake::{CLIENT_HELLO_LEN, ClientHandshake, PROTOCOL_VERSION};
use protocol::message::{Error, ErrorCode, Event, Presence};
use protocol::{
    ClientMessage, ConnectionError, EphemeralPool, Fingerprint, HandshakeError, Request, Response,
    SecureConnection, ServerIdentity, ServerMessage, UserId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Handshakes computing at once in these tests.
static COMPUTE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

struct Server {
    addr: std::net::SocketAddr,
    fingerprint: Fingerprint,
    task: tokio::task::JoinHandle<Result<(), ConnectionError>>,
}

/// Accepts one connection and answers each request with its own echo, then an event.
async fn echo_server() -> Server {
    let identity = Arc::new(ServerIdentity::generate("echo").unwrap());
    let fingerprint = identity.fingerprint();
    let pool = Arc::new(EphemeralPool::new(2).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut conn =
            SecureConnection::accept(stream, identity, pool, DEFAULT_MAX_FRAME_LEN, &COMPUTE)
                .await?;
        while let Some(ClientMessage::Request { id, body }) = conn.read_message().await? {
            let result = match body {
                Request::Ping { nonce } => Ok(Response::Pong { nonce }),
                _ => Err(Error::new(ErrorCode::InvalidRequest, "echo only pongs")),
            };
            conn.queue(&ServerMessage::Response { id, result })?;
            conn.queue(&ServerMessage::Event(Event::Presence {
                user: UserId(id),
                presence: Presence::Offline,
            }))?;
            conn.flush().await?;
        }
        Ok(())
    });
    Server {
        addr,
        fingerprint,
        task,
    }
}

#[tokio::test]
async fn a_client_and_server_exchange_messages_over_tcp() {
    let server = echo_server().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (conn, certificate) = SecureConnection::connect(stream, None, DEFAULT_MAX_FRAME_LEN)
        .await
        .unwrap();
    assert_eq!(certificate.fingerprint(), server.fingerprint);
    assert_eq!(certificate.name, "echo");

    let (mut reader, mut writer) = conn.split(TcpStream::into_split);
    for id in 1..=3u64 {
        writer
            .send(&ClientMessage::Request {
                id,
                body: Request::Ping { nonce: id * 10 },
            })
            .await
            .unwrap();
        let response: ServerMessage = reader.read_message().await.unwrap().unwrap();
        assert_eq!(
            response,
            ServerMessage::Response {
                id,
                result: Ok(Response::Pong { nonce: id * 10 })
            }
        );
        let event: ServerMessage = reader.read_message().await.unwrap().unwrap();
        assert!(matches!(
            event,
            ServerMessage::Event(Event::Presence { .. })
        ));
    }
    writer.shutdown().await.unwrap();
    assert!(
        reader
            .read_message::<ServerMessage>()
            .await
            .unwrap()
            .is_none()
    );
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_pinned_fingerprint_that_does_not_match_is_refused() {
    let server = echo_server().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let wrong = Fingerprint([0x5a; 32]);
    let err = SecureConnection::connect(stream, Some(wrong), DEFAULT_MAX_FRAME_LEN)
        .await
        .err()
        .unwrap();
    match err {
        ConnectionError::Handshake(HandshakeError::ServerKeyChanged { pinned, presented }) => {
            assert_eq!(pinned, wrong);
            assert_eq!(presented, server.fingerprint);
        }
        other => panic!("expected a key-change error, got {other:?}"),
    }
    // The message tells the person what happened and what to do.
    let text = HandshakeError::ServerKeyChanged {
        pinned: wrong,
        presented: server.fingerprint,
    }
    .to_string();
    assert!(text.contains("changed"), "{text}");
}

#[tokio::test]
async fn the_right_pin_is_accepted() {
    let server = echo_server().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    SecureConnection::connect(stream, Some(server.fingerprint), DEFAULT_MAX_FRAME_LEN)
        .await
        .unwrap();
}

#[tokio::test]
async fn another_version_is_told_and_turned_away() {
    let server = echo_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = *ClientHandshake::new(None).unwrap().hello();
    hello[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
    stream.write_all(&hello).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(matches!(
        ClientHandshake::flight_len(&answer),
        Err(HandshakeError::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        server.task.await.unwrap(),
        Err(ConnectionError::Handshake(
            HandshakeError::UnsupportedVersion { .. }
        ))
    ));
}

#[tokio::test]
async fn garbage_closes_the_connection_without_an_answer() {
    let server = echo_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_until_closed(&mut stream).await.is_empty());
    assert!(server.task.await.unwrap().is_err());
}

#[tokio::test]
async fn a_bad_client_value_closes_the_connection() {
    let server = echo_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = *ClientHandshake::new(None).unwrap().hello();
    // e_c = 1: degenerate.
    hello[6..6 + 256].fill(0);
    hello[6 + 255] = 1;
    assert_eq!(hello.len(), CLIENT_HELLO_LEN);
    stream.write_all(&hello).await.unwrap();
    assert!(read_until_closed(&mut stream).await.is_empty());
    assert!(matches!(
        server.task.await.unwrap(),
        Err(ConnectionError::Handshake(HandshakeError::Dh(_)))
    ));
}

#[tokio::test]
async fn a_tampered_frame_closes_the_connection() {
    let server = echo_server().await;
    // The handshake by hand over a raw socket, so the frame can be tampered with.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let handshake = ClientHandshake::new(None).unwrap();
    stream.write_all(handshake.hello()).await.unwrap();
    let mut flight = Vec::new();
    let len = loop {
        if let Some(len) = ClientHandshake::flight_len(&flight).unwrap() {
            break len;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        flight.extend_from_slice(&chunk[..n]);
    };
    let established = handshake.finish(&flight[..len]).unwrap();
    let (mut sealer, _) = established.keys.client_codec(DEFAULT_MAX_FRAME_LEN);
    let plain = protocol::codec::encode(&ClientMessage::Request {
        id: 1,
        body: Request::Ping { nonce: 1 },
    })
    .unwrap();
    let mut frame = Vec::new();
    sealer.seal_into(&plain, &mut frame).unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    stream.write_all(&frame).await.unwrap();

    assert!(read_until_closed(&mut stream).await.is_empty());
    assert!(matches!(
        server.task.await.unwrap(),
        Err(ConnectionError::Frame(protocol::FrameError::BadDigest))
    ));
}

/// Reads until the server closes; a reset counts as closed.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer).await {
        Ok(_) => answer,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => answer,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_quiet_connection_gives_back_what_a_large_message_needed() {
    let identity = Arc::new(ServerIdentity::generate("quiet").unwrap());
    let pool = Arc::new(EphemeralPool::new(2).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut conn =
            SecureConnection::accept(stream, identity, pool, DEFAULT_MAX_FRAME_LEN, &COMPUTE)
                .await?;
        let _: Option<ClientMessage> = conn.read_message().await?;
        // Now waiting for a message that does not come.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            conn.read_message::<ClientMessage>(),
        )
        .await;
        assert!(waiting.is_err(), "nothing more was sent");
        Ok::<_, ConnectionError>(conn.buffered())
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut client, _) = SecureConnection::connect(stream, None, DEFAULT_MAX_FRAME_LEN)
        .await
        .unwrap();
    let large = ClientMessage::Request {
        id: 1,
        body: Request::SendMessage(protocol::message::SendMessage {
            conversation: protocol::ConversationId(1),
            client_msg_id: protocol::ClientMsgId([1; 16]),
            envelope: serde_bytes::ByteBuf::from(vec![7; 200 * 1024]),
        }),
    };
    client.write_message(&large).await.unwrap();
    let sender_holds = client.buffered();
    let receiver_holds = server.await.unwrap().unwrap();
    assert!(
        sender_holds <= 8 * 1024,
        "the sender holds {sender_holds} bytes"
    );
    assert!(
        receiver_holds <= 1024,
        "the receiver holds {receiver_holds} bytes"
    );
}
