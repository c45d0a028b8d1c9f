//! The Uchat client-gateway wire protocol.
//!
//! Layers, bottom up, each usable on its own and free of I/O except the last:
//!
//! - [`crypto`]: `ffdhe2048` Diffie-Hellman, AES-256-CBC, HMAC-MD5, HKDF-SHA256.
//! - [`identity`]: the server's long-term key, certificate and fingerprint; private key files.
//! - [`handshake`]: ClientHello / ServerHello, the key schedule, server authentication and
//!   the client's pin check.
//! - [`frame`]: `| length | pad | iv | digest | ciphertext |` frames with per-direction counters.
//! - [`message`] and [`codec`]: the bincode-encoded requests, responses and events.
//! - [`e2e`]: end-to-end envelopes that the server stores but cannot open.
//! - [`connection`]: the handshake and framed messages over any `AsyncRead + AsyncWrite`.
//!
//! `docs/PROTOCOL.md` specifies every byte; this crate is its reference implementation, and its
//! tests check the document's test vectors. It knows nothing of gRPC or databases.

pub mod codec;
pub mod connection;
pub mod crypto;
pub mod e2e;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod identity;
pub mod ids;
pub mod message;
pub mod password;

pub use connection::{SecureConnection, SecureReader, SecureWriter};
pub use crypto::dh::{EphemeralPool, KeyPair, PublicKey};
pub use error::{
    CodecError, ConnectionError, DhError, E2eError, EnvelopeError, FrameError, HandshakeError,
    KeyFileError,
};
pub use identity::{Fingerprint, ServerCertificate, ServerIdentity};
pub use ids::{AttachmentId, ClientMsgId, ConversationId, RoomId, Seq, Timestamp, UserId};
pub use message::{ClientMessage, Event, Request, Response, ServerMessage};
