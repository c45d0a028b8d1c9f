//! Building a failed `tonic::Status` that carries an [`ErrorCode`] in its metadata.

use proto::ERROR_CODE_METADATA;
use proto::common::ErrorCode;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Makes a status with `code`, a message for people, and `error` in the metadata.
pub fn coded(code: Code, error: ErrorCode, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    status
        .metadata_mut()
        .insert(ERROR_CODE_METADATA, MetadataValue::from(i32::from(error)));
    status
}

/// Reads the [`ErrorCode`] of a status; `Unspecified` when there is none.
pub fn error_code(status: &Status) -> ErrorCode {
    status
        .metadata()
        .get(ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .and_then(|v| ErrorCode::try_from(v).ok())
        .unwrap_or(ErrorCode::Unspecified)
}

/// The status for a database failure: the details go to the log, never to the caller.
pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Status {
    tracing::error!(%err, context, "internal error");
    coded(Code::Internal, ErrorCode::Internal, "internal error")
}
