//! The handshake: ephemeral-static Diffie-Hellman that authenticates the server.
//!
//! Sans-I/O: these types turn bytes into bytes and keys; `connection` drives them over a socket.
//!
//! ```text
//! client → server  ClientHello (294 bytes)
//!   | magic "UCHT" [4] | version u16 BE | e_c [256] | nonce_c [32] |
//!
//! server → client  ServerHello
//!   | magic "UCHT" [4] | version u16 BE | status u8 |
//!   status 0 (accepted), followed by:
//!   | e_s [256] | nonce_s [32] | cert_len u16 BE | certificate [cert_len] | finished [32] |
//!   status 1 (version not supported): nothing follows; the server closes.
//!
//! TH     = SHA-256(ClientHello || ServerHello up to and including the certificate)
//! PRK    = HKDF-Extract(salt = TH, IKM = DH(c, e_s) || DH(c, S))      each 256 bytes BE
//! keys   = HKDF-Expand(PRK, label, 32) for the four labels in `crypto::kdf`
//! finished = HMAC-SHA256(HKDF-Expand(PRK, "uchat v1 server finished", 32), TH)
//! ```
//!
//! Only the holder of the server's private key `s` can compute `DH(c, S)`, so only it can send
//! a valid `finished` and read the client's frames: the server is authenticated, and fresh
//! ephemeral values on both sides give every session fresh keys.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::dh::{ELEMENT_LEN, KeyPair, PublicKey, agree_all};
use crate::crypto::kdf::{self, Prk};
use crate::crypto::mac::ct_eq;
use crate::error::{DhError, HandshakeError};
use crate::frame::{FrameOpener, FrameSealer};
use crate::identity::{Fingerprint, MAX_CERTIFICATE_LEN, ServerCertificate, ServerIdentity};

/// The first four bytes of both hellos.
pub const MAGIC: [u8; 4] = *b"UCHT";

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 2;

/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// Length of the ClientHello.
pub const CLIENT_HELLO_LEN: usize = 4 + 2 + ELEMENT_LEN + NONCE_LEN;

/// Length of the ServerHello header (magic, version, status).
pub const SERVER_HELLO_HEADER_LEN: usize = 4 + 2 + 1;

/// Length of the server's Finished value.
pub const FINISHED_LEN: usize = 32;

/// ServerHello status: the handshake goes on.
pub const STATUS_ACCEPTED: u8 = 0;

/// ServerHello status: the client's version is not supported; the server closes.
pub const STATUS_UNSUPPORTED_VERSION: u8 = 1;

/// Longest possible server flight (ServerHello with the longest certificate, and Finished).
pub const MAX_SERVER_FLIGHT_LEN: usize =
    SERVER_HELLO_HEADER_LEN + ELEMENT_LEN + NONCE_LEN + 2 + MAX_CERTIFICATE_LEN + FINISHED_LEN;

/// The keys of one direction of a session: AES-256 for encryption, HMAC-MD5 for the digest.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DirectionKeys {
    /// AES-256-CBC key.
    pub enc: [u8; 32],
    /// HMAC-MD5 key.
    pub mac: [u8; 32],
}

/// The four keys of a session.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// Keys for frames the client sends.
    pub client_to_server: DirectionKeys,
    /// Keys for frames the server sends.
    pub server_to_client: DirectionKeys,
}

impl SessionKeys {
    /// Returns the client's frame sealer and opener.
    pub fn client_codec(&self, max_frame_len: usize) -> (FrameSealer, FrameOpener) {
        (
            FrameSealer::new(&self.client_to_server, max_frame_len),
            FrameOpener::new(&self.server_to_client, max_frame_len),
        )
    }

