//! Failed statuses that carry an [`ErrorCode`] in their metadata: the convention lives in
//! `proto` ([`coded`], [`error_code`]); here, the status for a database failure.

use proto::common::ErrorCode;
use tonic::{Code, Status};

pub use proto::{coded, error_code};

/// The status for a database failure: the details go to the log, never to the caller.
pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Status {
    tracing::error!(%err, context, "internal error");
    coded(Code::Internal, ErrorCode::Internal, "internal error")
}
