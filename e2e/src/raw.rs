//! A client at the protocol level, without client-core: the handshake, one request and its
//! answer, and a user registered and logged in with [`RAW_AUTH_KEY`](crate::RAW_AUTH_KEY).
//! For tests of what the gateway allows and what it holds.

use protocol::message::{ClientMessage, Login, Register, Request, Response, ServerMessage, Sex};
use protocol::{KeyPair, SecureConnection, ServerCertificate};
use serde_bytes::ByteBuf;
use tokio::net::TcpStream;

use crate::TestCluster;

/// A raw connection.
pub type Conn = SecureConnection<TcpStream>;

/// Connects to `cluster` and completes the handshake.
pub async fn connect(cluster: &TestCluster) -> (Conn, ServerCertificate) {
    let stream = TcpStream::connect(cluster.addr())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    SecureConnection::connect(stream, None, protocol::frame::DEFAULT_MAX_FRAME_LEN)
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"))
}

/// Sends `body` as request `id` and waits for its answer, passing over pushed events.
pub async fn ask(
    conn: &mut Conn,
    id: u64,
    body: Request,
) -> Result<Response, protocol::message::Error> {
    conn.write_message(&ClientMessage::Request { id, body })
        .await
        .unwrap_or_else(|e| panic!("send request {id}: {e}"));
    loop {
        match conn.read_message::<ServerMessage>().await {
            Ok(Some(ServerMessage::Response { id: got, result })) if got == id => return result,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the server closed the connection"),
            Err(e) => panic!("read answer {id}: {e}"),
        }
    }
}

/// A raw `Login` of `name`, registered by [`register`].
pub fn login(name: &str) -> Request {
    Request::Login(Login {
        username: name.into(),
        auth_key: crate::RAW_AUTH_KEY,
    })
}

/// A raw `Register` of `name` with `public_key`, logging in with [`login`].
pub fn register(name: &str, public_key: Vec<u8>) -> Request {
    Request::Register(Register {
        username: name.into(),
        auth_key: crate::RAW_AUTH_KEY,
        kdf: crate::raw_kdf(),
        email: format!("{name}@example.com"),
        sex: Sex::Female,
        age: 20,
        public_key: ByteBuf::from(public_key),
    })
}

/// Registers and logs in `name` over a raw connection; returns it and the user's id.
pub async fn raw_user(cluster: &TestCluster, name: &str) -> (Conn, protocol::UserId) {
    let (mut conn, _) = connect(cluster).await;
    let keys = KeyPair::generate().unwrap_or_else(|e| panic!("key pair: {e}"));
    let registered = ask(
        &mut conn,
        1,
        register(name, keys.public().as_bytes().to_vec()),
    )
    .await
    .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
    let Response::Registered { user, .. } = registered else {
        panic!("{registered:?}")
    };
    if let Err(e) = ask(&mut conn, 2, login(name)).await {
        panic!("login {name}: {e:?}");
    }
    (conn, user)
}