    /// Returns the server's frame sealer and opener.
    pub fn server_codec(&self, max_frame_len: usize) -> (FrameSealer, FrameOpener) {
        (
            FrameSealer::new(&self.server_to_client, max_frame_len),
            FrameOpener::new(&self.client_to_server, max_frame_len),
        )
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// What both sides derive from the shared secrets and transcript.
struct Schedule {
    keys: SessionKeys,
    finished: [u8; FINISHED_LEN],
}

fn schedule(transcript_hash: &[u8; 32], ephemeral: &[u8], static_: &[u8]) -> Schedule {
    let prk = Prk::extract(transcript_hash, &[ephemeral, static_]);
    let keys = SessionKeys {
        client_to_server: DirectionKeys {
            enc: prk.expand(&[kdf::LABEL_C2S_ENC]),
            mac: prk.expand(&[kdf::LABEL_C2S_MAC]),
        },
        server_to_client: DirectionKeys {
            enc: prk.expand(&[kdf::LABEL_S2C_ENC]),
            mac: prk.expand(&[kdf::LABEL_S2C_MAC]),
        },
    };
    let mut finished_key: [u8; 32] = prk.expand(&[kdf::LABEL_FINISHED]);
    let finished = hmac_sha256(&finished_key, transcript_hash);
    finished_key.zeroize();
    Schedule { keys, finished }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <hmac::Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn transcript_hash(client_hello: &[u8], server_hello: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(client_hello);
    hash.update(server_hello);
    hash.finalize().into()
}

fn random_nonce() -> Result<[u8; NONCE_LEN], HandshakeError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| DhError::Random)?;
    Ok(nonce)
}

/// Checks magic and version at the start of a hello; returns the bytes after them.
fn check_preamble(buf: &[u8]) -> Result<(u16, &[u8]), HandshakeError> {
    let (magic, rest) = buf
        .split_first_chunk::<4>()
        .ok_or(HandshakeError::Malformed("hello too short"))?;
    if *magic != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    let (version, rest) = rest
        .split_first_chunk::<2>()
        .ok_or(HandshakeError::Malformed("hello too short"))?;
    Ok((u16::from_be_bytes(*version), rest))
}

/// A parsed ClientHello.
#[derive(Debug, Clone)]
pub struct ClientHello {
    /// The client's ephemeral public value `e_c`.
    pub ephemeral: PublicKey,
    /// The client's nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl ClientHello {
    /// Length of the part the server checks first: magic and version.
    pub const PREAMBLE_LEN: usize = 4 + 2;

    /// Checks a ClientHello's first [`ClientHello::PREAMBLE_LEN`] bytes, so a server can turn
    /// away another protocol or version before reading more.
    pub fn check_preamble(preamble: &[u8]) -> Result<(), HandshakeError> {
        let (version, _) = check_preamble(preamble)?;
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion {
                peer: version,
                ours: PROTOCOL_VERSION,
            });
        }
        Ok(())
    }

    /// Encodes a ClientHello.
    pub fn encode(&self) -> [u8; CLIENT_HELLO_LEN] {
        let mut out = [0u8; CLIENT_HELLO_LEN];
        let mut w = Writer(&mut out, 0);
        w.put(&MAGIC);
        w.put(&PROTOCOL_VERSION.to_be_bytes());
        w.put(self.ephemeral.as_bytes());
        w.put(&self.nonce);
        out
    }

    /// Decodes exactly [`CLIENT_HELLO_LEN`] bytes, checking magic, version and `e_c`.
    pub fn decode(buf: &[u8]) -> Result<Self, HandshakeError> {
        Self::check_preamble(buf)?;
        let rest = buf.get(Self::PREAMBLE_LEN..).unwrap_or_default();
        if buf.len() != CLIENT_HELLO_LEN {
            return Err(HandshakeError::Malformed("ClientHello length"));
        }
        let (key, nonce) = rest
            .split_at_checked(ELEMENT_LEN)
            .ok_or(HandshakeError::Malformed("ClientHello length"))?;
        Ok(Self {
            ephemeral: PublicKey::from_bytes(key)?,
            nonce: nonce
                .try_into()
                .map_err(|_| HandshakeError::Malformed("ClientHello length"))?,
        })
    }
}

