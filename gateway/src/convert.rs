//! Between the services' protobuf types and the client protocol's types, and from a failed
//! gRPC status to the client's error: the one place these mappings live.

use std::net::{IpAddr, SocketAddr};

use proto::common::{self, ErrorCode as ServiceCode};
use protocol::message::{
    ConversationState, Error, ErrorCode, Field, FieldError, Friend, KdfCost, KdfParams, Presence,
    Room, Sex, StoredMessage, UserCertificate, UserSummary, WrappedPrivateKey,
};
use protocol::{ClientMsgId, ConversationId, RoomId, Seq, Timestamp, UserId};
use serde_bytes::ByteBuf;
use tonic::{Code, Status};

/// The client's error for a failed service call. The message of a coded status is written for
/// people and passed on; anything else becomes a generic message (details stay in the log).
pub fn status_to_error(status: &Status) -> Error {
    match client_code(proto::error_code(status)) {
        Some(code) => Error::new(code, status.message()),
        None => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => unavailable(),
            _ => {
                tracing::warn!(code = ?status.code(), message = status.message(), "service call failed");
                Error::new(ErrorCode::Internal, "internal error")
            }
        },
    }
}

/// The error for a service that did not answer.
pub fn unavailable() -> Error {
    Error::new(
        ErrorCode::Unavailable,
        "a service is unavailable; try again shortly",
    )
}

/// The client's code for a service's code; `None` for codes the client never sees as such.
pub fn client_code(code: ServiceCode) -> Option<ErrorCode> {
    match code {
        ServiceCode::Unspecified | ServiceCode::Internal => None,
        ServiceCode::InvalidRequest => Some(ErrorCode::InvalidRequest),
        ServiceCode::BadCredentials => Some(ErrorCode::BadCredentials),
        ServiceCode::UserNotFound => Some(ErrorCode::UserNotFound),
        ServiceCode::FriendSelf => Some(ErrorCode::FriendSelf),
        ServiceCode::AlreadyFriends => Some(ErrorCode::AlreadyFriends),
        ServiceCode::RequestPending => Some(ErrorCode::RequestPending),
        ServiceCode::NoSuchRequest => Some(ErrorCode::NoSuchRequest),
        ServiceCode::NotFriends => Some(ErrorCode::NotFriends),
        ServiceCode::RoomNotFound => Some(ErrorCode::RoomNotFound),
        ServiceCode::RoomNameTaken => Some(ErrorCode::RoomNameTaken),
        ServiceCode::AlreadyMember => Some(ErrorCode::AlreadyMember),
        ServiceCode::NotMember => Some(ErrorCode::NotMember),
        ServiceCode::ConversationNotFound => Some(ErrorCode::ConversationNotFound),
        ServiceCode::TooLarge => Some(ErrorCode::TooLarge),
        ServiceCode::AttachmentNotFound => Some(ErrorCode::AttachmentNotFound),
        ServiceCode::UploadOffsetMismatch => Some(ErrorCode::UploadOffsetMismatch),
        ServiceCode::ChecksumMismatch => Some(ErrorCode::ChecksumMismatch),
        ServiceCode::InvalidField => Some(ErrorCode::InvalidField),
        ServiceCode::MembersChanged => Some(ErrorCode::MembersChanged),
        ServiceCode::RateLimited => Some(ErrorCode::RateLimited),
        ServiceCode::UnknownGateway => None,
    }
}

/// The client's field for a registration field error.
pub fn field(field: proto::account::Field) -> Field {
    use proto::account::Field as F;
    match field {
        F::Unspecified | F::Username => Field::Username,
        F::Password => Field::Password,
        F::Email => Field::Email,
        F::Sex => Field::Sex,
        F::Age => Field::Age,
        F::PublicKey => Field::PublicKey,
    }
}

/// The registration's field errors as one client error: "taken" codes win, so a client can
/// show "that name is taken" without reading the list.
pub fn field_errors(errors: &[proto::account::FieldError]) -> Error {
    let taken = |f: proto::account::Field| errors.iter().any(|e| e.taken && e.field() == f);
    let (code, message) = if taken(proto::account::Field::Username) {
        (ErrorCode::UsernameTaken, "that username is taken")
    } else if taken(proto::account::Field::Email) {
        (
            ErrorCode::EmailTaken,
            "that email address is already registered",
        )
    } else {
        (ErrorCode::InvalidField, "some fields are not valid")
    };
    Error {
        code,
        message: message.to_owned(),
        fields: errors
            .iter()
            .map(|e| FieldError {
                field: field(e.field()),
                message: e.message.clone(),
            })
            .collect(),
    }
}

/// The service's sex for the client's.
pub fn sex_to_proto(sex: Sex) -> common::Sex {
    match sex {
        Sex::Undisclosed => common::Sex::Undisclosed,
        Sex::Male => common::Sex::Male,
        Sex::Female => common::Sex::Female,
        Sex::Other => common::Sex::Other,
    }
}

