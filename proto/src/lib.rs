//! The gRPC contract between Uchat's services: the `.proto` files under `proto/`, the tonic
//! code generated from them, and how a call proves it comes from one of Uchat's own
//! processes ([`internal`]), and where its calls go ([`transport`]).
//!
//! Packages are versioned (`uchat.account.v1`, ...); a breaking change makes a `v2` beside
//! `v1`. Services report why a call failed with a [`common::ErrorCode`] in the
//! [`ERROR_CODE_METADATA`] entry of the status, next to the gRPC code.

#![allow(missing_docs, clippy::all)]

pub mod internal;
pub mod transport;

/// Metadata key of the [`common::ErrorCode`] (as its decimal number) on a failed status.
pub const ERROR_CODE_METADATA: &str = "uchat-error";

/// Makes a failed status with `code`, a message for people, and `error` in the
/// [`ERROR_CODE_METADATA`] entry: how every service reports why a call failed.
pub fn coded(
    code: tonic::Code,
    error: common::ErrorCode,
    message: impl Into<String>,
) -> tonic::Status {
    let mut status = tonic::Status::new(code, message);
    status.metadata_mut().insert(
        ERROR_CODE_METADATA,
        tonic::metadata::MetadataValue::from(i32::from(error)),
    );
    status
}

/// Reads the [`common::ErrorCode`] of a failed status; `Unspecified` when it carries none (a
/// failure of the transport, or of a caller that is not a Uchat service).
pub fn error_code(status: &tonic::Status) -> common::ErrorCode {
    status
        .metadata()
        .get(ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .and_then(|v| common::ErrorCode::try_from(v).ok())
        .unwrap_or(common::ErrorCode::Unspecified)
}

/// Largest gRPC message a push server accepts and a push client sends: set on both ends
/// deliberately, not left to tonic's default (4 MiB).
pub const PUSH_MESSAGE_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Most envelope bytes one `Deliver` call carries; a larger fan-out is split into several
/// calls, so a push never exceeds [`PUSH_MESSAGE_MAX_BYTES`] (one envelope is at most 256 KiB,
/// well under the difference).
pub const DELIVER_BATCH_MAX_BYTES: usize = 2 * 1024 * 1024;

/// Why a session is kicked when its account logs in again: the words account-svc puts in
/// `KickRequest.reason` and a gateway sends when the new login lands on it.
pub const SIGNED_IN_ELSEWHERE: &str = "your account was signed in elsewhere";

/// The generated code, nested as the packages are (it refers to other packages by relative
/// paths).
pub mod uchat {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("uchat.common.v1");
        }
    }
    pub mod account {
        pub mod v1 {
            tonic::include_proto!("uchat.account.v1");
        }
    }
    pub mod social {
        pub mod v1 {
            tonic::include_proto!("uchat.social.v1");
        }
    }
    pub mod message {
        pub mod v1 {
            tonic::include_proto!("uchat.message.v1");
        }
    }
    pub mod gateway {
        pub mod v1 {
            tonic::include_proto!("uchat.gateway.v1");
        }
    }
}

/// Types shared by every service.
pub use uchat::common::v1 as common;

/// account-svc: users, certificates, sessions, gateway leases.
pub use uchat::account::v1 as account;

/// social-svc: friends and groups.
pub use uchat::social::v1 as social;

/// message-svc: delivery, sync, history, attachments.
pub use uchat::message::v1 as message;

/// The gateway's push service, which the other services call.
pub use uchat::gateway::v1 as gateway;