/// Writes consecutive slices into a fixed buffer.
struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.1 + bytes.len();
        if let Some(dst) = self.0.get_mut(self.1..end) {
            dst.copy_from_slice(bytes);
        }
        self.1 = end;
    }
}

/// The bytes a server sends to a client whose version it does not speak, before closing.
pub fn version_rejection() -> [u8; SERVER_HELLO_HEADER_LEN] {
    let mut out = [0u8; SERVER_HELLO_HEADER_LEN];
    let mut w = Writer(&mut out, 0);
    w.put(&MAGIC);
    w.put(&PROTOCOL_VERSION.to_be_bytes());
    w.put(&[STATUS_UNSUPPORTED_VERSION]);
    out
}

/// The server's side: answers a ClientHello with its flight and the session keys.
///
/// `ephemeral` is a fresh key pair (from an [`EphemeralPool`](crate::crypto::dh::EphemeralPool));
/// `nonce` is fresh randomness. Costs two modular exponentiations.
pub fn server_respond(
    identity: &ServerIdentity,
    ephemeral: &KeyPair,
    nonce: [u8; NONCE_LEN],
    client_hello: &[u8],
) -> Result<(Vec<u8>, SessionKeys), HandshakeError> {
    let hello = ClientHello::decode(client_hello)?;
    let certificate = identity.encoded_certificate();
    let cert_len = u16::try_from(certificate.len())
        .map_err(|_| HandshakeError::Malformed("certificate too long"))?;
    let mut flight = Vec::with_capacity(MAX_SERVER_FLIGHT_LEN);
    flight.extend_from_slice(&MAGIC);
    flight.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    flight.push(STATUS_ACCEPTED);
    flight.extend_from_slice(ephemeral.public().as_bytes());
    flight.extend_from_slice(&nonce);
    flight.extend_from_slice(&cert_len.to_be_bytes());
    flight.extend_from_slice(certificate);

    let th = transcript_hash(client_hello, &flight);
    let [z_ephemeral, z_static] = agree_all([
        (ephemeral, &hello.ephemeral),
        (identity.key(), &hello.ephemeral),
    ]);
    let schedule = schedule(&th, z_ephemeral.as_bytes(), z_static.as_bytes());
    flight.extend_from_slice(&schedule.finished);
    Ok((flight, schedule.keys))
}

/// The client's side, from its hello to the established keys.
pub struct ClientHandshake {
    key: KeyPair,
    hello: [u8; CLIENT_HELLO_LEN],
    pinned: Option<Fingerprint>,
}

/// The outcome of a successful client handshake.
#[derive(Debug)]
pub struct Established {
    /// The session's four keys.
    pub keys: SessionKeys,
    /// The certificate the server proved it holds the key of.
    pub server: ServerCertificate,
}

impl ClientHandshake {
    /// Starts a handshake with a fresh ephemeral key and nonce. `pinned` is the fingerprint
    /// remembered for this server, if any: a server presenting another key is refused.
    pub fn new(pinned: Option<Fingerprint>) -> Result<Self, HandshakeError> {
        Ok(Self::with_key(
            KeyPair::generate()?,
            random_nonce()?,
            pinned,
        ))
    }

    /// Starts a handshake with a given ephemeral key and nonce (for test vectors).
    pub fn with_key(key: KeyPair, nonce: [u8; NONCE_LEN], pinned: Option<Fingerprint>) -> Self {
        let hello = ClientHello {
            ephemeral: key.public().clone(),
            nonce,
        }
        .encode();
        Self { key, hello, pinned }
    }

    /// Returns the ClientHello to send.
    pub fn hello(&self) -> &[u8; CLIENT_HELLO_LEN] {
        &self.hello
    }

