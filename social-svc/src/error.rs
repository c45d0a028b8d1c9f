//! social-svc's errors and their one mapping to `tonic::Status`.

use proto::common::ErrorCode;
use service_kit::status::{coded, internal};
use tonic::{Code, Status};

/// Why a social call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such user.
    #[error("no such user")]
    UserNotFound,
    /// A friend request to oneself.
    #[error("you cannot add yourself as a friend")]
    FriendSelf,
    /// Already friends.
    #[error("you are already friends")]
    AlreadyFriends,
    /// A request to this user already waits for an answer.
    #[error("your friend request is waiting for an answer")]
    RequestPending,
    /// No pending request from that user.
    #[error("there is no friend request from that user")]
    NoSuchRequest,
    /// Not friends.
    #[error("you are not friends with that user")]
    NotFriends,
    /// No room with that number.
    #[error("there is no group with number {0}")]
    RoomNotFound(u64),
    /// The room name is in use.
    #[error("a group with this name already exists")]
    RoomNameTaken,
    /// Already a member.
    #[error("you are already in this group")]
    AlreadyMember,
    /// Not a member.
    #[error("you are not in this group")]
    NotMember,
    /// No such conversation.
    #[error("no such conversation")]
    ConversationNotFound,
    /// A request that cannot be valid.
    #[error("{0}")]
    Invalid(&'static str),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let (code, error) = match &err {
            Error::UserNotFound => (Code::NotFound, ErrorCode::UserNotFound),
            Error::FriendSelf => (Code::InvalidArgument, ErrorCode::FriendSelf),
            Error::AlreadyFriends => (Code::AlreadyExists, ErrorCode::AlreadyFriends),
            Error::RequestPending => (Code::AlreadyExists, ErrorCode::RequestPending),
            Error::NoSuchRequest => (Code::NotFound, ErrorCode::NoSuchRequest),
            Error::NotFriends => (Code::FailedPrecondition, ErrorCode::NotFriends),
            Error::RoomNotFound(_) => (Code::NotFound, ErrorCode::RoomNotFound),
            Error::RoomNameTaken => (Code::AlreadyExists, ErrorCode::RoomNameTaken),
            Error::AlreadyMember => (Code::AlreadyExists, ErrorCode::AlreadyMember),
            Error::NotMember => (Code::PermissionDenied, ErrorCode::NotMember),
            Error::ConversationNotFound => (Code::NotFound, ErrorCode::ConversationNotFound),
            Error::Invalid(_) => (Code::InvalidArgument, ErrorCode::InvalidRequest),
            Error::Db(e) => return internal("social database", e),
        };
        coded(code, error, err.to_string())
    }
}
