//! A client on the wire protocol itself, without client-core: for scenarios that do what no
//! well-behaved client does (stop reading, pipeline without bound, stall mid-frame), and for
//! registering users cheaply. A raw user's authentication key is random bytes that claim the
//! server's stretch: the server cannot tell, and the benchmark skips argon2id on its side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use protocol::KeyPair;
use protocol::message::{
    ClientMessage, KdfParams, Login, Register, Request, Response, ServerMessage, Sex,
};
use protocol::{SecureConnection, UserId};
use serde_bytes::ByteBuf;
use tokio::net::{TcpSocket, TcpStream};

/// A handshaken connection.
pub type Conn = SecureConnection<TcpStream>;

/// The authentication key every raw user has.
pub const AUTH_KEY: [u8; 32] = [0x42; 32];

/// Source addresses connections are spread over: 127.0.0.2 and up, as many machines would be,
/// so the server's per-address limits do not stop a run early.
const SOURCES: u32 = 200;

/// The `n`th source address (they repeat after [`SOURCES`]).
pub fn source(n: usize) -> IpAddr {
    let offset = u32::try_from(n % SOURCES as usize).unwrap_or(0);
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(127, 0, 0, 2)) + offset,
    ))
}

/// Connects from `from` and runs the handshake, trusting whatever key the server presents
/// (loopback only).
pub async fn connect(server: SocketAddr, from: IpAddr) -> anyhow::Result<Conn> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("cannot connect to {server}"))?;
    stream.set_nodelay(true)?;
    let (conn, _) = SecureConnection::connect(stream, None, protocol::frame::DEFAULT_MAX_FRAME_LEN)
        .await
        .context("handshake")?;
    Ok(conn)
}

/// Sends `body` as request `id` and waits for its answer, skipping events.
pub async fn ask(conn: &mut Conn, id: u64, body: Request) -> anyhow::Result<Response> {
    conn.write_message(&ClientMessage::Request { id, body })
        .await
        .context("send a request")?;
    loop {
        match conn.read_message::<ServerMessage>().await? {
            Some(ServerMessage::Response { id: got, result }) if got == id => {
                return result.map_err(|e| anyhow::anyhow!("the server refused: {e}"));
            }
            Some(_) => continue,
            None => bail!("the server closed the connection"),
        }
    }
}

/// Registers `name` (if it is not yet) and logs in on a new connection from `from`; returns
/// it and the user's id.
pub async fn user(server: SocketAddr, from: IpAddr, name: &str) -> anyhow::Result<(Conn, UserId)> {
    let mut conn = connect(server, from).await?;
    let Response::Prelogin(kdf) = ask(
        &mut conn,
        1,
        Request::Prelogin {
            username: name.into(),
        },
    )
    .await?
    else {
        bail!("unexpected answer to Prelogin");
    };
    let keys = KeyPair::generate().context("make a key pair")?;
    // Taken already (an earlier run): the login below says whether it is ours.
    let _ = ask(&mut conn, 2, register(name, &kdf, keys.public().as_bytes())).await;
    let login = Login {
        username: name.into(),
        auth_key: AUTH_KEY,
    };
    let Response::LoggedIn(bundle) = ask(&mut conn, 3, Request::Login(login))
        .await
        .with_context(|| format!("log in as {name}"))?
    else {
        bail!("unexpected answer to Login");
    };
    Ok((conn, bundle.me.id))
}

fn register(name: &str, kdf: &KdfParams, public_key: &[u8]) -> Request {
    Request::Register(Register {
        username: name.into(),
        auth_key: AUTH_KEY,
        kdf: *kdf,
        email: format!("{name}@bench.invalid"),
        sex: Sex::Undisclosed,
        age: 30,
        public_key: ByteBuf::from(public_key.to_vec()),
    })
}

/// A well-formed one-to-one envelope with `blocks` blocks of ciphertext (the server checks
/// an envelope's shape, never its contents).
pub fn opaque_envelope(fill: u8, blocks: usize) -> Vec<u8> {
    let sealed = protocol::e2e::Sealed {
        iv: [fill; 16],
        ciphertext: ByteBuf::from(vec![fill; 16 * blocks]),
        mac: [fill; 16],
    };
    protocol::e2e::Envelope::Direct(sealed)
        .encode()
        .unwrap_or_default()
}

/// Takes the TCP stream back from a handshaken connection, to write raw bytes on it.
pub fn into_stream(conn: Conn) -> Option<TcpStream> {
    let mut stream = None;
    let _ = conn.split(|s| {
        stream = Some(s);
        ((), ())
    });
    stream
}
