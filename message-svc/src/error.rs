//! message-svc's errors and their one mapping to `tonic::Status`.

use proto::common::ErrorCode;
use service_kit::status::{coded, internal};
use tonic::{Code, Status};

/// Why a message call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such conversation.
    #[error("no such conversation")]
    ConversationNotFound,
    /// A one-to-one conversation of people who are not (or no longer) friends.
    #[error("you are not friends with this user")]
    NotFriends,
    /// A room the caller does not belong to.
    #[error("you are not in this group")]
    NotMember,
    /// Too large.
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No such attachment (or not the caller's upload, or not complete yet).
    #[error("no such attachment")]
    AttachmentNotFound,
    /// A chunk that does not start where the upload stands.
    #[error("the upload stands at byte {received}; send the chunk that starts there")]
    OffsetMismatch {
        /// Bytes received so far.
        received: u64,
    },
    /// A download from past the end of the file.
    #[error("the file has {size} bytes; ask for an offset up to that")]
    PastEnd {
        /// The file's size.
        size: u64,
    },
    /// A chunk of the wrong length.
    #[error("this chunk must be {expected} bytes, not {got}")]
    ChunkLength {
        /// The length it must have.
        expected: usize,
        /// The length it had.
        got: usize,
    },
    /// The uploaded bytes do not match the declared SHA-256; the upload was deleted.
    #[error("the file does not match its checksum; nothing was kept, upload it again")]
    ChecksumMismatch,
    /// Too many unfinished uploads.
    #[error("you already have {0} unfinished uploads; finish one first")]
    TooManyUploads(u64),
    /// An envelope whose outer structure is wrong (see `protocol::e2e::EnvelopeShape`).
    #[error(transparent)]
    Envelope(#[from] protocol::EnvelopeError),
    /// A group message whose keys are not wrapped for exactly the group's current members.
    #[error("the group's members changed; seal the message for the current members and resend")]
    MembersChanged,
    /// A request that cannot be valid.
    #[error("{0}")]
    Invalid(&'static str),
    /// The writer task is gone (shutting down).
    #[error("shutting down")]
    ShuttingDown,
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl Error {
    /// The gRPC code and the error code the caller sees.
    pub fn codes(&self) -> (Code, ErrorCode) {
        match self {
            Error::ConversationNotFound => (Code::NotFound, ErrorCode::ConversationNotFound),
            Error::NotFriends => (Code::PermissionDenied, ErrorCode::NotFriends),
            Error::NotMember => (Code::PermissionDenied, ErrorCode::NotMember),
            Error::TooLarge { .. } => (Code::InvalidArgument, ErrorCode::TooLarge),
            Error::MembersChanged => (Code::FailedPrecondition, ErrorCode::MembersChanged),
            Error::Invalid(_) | Error::Envelope(_) | Error::ChunkLength { .. } => {
                (Code::InvalidArgument, ErrorCode::InvalidRequest)
            }
            Error::AttachmentNotFound => (Code::NotFound, ErrorCode::AttachmentNotFound),
            Error::OffsetMismatch { .. } => {
                (Code::FailedPrecondition, ErrorCode::UploadOffsetMismatch)
            }
            Error::PastEnd { .. } => (Code::OutOfRange, ErrorCode::InvalidRequest),
            Error::ChecksumMismatch => (Code::DataLoss, ErrorCode::ChecksumMismatch),
            Error::TooManyUploads(_) => (Code::ResourceExhausted, ErrorCode::TooLarge),
            Error::ShuttingDown => (Code::Unavailable, ErrorCode::Internal),
            Error::Db(_) => (Code::Internal, ErrorCode::Internal),
        }
    }

    /// The error code the caller sees.
    pub fn code(&self) -> ErrorCode {
        self.codes().1
    }

    /// What the caller reads: database details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Db(err) => {
                tracing::error!(%err, "message database");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        if let Error::Db(e) = &err {
            return internal("message database", e);
        }
        let (code, error) = err.codes();
        coded(code, error, err.to_string())
    }
}
