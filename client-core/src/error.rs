//! What can go wrong for a client, in words a user can be shown.

use protocol::message::Error as ServerError;

/// A client-side failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request; its error says why.
    #[error("{0}")]
    Server(ServerError),
    /// The connection failed or was closed.
    #[error("not connected to the server: {0}")]
    Disconnected(String),
    /// The server did not answer in time.
    #[error("the server did not answer in time")]
    Timeout,
    /// The handshake, or the key check, failed (includes a changed server key).
    #[error(transparent)]
    Connection(#[from] protocol::ConnectionError),
    /// Local storage failed.
    #[error("local storage: {0}")]
    Store(#[from] sea_orm::DbErr),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// End-to-end encryption failed (a message that does not open, a bad key).
    #[error("end-to-end encryption: {0}")]
    E2e(#[from] protocol::E2eError),
    /// A key file could not be read or written.
    #[error(transparent)]
    KeyFile(#[from] protocol::KeyFileError),
    /// The server is not in the known-servers file and the configuration asks the person to
    /// accept its key first (compare the fingerprint with the one the server printed).
    #[error("first connection to this server: its key's fingerprint is {fingerprint}")]
    UnknownServer {
        /// The fingerprint of the key the server presented.
        fingerprint: protocol::Fingerprint,
    },
    /// Logged in, but the private key is neither on this computer nor openable from the
    /// server's copy. [`crate::Client::start_over`] makes a new key (older messages stay
    /// unreadable here); logging out instead keeps the account as it is.
    #[error(
        "your private key is not on this computer and cannot be restored; start over with a \
         new key (older messages will stay unreadable here) or log in where the key is"
    )]
    KeyLost,
    /// Something the caller asked that cannot be done.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<protocol::message::ErrorCode> {
        match self {
            Self::Server(error) => Some(error.code),
            _ => None,
        }
    }

    /// Whether retrying after a reconnect may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Disconnected(_) | Self::Timeout)
            || self.code() == Some(protocol::message::ErrorCode::Unavailable)
    }
}

impl ClientError {
    /// The pinned and the presented fingerprints, when the server's key is not the one
    /// pinned for it.
    pub fn changed_server_key(&self) -> Option<(protocol::Fingerprint, protocol::Fingerprint)> {
        match self {
            Self::Connection(protocol::ConnectionError::Handshake(
                protocol::HandshakeError::ServerKeyChanged { pinned, presented },
            )) => Some((*pinned, *presented)),
            _ => None,
        }
    }
}