    /// Returns how long the server's flight at the start of `buf` is, `Ok(None)` if more bytes
    /// are needed to tell, or the error a rejection or malformed header means.
    pub fn flight_len(buf: &[u8]) -> Result<Option<usize>, HandshakeError> {
        if buf.len() < SERVER_HELLO_HEADER_LEN {
            // Fail early on garbage, even before the header is complete.
            if buf.iter().zip(MAGIC.iter()).any(|(a, b)| a != b) {
                return Err(HandshakeError::BadMagic);
            }
            return Ok(None);
        }
        let (version, rest) = check_preamble(buf)?;
        match rest.first() {
            Some(&STATUS_ACCEPTED) if version == PROTOCOL_VERSION => {}
            Some(&STATUS_UNSUPPORTED_VERSION) => {
                return Err(HandshakeError::UnsupportedVersion {
                    peer: version,
                    ours: PROTOCOL_VERSION,
                });
            }
            _ if version != PROTOCOL_VERSION => {
                return Err(HandshakeError::UnsupportedVersion {
                    peer: version,
                    ours: PROTOCOL_VERSION,
                });
            }
            _ => return Err(HandshakeError::Malformed("unknown ServerHello status")),
        }
        let cert_len_at = SERVER_HELLO_HEADER_LEN + ELEMENT_LEN + NONCE_LEN;
        let Some(cert_len) = buf
            .get(cert_len_at..cert_len_at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
        else {
            return Ok(None);
        };
        let cert_len = usize::from(u16::from_be_bytes(cert_len));
        if cert_len > MAX_CERTIFICATE_LEN {
            return Err(HandshakeError::Malformed("certificate too long"));
        }
        let total = cert_len_at + 2 + cert_len + FINISHED_LEN;
        Ok((buf.len() >= total).then_some(total))
    }

    /// Checks the server's whole flight (exactly [`ClientHandshake::flight_len`] bytes) and
    /// derives the session keys. Costs two modular exponentiations.
    pub fn finish(self, flight: &[u8]) -> Result<Established, HandshakeError> {
        if Self::flight_len(flight)? != Some(flight.len()) {
            return Err(HandshakeError::Malformed("ServerHello length"));
        }
        let short = HandshakeError::Malformed("ServerHello length");
        let body = flight.get(SERVER_HELLO_HEADER_LEN..).ok_or(short.clone())?;
        let (e_s, body) = body.split_at_checked(ELEMENT_LEN).ok_or(short.clone())?;
        let (_nonce, body) = body.split_at_checked(NONCE_LEN).ok_or(short.clone())?;
        let (_cert_len, body) = body.split_at_checked(2).ok_or(short.clone())?;
        let cert_end = body.len().checked_sub(FINISHED_LEN).ok_or(short.clone())?;
        let (certificate, finished) = body.split_at_checked(cert_end).ok_or(short)?;

        let server = ServerCertificate::decode(certificate)?;
        let presented = server.fingerprint();
        if let Some(pinned) = self.pinned
            && pinned != presented
        {
            return Err(HandshakeError::ServerKeyChanged { pinned, presented });
        }
        let e_s = PublicKey::from_bytes(e_s)?;
        let hello_end = flight.len() - FINISHED_LEN;
        let th = transcript_hash(&self.hello, flight.get(..hello_end).unwrap_or_default());
        let [z_ephemeral, z_static] =
            agree_all([(&self.key, &e_s), (&self.key, &server.public_key)]);
        let schedule = schedule(&th, z_ephemeral.as_bytes(), z_static.as_bytes());
        if !ct_eq(&schedule.finished, finished) {
            return Err(HandshakeError::BadFinished);
        }
        Ok(Established {
            keys: schedule.keys,
            server,
        })
    }
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("pinned", &self.pinned)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pinned: Option<Fingerprint>) -> (Result<Established, HandshakeError>, SessionKeys) {
        let identity = ServerIdentity::generate("test").unwrap();
        let client = ClientHandshake::new(pinned.or(Some(identity.fingerprint()))).unwrap();
        let ephemeral = KeyPair::generate().unwrap();
        let (flight, server_keys) =
            server_respond(&identity, &ephemeral, [3; NONCE_LEN], client.hello()).unwrap();
        assert_eq!(
            ClientHandshake::flight_len(&flight).unwrap(),
            Some(flight.len())
        );
        (client.finish(&flight), server_keys)
    }

