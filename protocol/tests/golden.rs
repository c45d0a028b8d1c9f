//! Golden bytes: every variant of every wire enum, encoded, pinned under `tests/fixtures/`.
//!
//! bincode writes variant indices, so reordering or removing a variant silently changes the
//! wire format; these fixtures make that a test failure. Each enum's samples must cover all of
//! its variants, in order: the test checks that index `samples.len()` is not a variant.
//!
//! After an intended change (a new variant appended), regenerate with
//! `UCHAT_UPDATE_FIXTURES=1 cargo test -p protocol --test golden` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;

use protocol::codec;
use protocol::e2e::{
    AttachmentRef, Body, Content, Envelope, ImageFormat, Sealed, StyledText, WrappedKey,
};
use protocol::message::*;
use protocol::{
    AttachmentId, ClientMsgId, CodecError, ConversationId, RoomId, Seq, Timestamp, UserId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

fn bytes(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

fn user(id: u64) -> UserSummary {
    UserSummary {
        id: UserId(id),
        username: format!("用户{id}"),
        sex: Sex::Female,
        age: 30,
    }
}

fn friend() -> Friend {
    Friend {
        user: user(2),
        conversation: ConversationId(7),
        presence: Presence::Online("127.0.0.1:50000".parse::<SocketAddr>().unwrap()),
        last_message_at: Some(Timestamp(1_700_000_000_000)),
    }
}

fn room() -> Room {
    Room {
        id: RoomId(100),
        name: "study".into(),
        conversation: ConversationId(8),
        last_message_at: None,
    }
}

fn stored() -> StoredMessage {
    StoredMessage {
        conversation: ConversationId(7),
        seq: Seq(3),
        sender: UserId(2),
        client_msg_id: ClientMsgId([0xab; 16]),
        sent_at: Timestamp(1_700_000_000_123),
        envelope: bytes(b"envelope"),
    }
}

fn bundle() -> LoginBundle {
    LoginBundle {
        me: user(1),
        friends: vec![friend()],
        rooms: vec![room()],
        pending_requests: vec![user(3)],
        conversations: vec![ConversationState {
            conversation: ConversationId(7),
            max_seq: Seq(5),
            delivered_seq: Seq(4),
            read_seq: Seq(2),
        }],
    }
}

fn kdf() -> KdfParams {
    KdfParams {
        salt: [0x5a; 16],
        cost: KdfCost {
            memory_kib: 65536,
            iterations: 3,
            parallelism: 1,
        },
    }
}

fn wrapped_key() -> WrappedPrivateKey {
    WrappedPrivateKey {
        key_version: 1,
        iv: [0x11; 16],
        ciphertext: bytes(&[0x22; 48]),
        mac: [0x33; 16],
    }
}

fn requests() -> Vec<(&'static str, Request)> {
    vec![
        (
            "Register",
            Request::Register(Register {
                username: "小明".into(),
                auth_key: [0xa1; 32],
                kdf: kdf(),
                email: "ming@example.cn".into(),
                sex: Sex::Male,
                age: 20,
                public_key: bytes(&[2; 4]),
            }),
        ),
        (
            "Login",
            Request::Login(Login {
                username: "alice".into(),
                auth_key: [0xa2; 32],
            }),
        ),
        ("Logout", Request::Logout),
        ("SearchUsers", Request::SearchUsers { query: "al".into() }),
        ("AddFriend", Request::AddFriend { user: UserId(2) }),
        (
            "ResolveFriendRequest",
            Request::ResolveFriendRequest {
                from: UserId(3),
                decision: FriendDecision::Later,
            },
        ),
        ("DeleteFriend", Request::DeleteFriend { friend: UserId(2) }),
        (
            "CreateRoom",
            Request::CreateRoom {
                name: "study".into(),
            },
        ),
        ("JoinRoom", Request::JoinRoom { room: RoomId(100) }),
        ("RoomMembers", Request::RoomMembers { room: RoomId(100) }),
        (
            "GetCertificates",
            Request::GetCertificates {
                users: vec![UserId(2), UserId(3)],
            },
        ),
        (
            "SendMessage",
            Request::SendMessage(SendMessage {
                conversation: ConversationId(7),
                client_msg_id: ClientMsgId([1; 16]),
                envelope: bytes(b"sealed"),
            }),
        ),
        (
            "Sync",
            Request::Sync {
                cursors: vec![Cursor {
                    conversation: ConversationId(7),
                    seq: Seq(2),
                }],
                limit: 100,
            },
        ),
        (
            "AckDelivered",
            Request::AckDelivered {
                conversation: ConversationId(7),
                seq: Seq(3),
            },
        ),
        (
            "AckRead",
            Request::AckRead {
                conversation: ConversationId(7),
                seq: Seq(3),
            },
        ),
        (
            "History",
            Request::History {
                conversation: ConversationId(7),
                before: Seq(0),
                limit: 50,
            },
        ),
        (
            "UploadStart",
            Request::UploadStart {
                size: 1 << 20,
                sha256: [9; 32],
            },
        ),
        (
            "UploadChunk",
            Request::UploadChunk {
                attachment: AttachmentId(5),
                offset: 0,
                data: bytes(b"chunk"),
            },
        ),
        (
            "UploadStatus",
            Request::UploadStatus {
                attachment: AttachmentId(5),
            },
        ),
        (
            "Download",
            Request::Download {
                attachment: AttachmentId(5),
                offset: 262_144,
                max_len: 262_144,
            },
        ),
        ("Ping", Request::Ping { nonce: 42 }),
        ("Contacts", Request::Contacts),
        (
            "Prelogin",
            Request::Prelogin {
                username: "alice".into(),
            },
        ),
        ("FetchPrivateKey", Request::FetchPrivateKey),
        ("StorePrivateKey", Request::StorePrivateKey(wrapped_key())),
        (
            "ChangePassword",
            Request::ChangePassword {
                old_auth_key: [0xa2; 32],
                new_auth_key: [0xa3; 32],
                kdf: kdf(),
                wrapped_key: wrapped_key(),
            },
        ),
        (
            "ResetKey",
            Request::ResetKey {
                public_key: bytes(&[4; 4]),
                wrapped_key: wrapped_key(),
            },
        ),
    ]
}

fn responses() -> Vec<(&'static str, Response)> {
    vec![
        (
            "Registered",
            Response::Registered {
                user: UserId(1),
                server_certificate: bytes(b"cert"),
            },
        ),
        ("LoggedIn", Response::LoggedIn(bundle())),
        ("Done", Response::Done),
        ("Users", Response::Users(vec![user(2)])),
        (
            "FriendRequestSent",
            Response::FriendRequestSent {
                friend: Some(friend()),
            },
        ),
        ("Friend", Response::Friend(friend())),
        ("Room", Response::Room(room())),
        ("Members", Response::Members(vec![user(1), user(2)])),
        (
            "Certificates",
            Response::Certificates(vec![UserCertificate {
                user: UserId(2),
                username: "bob".into(),
                email: "bob@example.com".into(),
                public_key: bytes(&[3; 4]),
                key_version: 2,
            }]),
        ),
        (
            "MessageAccepted",
            Response::MessageAccepted {
                conversation: ConversationId(7),
                seq: Seq(4),
                sent_at: Timestamp(1_700_000_000_999),
            },
        ),
        (
            "Messages",
            Response::Messages {
                messages: vec![stored()],
                more: true,
            },
        ),
        (
            "UploadStarted",
            Response::UploadStarted {
                attachment: AttachmentId(5),
                chunk_size: 262_144,
            },
        ),
        (
            "UploadProgress",
            Response::UploadProgress {
                attachment: AttachmentId(5),
                received: 262_144,
                complete: false,
            },
        ),
        (
            "Chunk",
            Response::Chunk {
                attachment: AttachmentId(5),
                offset: 0,
                total: 5,
                data: bytes(b"chunk"),
            },
        ),
        ("Pong", Response::Pong { nonce: 42 }),
        ("Contacts", Response::Contacts(bundle())),
        ("Prelogin", Response::Prelogin(kdf())),
        (
            "PrivateKey",
            Response::PrivateKey {
                key_version: 1,
                wrapped: Some(wrapped_key()),
            },
        ),
        (
            "Certificate",
            Response::Certificate(UserCertificate {
                user: UserId(1),
                username: "alice".into(),
                email: "alice@example.com".into(),
                public_key: bytes(&[5; 4]),
                key_version: 2,
            }),
        ),
    ]
}

fn events() -> Vec<(&'static str, Event)> {
    vec![
        ("Message", Event::Message(stored())),
        (
            "Presence",
            Event::Presence {
                user: UserId(2),
                presence: Presence::Online("[::1]:7878".parse().unwrap()),
            },
        ),
        ("FriendRequest", Event::FriendRequest(user(3))),
        ("FriendAdded", Event::FriendAdded(friend())),
        ("FriendRemoved", Event::FriendRemoved { user: UserId(2) }),
        (
            "Kicked",
            Event::Kicked {
                reason: "your account was signed in elsewhere".into(),
            },
        ),
        (
            "RoomMemberJoined",
            Event::RoomMemberJoined {
                room: RoomId(100),
                member: user(4),
            },
        ),
    ]
}

fn client_messages() -> Vec<(&'static str, ClientMessage)> {
    vec![(
        "Request",
        ClientMessage::Request {
            id: 1,
            body: Request::Ping { nonce: 7 },
        },
    )]
}

fn server_messages() -> Vec<(&'static str, ServerMessage)> {
    vec![
        (
            "Response",
            ServerMessage::Response {
                id: 1,
                result: Ok(Response::Pong { nonce: 7 }),
            },
        ),
        (
            "Event",
            ServerMessage::Event(Event::FriendRemoved { user: UserId(2) }),
        ),
    ]
}

fn results() -> Vec<(&'static str, Result<Response, Error>)> {
    vec![
        ("Ok", Ok(Response::Done)),
        (
            "Err",
            Err(Error {
                code: ErrorCode::InvalidField,
                message: "check the form".into(),
                fields: vec![FieldError {
                    field: Field::Email,
                    message: "an email looks like name@host.tld".into(),
                }],
            }),
        ),
    ]
}

fn error_codes() -> Vec<(&'static str, ErrorCode)> {
    use ErrorCode::*;
    vec![
        ("Internal", Internal),
        ("InvalidRequest", InvalidRequest),
        ("NotLoggedIn", NotLoggedIn),
        ("BadCredentials", BadCredentials),
        ("RateLimited", RateLimited),
        ("InvalidField", InvalidField),
        ("UsernameTaken", UsernameTaken),
        ("EmailTaken", EmailTaken),
        ("UserNotFound", UserNotFound),
        ("FriendSelf", FriendSelf),
        ("AlreadyFriends", AlreadyFriends),
        ("RequestPending", RequestPending),
        ("NoSuchRequest", NoSuchRequest),
        ("NotFriends", NotFriends),
        ("RoomNotFound", RoomNotFound),
        ("RoomNameTaken", RoomNameTaken),
        ("AlreadyMember", AlreadyMember),
        ("NotMember", NotMember),
        ("ConversationNotFound", ConversationNotFound),
        ("TooLarge", TooLarge),
        ("AttachmentNotFound", AttachmentNotFound),
        ("UploadOffsetMismatch", UploadOffsetMismatch),
        ("ChecksumMismatch", ChecksumMismatch),
        ("Unavailable", Unavailable),
        ("AlreadyLoggedIn", AlreadyLoggedIn),
        ("MembersChanged", MembersChanged),
    ]
}

fn fields() -> Vec<(&'static str, Field)> {
    vec![
        ("Username", Field::Username),
        ("Password", Field::Password),
        ("Email", Field::Email),
        ("Sex", Field::Sex),
        ("Age", Field::Age),
        ("PublicKey", Field::PublicKey),
    ]
}

fn sexes() -> Vec<(&'static str, Sex)> {
    vec![
        ("Undisclosed", Sex::Undisclosed),
        ("Male", Sex::Male),
        ("Female", Sex::Female),
        ("Other", Sex::Other),
    ]
}

fn decisions() -> Vec<(&'static str, FriendDecision)> {
    vec![
        ("Accept", FriendDecision::Accept),
        ("Reject", FriendDecision::Reject),
        ("Later", FriendDecision::Later),
    ]
}

fn presences() -> Vec<(&'static str, Presence)> {
    vec![
        ("Offline", Presence::Offline),
        ("Online", Presence::Online("10.0.0.1:7878".parse().unwrap())),
    ]
}

fn sealed() -> Sealed {
    Sealed {
        iv: [1; 16],
        ciphertext: bytes(&[2; 16]),
        mac: [3; 16],
    }
}

fn envelopes() -> Vec<(&'static str, Envelope)> {
    vec![
        ("Direct", Envelope::Direct(sealed())),
        (
            "Group",
            Envelope::Group {
                body: sealed(),
                keys: vec![WrappedKey {
                    recipient: UserId(2),
                    iv: [4; 16],
                    wrapped: bytes(&[5; 80]),
                    mac: [6; 16],
                }],
            },
        ),
    ]
}

fn bodies() -> Vec<(&'static str, Body)> {
    vec![
        (
            "Text",
            Body::Text(StyledText {
                text: "第一行\nsecond line".into(),
                font_size: 14,
                color: [0xd0, 0x20, 0x20],
            }),
        ),
        (
            "Image",
            Body::Image {
                name: "cat.png".into(),
                format: ImageFormat::Png,
                content: Content::Inline(bytes(b"\x89PNG")),
            },
        ),
        (
            "File",
            Body::File {
                name: "report.pdf".into(),
                size: 20 << 20,
                content: Content::Attachment(AttachmentRef {
                    id: AttachmentId(5),
                    size: 20 << 20,
                    key: bytes(&[7; 64]),
                    sha256: [8; 32],
                }),
            },
        ),
    ]
}

fn image_formats() -> Vec<(&'static str, ImageFormat)> {
    vec![
        ("Png", ImageFormat::Png),
        ("Jpeg", ImageFormat::Jpeg),
        ("Gif", ImageFormat::Gif),
        ("Bmp", ImageFormat::Bmp),
        ("WebP", ImageFormat::WebP),
    ]
}

fn contents() -> Vec<(&'static str, Content)> {
    vec![
        ("Inline", Content::Inline(bytes(b"x"))),
        (
            "Attachment",
            Content::Attachment(AttachmentRef {
                id: AttachmentId(1),
                size: 1,
                key: bytes(&[0; 64]),
                sha256: [0; 32],
            }),
        ),
    ]
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.hex"))
}

/// Checks one enum's samples against its fixture file (or rewrites the file).
fn check<T>(name: &str, samples: Vec<(&'static str, T)>)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    // Variant indices are the first four bytes, little-endian: they must run 0, 1, 2, ...
    let mut text = String::new();
    for (index, (variant, value)) in samples.iter().enumerate() {
        let encoded = codec::encode(value).unwrap();
        assert_eq!(
            encoded[..4],
            (index as u32).to_le_bytes(),
            "{name}::{variant} is not at index {index}: samples must follow declaration order"
        );
        assert_eq!(&codec::decode::<T>(&encoded).unwrap(), value);
        text.push_str(&format!("{variant} {}\n", hex::encode(&encoded)));
    }
    // No variant past the samples: index `len` must be unknown to the decoder.
    let mut past_end = (samples.len() as u32).to_le_bytes().to_vec();
    past_end.resize(4096, 0);
    let outcome = codec::decode::<T>(&past_end);
    let unknown = format!("variant index 0 <= i < {}", samples.len());
    // std's Result words its error differently, and can never grow a variant.
    let closed = name == "result";
    assert!(
        closed
            || matches!(&outcome, Err(CodecError::Decode(e)) if e.to_string().contains(&unknown)),
        "{name} has a variant at index {} with no sample: add one",
        samples.len()
    );

    let path = fixture_path(name);
    if std::env::var_os("UCHAT_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; see this file's docs", path.display()));
    for (line, (expected, actual)) in pinned.lines().zip(text.lines()).enumerate() {
        assert_eq!(
            expected,
            actual,
            "{name} line {}: the encoding changed; wire enums are append-only",
            line + 1
        );
    }
    assert_eq!(
        pinned.lines().count(),
        text.lines().count(),
        "{name}: fixture and samples differ in number"
    );
}

#[test]
fn requests_are_pinned() {
    check("request", requests());
}

#[test]
fn responses_are_pinned() {
    check("response", responses());
}

#[test]
fn events_are_pinned() {
    check("event", events());
}

#[test]
fn envelopes_of_messages_are_pinned() {
    check("client_message", client_messages());
    check("server_message", server_messages());
    check("result", results());
}

#[test]
fn small_enums_are_pinned() {
    check("error_code", error_codes());
    check("field", fields());
    check("sex", sexes());
    check("friend_decision", decisions());
    check("presence", presences());
}

#[test]
fn e2e_enums_are_pinned() {
    check("envelope", envelopes());
    check("body", bodies());
    check("content", contents());
    check("image_format", image_formats());
}
