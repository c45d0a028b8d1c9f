//! account-svc's errors and their one mapping to `tonic::Status`.

use proto::common::ErrorCode;
use service_kit::status::{coded, internal};
use tonic::{Code, Status};

/// Why an account call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong username or password (never says which).
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many login attempts are waiting for this account (see `throttle`).
    #[error("too many login attempts for this account; wait a few seconds and try again")]
    Throttled,
    /// A request that cannot be valid.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    /// A gateway renewed a lease that expired and was cleaned up.
    #[error("gateway {0} is not registered")]
    UnknownGateway(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// Hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The service's configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The runtime is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::BadCredentials => coded(
                Code::Unauthenticated,
                ErrorCode::BadCredentials,
                err.to_string(),
            ),
            Error::Throttled => coded(
                Code::ResourceExhausted,
                ErrorCode::RateLimited,
                err.to_string(),
            ),
            Error::Invalid(_) => coded(
                Code::InvalidArgument,
                ErrorCode::InvalidRequest,
                err.to_string(),
            ),
            Error::UnknownGateway(_) => {
                coded(Code::NotFound, ErrorCode::UnknownGateway, err.to_string())
            }
            Error::ShuttingDown => coded(Code::Unavailable, ErrorCode::Internal, "shutting down"),
            Error::Db(ref e) => internal("account database", e),
            Error::Hash(ref e) => internal("password hashing", e),
            Error::Config(ref e) => internal("account configuration", e),
        }
    }
}
