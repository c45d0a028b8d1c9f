//! The protocol's error types, one per layer.
//!
//! None of them carries key material, digests or plaintext, so any of them may be logged.
//! A peer is never told which check failed: the connection is simply closed.

use std::io;

use crate::identity::Fingerprint;

/// A Diffie-Hellman value or key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// A public value of the wrong width.
    #[error("public value is {got} bytes, expected {expected}")]
    WrongLength {
        /// The required width.
        expected: usize,
        /// The width received.
        got: usize,
    },
    /// A public value outside `[2, p-2]`.
    #[error("public value is outside [2, p-2]")]
    OutOfRange,
    /// A private exponent below 2.
    #[error("private exponent is too small")]
    WeakSecret,
    /// The operating system's random source failed.
    #[error("the operating system's random source failed")]
    Random,
    /// The background key-pair thread could not be started.
    #[error("could not start the key-pair pool thread")]
    Pool,
}

/// A frame that fails to decode. Each is fatal to the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The ciphertext length exceeds the limit (checked before anything is allocated).
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The length the header claims, or the plaintext length when sealing.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The length is zero or not a whole number of AES blocks, or the pad byte is not 1 to 16.
    #[error("malformed frame header")]
    Malformed,
    /// The digest does not match (tampered, replayed, reordered or dropped frame, or wrong key).
    #[error("frame digest does not verify")]
    BadDigest,
    /// The decrypted padding does not match the header.
    #[error("frame padding is invalid")]
    BadPadding,
}

/// A handshake that cannot complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The first bytes are not the Uchat magic.
    #[error("peer does not speak the Uchat protocol")]
    BadMagic,
    /// The peer speaks a version this build does not.
    #[error("unsupported protocol version {peer} (this build speaks {ours})")]
    UnsupportedVersion {
        /// The version the peer announced.
        peer: u16,
        /// The version this build speaks.
        ours: u16,
    },
    /// A handshake message is shorter or longer than its layout allows, or has a bad field.
    #[error("malformed handshake message: {0}")]
    Malformed(&'static str),
    /// A Diffie-Hellman value failed validation.
    #[error("invalid key in handshake: {0}")]
    Dh(#[from] DhError),
    /// The server's key is not the one pinned for it.
    #[error(
        "the server's key has changed (pinned {pinned}, presented {presented}); \
         if the operator really replaced it, remove the old entry from the known-servers file"
    )]
    ServerKeyChanged {
        /// The fingerprint remembered for this server.
        pinned: Fingerprint,
        /// The fingerprint the server presented.
        presented: Fingerprint,
    },
    /// The server could not prove it holds the private key of its certificate.
    #[error("the server failed to prove it holds its key")]
    BadFinished,
}

/// A message that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// bincode could not encode the value.
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// bincode could not decode the bytes.
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// Bytes were left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

/// A failure on an established secure connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The transport failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A frame failed its checks.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A frame decrypted to something that is not a valid message.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The peer closed the connection in the middle of a frame or handshake message.
    #[error("connection closed mid-frame")]
    UnexpectedEof,
    /// A blocking computation was cancelled (the runtime is shutting down).
    #[error("background computation was cancelled")]
    Cancelled,
}

/// A failure to seal or open end-to-end content.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// The MAC over the content does not verify: forged, altered or for someone else.
    #[error("message authentication failed")]
    BadMac,
    /// The ciphertext is not a whole number of blocks or its padding is wrong.
    #[error("malformed ciphertext")]
    Malformed,
    /// A group envelope has no key wrapped for this reader.
    #[error("no key in this message for user {0}")]
    NotARecipient(u64),
    /// The decrypted body is not a valid body.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed")]
    Random,
}

/// Why an envelope's outer structure is refused (what a server can check without opening it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a bincode `Envelope` of a known kind, or bytes after it.
    #[error("the envelope is not one this server knows: {0}")]
    Undecodable(String),
    /// A ciphertext that is empty or not a whole number of AES blocks.
    #[error("the envelope's {0} is not a whole number of 16-byte blocks")]
    Blocks(&'static str),
    /// A wrapped content key of the wrong length.
    #[error("a wrapped key must be {expected} bytes, not {got}")]
    WrappedKeyLength {
        /// The length of a wrapped 64-byte key (with its padding).
        expected: usize,
        /// The length it had.
        got: usize,
    },
    /// Two wrapped keys for one member.
    #[error("the envelope wraps the key twice for user {0}")]
    DuplicateRecipient(u64),
    /// A group envelope in a one-to-one conversation, or the reverse.
    #[error("a {envelope} envelope cannot be sent to a {conversation} conversation")]
    WrongKind {
        /// The envelope's kind.
        envelope: &'static str,
        /// The conversation's kind.
        conversation: &'static str,
    },
}

/// A failure to load or save a long-term key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The file exists but is not a valid key file.
    #[error("key file {path} is not a valid Uchat key file: {reason}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The key could not be made.
    #[error(transparent)]
    Dh(#[from] DhError),
}