    #[test]
    fn both_sides_derive_the_same_keys() {
        let (client, server) = run(None);
        let client = client.unwrap();
        assert_eq!(
            client.keys.client_to_server.enc,
            server.client_to_server.enc
        );
        assert_eq!(
            client.keys.server_to_client.mac,
            server.server_to_client.mac
        );
        assert_ne!(
            client.keys.client_to_server.enc,
            server.server_to_client.enc
        );
    }

    #[test]
    fn a_changed_server_key_is_refused() {
        let (client, _) = run(Some(Fingerprint([1; 32])));
        assert!(matches!(
            client,
            Err(HandshakeError::ServerKeyChanged { .. })
        ));
    }

    #[test]
    fn an_impostor_without_the_private_key_fails_finished() {
        // The impostor presents the real certificate but holds another private key.
        let real = ServerIdentity::generate("real").unwrap();
        let impostor = ServerIdentity::new(
            KeyPair::generate().unwrap(),
            "real",
            real.certificate().created_at,
        );
        let client = ClientHandshake::new(Some(real.fingerprint())).unwrap();
        let ephemeral = KeyPair::generate().unwrap();
        let (mut flight, _) =
            server_respond(&impostor, &ephemeral, [0; NONCE_LEN], client.hello()).unwrap();
        // Splice the real certificate in place of the impostor's (same length).
        let at = SERVER_HELLO_HEADER_LEN + ELEMENT_LEN + NONCE_LEN + 2;
        let cert = real.encoded_certificate();
        flight[at..at + cert.len()].copy_from_slice(cert);
        assert_eq!(
            client.finish(&flight).unwrap_err(),
            HandshakeError::BadFinished
        );
    }

    #[test]
    fn flipping_any_flight_byte_fails() {
        let identity = ServerIdentity::generate("t").unwrap();
        let ephemeral = KeyPair::generate().unwrap();
        let key = KeyPair::generate().unwrap();
        let secret = *key.secret_bytes();
        let hello = ClientHandshake::with_key(key, [5; NONCE_LEN], None)
            .hello()
            .to_owned();
        let (flight, _) = server_respond(&identity, &ephemeral, [6; NONCE_LEN], &hello).unwrap();
        // Every eighth byte keeps the test quick; each costs two exponentiations.
        for i in (0..flight.len()).step_by(8) {
            let mut bad = flight.clone();
            bad[i] ^= 0x01;
            let client = ClientHandshake::with_key(
                KeyPair::from_secret(&secret).unwrap(),
                [5; NONCE_LEN],
                None,
            );
            assert!(client.finish(&bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn version_mismatch_is_reported_both_ways() {
        let key = KeyPair::generate().unwrap();
        let mut hello = ClientHandshake::with_key(key, [0; NONCE_LEN], None)
            .hello()
            .to_owned();
        hello[5] = 9;
        assert!(matches!(
            ClientHello::decode(&hello),
            Err(HandshakeError::UnsupportedVersion { peer: 9, .. })
        ));
        let mut rejection = version_rejection();
        rejection[5] = 7;
        assert!(matches!(
            ClientHandshake::flight_len(&rejection),
            Err(HandshakeError::UnsupportedVersion { peer: 7, .. })
        ));
    }

    #[test]
    fn garbage_is_refused_early() {
        assert_eq!(
            ClientHandshake::flight_len(b"HTTP").unwrap_err(),
            HandshakeError::BadMagic
        );
        assert_eq!(ClientHandshake::flight_len(b"UC").unwrap(), None);
        assert_eq!(
            ClientHello::decode(&[0; CLIENT_HELLO_LEN]).unwrap_err(),
            HandshakeError::BadMagic
        );
    }
}
