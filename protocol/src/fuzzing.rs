//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay test, so both run
//! exactly the same code. Each takes arbitrary bytes and must never panic.

use bytes::BytesMut;

use crate::codec;
use crate::crypto::dh::KeyPair;
use crate::e2e::{Body, Envelope, EnvelopeShape};
use crate::frame::{DEFAULT_MAX_FRAME_LEN, FrameOpener};
use crate::handshake::{ClientHandshake, ClientHello, DirectionKeys, NONCE_LEN};
use crate::identity::{ServerCertificate, ServerIdentity};
use crate::message::{ClientMessage, Request, ServerMessage};
use crate::password::MIN_KDF;

/// The fixed keys fuzzed frames are opened with (see `fuzz/README.md` for how seeds are made).
pub fn frame_keys() -> DirectionKeys {
    DirectionKeys {
        enc: [0x11; 32],
        mac: [0x22; 32],
    }
}

/// Opens as many frames as `data` holds, as a gateway would.
pub fn frame(data: &[u8]) {
    let mut opener = FrameOpener::new(&frame_keys(), DEFAULT_MAX_FRAME_LEN);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(plain)) = opener.open(&mut buf) {
        let _ = codec::decode::<ClientMessage>(&plain);
    }
}

/// Parses `data` as a ClientHello (the server's side) and as a server flight (the client's).
pub fn handshake(data: &[u8]) {
    let _ = ClientHello::decode(data);
    let _ = ClientHello::check_preamble(data);
    let _ = ServerCertificate::decode(data);
    if let Ok(Some(len)) = ClientHandshake::flight_len(data)
        && let Some(flight) = data.get(..len)
        && let Ok(key) = KeyPair::from_secret(&[7; 32])
    {
        let _ = ClientHandshake::with_key(key, [0; NONCE_LEN], None).finish(flight);
    }
    if let (Ok(identity), Ok(ephemeral)) = (
        KeyPair::from_secret(&[8; 32]).map(|k| ServerIdentity::new(k, "fuzz", 0)),
        KeyPair::from_secret(&[9; 32]),
    ) {
        let _ = crate::handshake::server_respond(&identity, &ephemeral, [0; NONCE_LEN], data);
    }
}

/// Decodes `data` as a logged-in client's message and runs every check the server makes on
/// a request's fields before any of it is stored or forwarded: an envelope's outer shape,
/// stretch parameters against the floor. A message that decodes must encode back to bytes
/// that decode to the same message (no field is silently dropped or changed on the way to
/// the services).
pub fn request(data: &[u8]) {
    let Ok(message) = codec::decode::<ClientMessage>(data) else {
        return;
    };
    let again = codec::encode(&message).and_then(|bytes| codec::decode::<ClientMessage>(&bytes));
    assert!(
        again.as_ref().ok() == Some(&message),
        "a decoded request does not survive re-encoding: {message:?}"
    );
    let ClientMessage::Request { body, .. } = message;
    match body {
        Request::SendMessage(send) => {
            let _ = EnvelopeShape::of(&send.envelope);
        }
        Request::Register(register) => {
            let _ = register.kdf.cost.acceptable(&MIN_KDF);
        }
        Request::ChangePassword { kdf, .. } => {
            let _ = kdf.cost.acceptable(&MIN_KDF);
        }
        _ => {}
    }
}

/// Decodes `data` as every message type a peer can send.
pub fn message(data: &[u8]) {
    let _ = codec::decode::<ClientMessage>(data);
    let _ = codec::decode::<ServerMessage>(data);
    let _ = codec::decode::<Envelope>(data);
    let _ = codec::decode::<Body>(data);
}