fn sex(sex: common::Sex) -> Sex {
    match sex {
        common::Sex::Undisclosed => Sex::Undisclosed,
        common::Sex::Male => Sex::Male,
        common::Sex::Female => Sex::Female,
        common::Sex::Other => Sex::Other,
    }
}

fn timestamp(ms: u64) -> Option<Timestamp> {
    (ms > 0).then_some(Timestamp(ms))
}

/// A user as the client shows it.
pub fn user(user: &common::UserSummary) -> UserSummary {
    UserSummary {
        id: UserId(user.id),
        username: user.username.clone(),
        sex: sex(user.sex()),
        age: u8::try_from(user.age).unwrap_or(u8::MAX),
    }
}

/// Presence with the address the friend's gateway saw.
pub fn presence(presence: Option<&common::Presence>) -> Presence {
    match presence {
        Some(p) if p.online => {
            let addr = p.addr.as_ref().and_then(|a| {
                let ip: IpAddr = a.ip.parse().ok()?;
                Some(SocketAddr::new(ip, u16::try_from(a.port).ok()?))
            });
            // An online friend whose address did not parse still shows as online.
            Presence::Online(addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))))
        }
        _ => Presence::Offline,
    }
}

/// A friend with presence.
pub fn friend(friend: &common::Friend) -> Friend {
    Friend {
        user: friend
            .user
            .as_ref()
            .map(user)
            .unwrap_or_else(|| UserSummary {
                id: UserId(0),
                username: String::new(),
                sex: Sex::Undisclosed,
                age: 0,
            }),
        conversation: ConversationId(friend.conversation_id),
        presence: presence(friend.presence.as_ref()),
        last_message_at: timestamp(friend.last_message_at),
    }
}

/// A group.
pub fn room(room: &common::Room) -> Room {
    Room {
        id: RoomId(room.id),
        name: room.name.clone(),
        conversation: ConversationId(room.conversation_id),
        last_message_at: timestamp(room.last_message_at),
    }
}

/// A stored message; `None` for a malformed row (a client message id not of 16 bytes).
pub fn message(message: proto::message::StoredMessage) -> Option<StoredMessage> {
    Some(StoredMessage {
        conversation: ConversationId(message.conversation_id),
        seq: Seq(message.seq),
        sender: UserId(message.sender_id),
        client_msg_id: ClientMsgId(message.client_msg_id.as_slice().try_into().ok()?),
        sent_at: Timestamp(message.sent_at),
        envelope: ByteBuf::from(message.envelope),
    })
}

/// Counters of a conversation.
pub fn conversation_state(state: &proto::message::ConversationState) -> ConversationState {
    ConversationState {
        conversation: ConversationId(state.conversation_id),
        max_seq: Seq(state.max_seq),
        delivered_seq: Seq(state.delivered_seq),
        read_seq: Seq(state.read_seq),
    }
}

/// A user's end-to-end certificate.
pub fn certificate(cert: proto::account::Certificate) -> UserCertificate {
    UserCertificate {
        user: UserId(cert.user_id),
        username: cert.username,
        email: cert.email,
        public_key: ByteBuf::from(cert.public_key),
        key_version: cert.key_version,
    }
}

/// Stretch parameters for account-svc.
pub fn kdf_to_proto(kdf: &KdfParams) -> proto::account::KdfParams {
    proto::account::KdfParams {
        salt: kdf.salt.to_vec(),
        memory_kib: kdf.cost.memory_kib,
        iterations: kdf.cost.iterations,
        parallelism: kdf.cost.parallelism,
    }
}

/// Stretch parameters from account-svc; `None` if its salt is not 16 bytes.
pub fn kdf(kdf: &proto::account::KdfParams) -> Option<KdfParams> {
    Some(KdfParams {
        salt: kdf.salt.as_slice().try_into().ok()?,
        cost: KdfCost {
            memory_kib: kdf.memory_kib,
            iterations: kdf.iterations,
            parallelism: kdf.parallelism,
        },
    })
}

/// A wrapped private key for account-svc.
pub fn wrapped_to_proto(wrapped: WrappedPrivateKey) -> proto::account::WrappedKey {
    proto::account::WrappedKey {
        key_version: wrapped.key_version,
        iv: wrapped.iv.to_vec(),
        ciphertext: wrapped.ciphertext.into_vec(),
        mac: wrapped.mac.to_vec(),
    }
}

/// A wrapped private key from account-svc; `None` if malformed.
pub fn wrapped(wrapped: proto::account::WrappedKey) -> Option<WrappedPrivateKey> {
    Some(WrappedPrivateKey {
        key_version: wrapped.key_version,
        iv: wrapped.iv.as_slice().try_into().ok()?,
        ciphertext: ByteBuf::from(wrapped.ciphertext),
        mac: wrapped.mac.as_slice().try_into().ok()?,
    })
}
