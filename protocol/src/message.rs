//! The messages inside frames: requests, responses and events, encoded with bincode 2.
//!
//! Every enum here is **append-only**: bincode writes a variant's index, so variants are never
//! reordered or removed, and new ones go at the end. Golden-byte fixtures under
//! `tests/fixtures/` pin each variant's encoding. `docs/PROTOCOL.md` gives every field in order.
//!
//! ```text
//! client → server   ClientMessage::Request { id, body: Request }
//! server → client   ServerMessage::Response { id, result: Result<Response, Error> }
//!                   ServerMessage::Event(Event)
//! ```
//!
//! A response carries the `id` of its request; requests may be answered out of order.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ids::{AttachmentId, ClientMsgId, ConversationId, RoomId, Seq, Timestamp, UserId};
pub use crate::password::{KdfCost, KdfParams, WrappedPrivateKey};

/// Everything a client sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// A request; the server answers with a [`ServerMessage::Response`] of the same `id`.
    Request {
        /// Chosen by the client, unique among its requests in flight.
        id: u64,
        /// What is asked.
        body: Request,
    },
}

/// Everything a server sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The answer to the request with this `id`.
    Response {
        /// The request's id.
        id: u64,
        /// The outcome.
        result: Result<Response, Error>,
    },
    /// Something that happened, not asked for.
    Event(Event),
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Makes an account (F1). Answered by [`Response::Registered`].
    Register(Register),
    /// Signs in (F2), kicking any other session of the user. Answered by [`Response::LoggedIn`].
    Login(Login),
    /// Signs out. Answered by [`Response::Done`].
    Logout,
    /// Finds users whose name starts with `query` (F3). Answered by [`Response::Users`].
    SearchUsers {
        /// A name prefix.
        query: String,
    },
    /// Asks `user` to be friends (F3). Answered by [`Response::FriendRequestSent`].
    AddFriend {
        /// Whom to ask.
        user: UserId,
    },
    /// Answers a pending friend request from `from` (F3). Accept is answered by
    /// [`Response::Friend`], reject and later by [`Response::Done`].
    ResolveFriendRequest {
        /// Who asked.
        from: UserId,
        /// The answer.
        decision: FriendDecision,
    },
    /// Ends a friendship, on both sides at once (F3). Answered by [`Response::Done`].
    DeleteFriend {
        /// The friend to remove.
        friend: UserId,
    },
    /// Makes a group; the server assigns its number (F9). Answered by [`Response::Room`].
    CreateRoom {
        /// The group's name, which must be free.
        name: String,
    },
    /// Joins a group by number (F9). Answered by [`Response::Room`].
    JoinRoom {
        /// The group's number.
        room: RoomId,
    },
    /// Lists a group's members (F9). Answered by [`Response::Members`].
    RoomMembers {
        /// The group.
        room: RoomId,
    },
    /// Fetches users' end-to-end certificates. Answered by [`Response::Certificates`].
    GetCertificates {
        /// Whose certificates.
        users: Vec<UserId>,
    },
    /// Sends a message (F4). Answered by [`Response::MessageAccepted`] once it is stored.
    SendMessage(SendMessage),
    /// Fetches messages newer than the client's cursors (F7, and after every reconnect).
    /// Answered by [`Response::Messages`].
    Sync {
        /// The highest seq the client holds, per conversation; conversations not listed are
        /// fetched from the start.
        cursors: Vec<Cursor>,
        /// Most messages to return; the server may return fewer.
        limit: u32,
    },
    /// Records that the client holds everything up to `seq`. Answered by [`Response::Done`].
    AckDelivered {
        /// The conversation.
        conversation: ConversationId,
        /// The highest seq held.
        seq: Seq,
    },
    /// Records that the user has seen everything up to `seq` (F6). Answered by
    /// [`Response::Done`].
    AckRead {
        /// The conversation.
        conversation: ConversationId,
        /// The highest seq shown.
        seq: Seq,
    },
    /// Fetches older messages, newest first, strictly before `before` (F5). Answered by
    /// [`Response::Messages`].
    History {
        /// The conversation.
        conversation: ConversationId,
        /// Fetch messages with a lower seq than this; `Seq(0)` means from the newest.
        before: Seq,
        /// Most messages to return.
        limit: u32,
    },
    /// Begins an upload of `size` bytes of (end-to-end encrypted) attachment. Answered by
    /// [`Response::UploadStarted`].
    UploadStart {
        /// Total size in bytes.
        size: u64,
        /// SHA-256 of the whole content, checked when the last chunk arrives.
        sha256: [u8; 32],
    },
    /// Sends the chunk at `offset` of an upload. Answered by [`Response::UploadProgress`].
    UploadChunk {
        /// The upload.
        attachment: AttachmentId,
        /// Where the chunk starts; must equal the bytes received so far.
        offset: u64,
        /// The bytes.
        data: ByteBuf,
    },
    /// Asks how much of an upload arrived, to resume it. Answered by
    /// [`Response::UploadProgress`].
    UploadStatus {
        /// The upload.
        attachment: AttachmentId,
    },
    /// Fetches up to `max_len` bytes of an attachment from `offset`. Answered by
    /// [`Response::Chunk`].
    Download {
        /// The attachment.
        attachment: AttachmentId,
        /// Where to start.
        offset: u64,
        /// Most bytes to return.
        max_len: u32,
    },
    /// Keeps the connection alive. Answered by [`Response::Pong`].
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Fetches the contact list again (the bundle of [`Response::LoggedIn`]). Answered by
    /// [`Response::Contacts`].
    Contacts,
    /// Asks how to stretch `username`'s password, before logging in. Answered by
    /// [`Response::Prelogin`] for any name, registered or not, in the same shape.
    Prelogin {
        /// The username as the person typed it.
        username: String,
    },
    /// Asks for the user's wrapped private key. Answered by [`Response::PrivateKey`].
    FetchPrivateKey,
    /// Gives the server the user's wrapped private key, when it holds none for the current
    /// key version. Answered by `Done`.
    StorePrivateKey(WrappedPrivateKey),
    /// Replaces the password: the old authentication key proves it, the new one, its
    /// parameters and the private key wrapped under the new password replace the old ones
    /// together. Answered by `Done`.
    ChangePassword {
        /// The authentication key of the current password.
        old_auth_key: [u8; 32],
        /// The authentication key of the new password.
        new_auth_key: [u8; 32],
        /// How the new password was stretched.
        kdf: KdfParams,
        /// The private key, wrapped under the new password.
        wrapped_key: WrappedPrivateKey,
    },
    /// Starts over with a new key pair when the private key is lost: the certificate's key
    /// version rises by one. Answered by [`Response::Certificate`] with the new certificate.
    ResetKey {
        /// The new public key (256 bytes).
        public_key: ByteBuf,
        /// The new private key, wrapped for the new key version.
        wrapped_key: WrappedPrivateKey,
    },
}

/// The fields of a registration (F1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// 1 to 8 letters or digits of any script.
    pub username: String,
    /// The password's authentication key (see [`crate::password`]): the password itself never
    /// leaves the client. The server keeps an argon2id hash of this.
    pub auth_key: [u8; 32],
    /// How the password was stretched (a fresh random salt, the server's cost).
    pub kdf: KdfParams,
    /// `name@host.tld`.
    pub email: String,
    /// One of a fixed set.
    pub sex: Sex,
    /// 0 to 150.
    pub age: u8,
    /// The user's end-to-end public key (256 bytes); the private key never leaves the client.
    pub public_key: ByteBuf,
}

/// The fields of a login (F2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The username.
    pub username: String,
    /// The password's authentication key, stretched with the parameters of
    /// [`Response::Prelogin`].
    pub auth_key: [u8; 32],
}

/// A user's sex, as the registration form offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    /// Not said.
    Undisclosed,
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
}

/// An answer to a friend request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FriendDecision {
    /// Become friends.
    Accept,
    /// Decline; the request is removed.
    Reject,
    /// Decide later; the request is offered again at the next login.
    Later,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// Where it goes.
    pub conversation: ConversationId,
    /// The client's id for it; a retry with the same id returns the first result.
    pub client_msg_id: ClientMsgId,
    /// The end-to-end encrypted [`Envelope`](crate::e2e::Envelope), encoded; the server
    /// stores it as it is.
    pub envelope: ByteBuf,
}

/// The highest seq a client holds in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The conversation.
    pub conversation: ConversationId,
    /// The highest seq held.
    pub seq: Seq,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The account exists.
    Registered {
        /// The new user's id.
        user: UserId,
        /// The server's certificate in its canonical encoding (see `identity`).
        server_certificate: ByteBuf,
    },
    /// Signed in; everything the main window shows.
    LoggedIn(LoginBundle),
    /// Done; nothing to return.
    Done,
    /// Search results.
    Users(Vec<UserSummary>),
    /// The request was sent; `Some` when it crossed one from the other side and so made a
    /// friendship at once.
    FriendRequestSent {
        /// The new friend, if the requests crossed.
        friend: Option<Friend>,
    },
    /// A friendship made by accepting a request.
    Friend(Friend),
    /// A group made or joined.
    Room(Room),
    /// A group's members.
    Members(Vec<UserSummary>),
    /// End-to-end certificates.
    Certificates(Vec<UserCertificate>),
    /// The message is durably stored at `seq`.
    MessageAccepted {
        /// The conversation.
        conversation: ConversationId,
        /// Its seq there.
        seq: Seq,
        /// When the server stored it.
        sent_at: Timestamp,
    },
    /// A page of messages (sync or history).
    Messages {
        /// The messages, in the order the request defines.
        messages: Vec<StoredMessage>,
        /// Whether more remain past this page.
        more: bool,
    },
    /// An upload may begin.
    UploadStarted {
        /// Its id, also used to resume.
        attachment: AttachmentId,
        /// The chunk size the server prefers.
        chunk_size: u32,
    },
    /// How much of an upload has arrived.
    UploadProgress {
        /// The upload.
        attachment: AttachmentId,
        /// Bytes received and stored.
        received: u64,
        /// Whether all bytes arrived and the SHA-256 matched.
        complete: bool,
    },
    /// Bytes of an attachment.
    Chunk {
        /// The attachment.
        attachment: AttachmentId,
        /// Where these bytes start.
        offset: u64,
        /// Total size of the attachment.
        total: u64,
        /// The bytes.
        data: ByteBuf,
    },
    /// The answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The contact list.
    Contacts(LoginBundle),
    /// How to stretch the password of the name asked about.
    Prelogin(KdfParams),
    /// The user's wrapped private key, if the server holds one, and the current key version.
    PrivateKey {
        /// The version of the key in the user's certificate.
        key_version: u32,
        /// The private key wrapped for that version, if stored.
        wrapped: Option<WrappedPrivateKey>,
    },
    /// The user's own certificate, after a change of key.
    Certificate(UserCertificate),
}

/// What the main window needs at login (F2, F3, F6, F7, F8, F9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginBundle {
    /// The signed-in user.
    pub me: UserSummary,
    /// Friends with presence and last message time.
    pub friends: Vec<Friend>,
    /// Groups the user belongs to.
    pub rooms: Vec<Room>,
    /// Friend requests waiting for an answer.
    pub pending_requests: Vec<UserSummary>,
    /// Per-conversation seqs, from which unread counts follow.
    pub conversations: Vec<ConversationState>,
}

/// A user as lists show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub username: String,
    /// The user's sex.
    pub sex: Sex,
    /// The user's age.
    pub age: u8,
}

/// A friend, with presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Friend {
    /// Who.
    pub user: UserSummary,
    /// The one-to-one conversation with them.
    pub conversation: ConversationId,
    /// Online or not, and from where.
    pub presence: Presence,
    /// When the last message in the conversation was sent, if any.
    pub last_message_at: Option<Timestamp>,
}

/// Whether a user is online, and at which address the gateway sees them (F8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    /// Not connected.
    Offline,
    /// Connected from this address.
    Online(SocketAddr),
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Its number.
    pub id: RoomId,
    /// Its name.
    pub name: String,
    /// Its conversation.
    pub conversation: ConversationId,
    /// When the last message was sent, if any.
    pub last_message_at: Option<Timestamp>,
}

/// A conversation's counters for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    /// The conversation.
    pub conversation: ConversationId,
    /// The seq of its newest message.
    pub max_seq: Seq,
    /// The highest seq the user has acknowledged holding.
    pub delivered_seq: Seq,
    /// The highest seq the user has seen; unread = `max_seq - read_seq`.
    pub read_seq: Seq,
}

impl ConversationState {
    /// Returns the unread count.
    pub fn unread(&self) -> u64 {
        self.max_seq.0.saturating_sub(self.read_seq.0)
    }
}

/// A user's end-to-end certificate: who they are and their public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCertificate {
    /// The user's id.
    pub user: UserId,
    /// The user's name.
    pub username: String,
    /// The user's email.
    pub email: String,
    /// The user's public key (256 bytes).
    pub public_key: ByteBuf,
    /// The key's version: 1, then one more each time the user starts over with a new key.
    pub key_version: u32,
}

/// A message as the server stores and delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its seq there.
    pub seq: Seq,
    /// Who sent it.
    pub sender: UserId,
    /// The sender's id for it.
    pub client_msg_id: ClientMsgId,
    /// When the server stored it.
    pub sent_at: Timestamp,
    /// The end-to-end encrypted envelope.
    pub envelope: ByteBuf,
}

/// Something the server tells a client unasked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new message in one of the user's conversations (F4).
    Message(StoredMessage),
    /// A friend went online or offline (F8).
    Presence {
        /// The friend.
        user: UserId,
        /// Their presence now.
        presence: Presence,
    },
    /// Someone asks to be friends (F3).
    FriendRequest(UserSummary),
    /// A friendship was made (the other side accepted, or requests crossed).
    FriendAdded(Friend),
    /// A friend removed the friendship.
    FriendRemoved {
        /// The former friend.
        user: UserId,
    },
    /// This session was ended because the account signed in elsewhere (F2); the server closes
    /// the connection after sending it.
    Kicked {
        /// What to show.
        reason: String,
    },
    /// Someone joined a group the user is in (F9).
    RoomMemberJoined {
        /// The group.
        room: RoomId,
        /// The new member.
        member: UserSummary,
    },
}

/// A failed request: a code to act on and a message to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Per-field problems of a form (F1), each to show beside its field.
    pub fields: Vec<FieldError>,
}

impl Error {
    /// Makes an error with no field details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for field in &self.fields {
            write!(f, "; {:?}: {}", field.field, field.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// One form field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Which field.
    pub field: Field,
    /// What is wrong with it.
    pub message: String,
}

/// A form field that can be in error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Field {
    /// The username.
    Username,
    /// The password.
    Password,
    /// The email.
    Email,
    /// The sex.
    Sex,
    /// The age.
    Age,
    /// The public key.
    PublicKey,
}

/// Error codes. Append-only, like every wire enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Something failed inside the server; the details are in its log.
    Internal,
    /// The request is not valid (see the message and fields).
    InvalidRequest,
    /// The request needs a signed-in session.
    NotLoggedIn,
    /// Wrong username or password (never says which).
    BadCredentials,
    /// Too many requests; try again later.
    RateLimited,
    /// A form field is invalid; see `fields`.
    InvalidField,
    /// The username is taken.
    UsernameTaken,
    /// The email is taken.
    EmailTaken,
    /// No such user.
    UserNotFound,
    /// A friend request to oneself.
    FriendSelf,
    /// Already friends.
    AlreadyFriends,
    /// A request to this user is already pending.
    RequestPending,
    /// No pending request from that user.
    NoSuchRequest,
    /// Not friends with that user.
    NotFriends,
    /// No group with that number.
    RoomNotFound,
    /// The group name is taken.
    RoomNameTaken,
    /// Already a member of the group.
    AlreadyMember,
    /// Not a member of the group.
    NotMember,
    /// No such conversation, or not one of the user's.
    ConversationNotFound,
    /// Too large (message, envelope or attachment).
    TooLarge,
    /// No such attachment.
    AttachmentNotFound,
    /// The chunk's offset is not where the upload stands.
    UploadOffsetMismatch,
    /// The uploaded content does not match its SHA-256.
    ChecksumMismatch,
    /// A service is unavailable; try again.
    Unavailable,
    /// Already signed in on this connection.
    AlreadyLoggedIn,
    /// A group message's keys are not wrapped for exactly the group's current members (someone
    /// joined or left): fetch the members, seal again under the same id and resend.
    MembersChanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_never_underflows() {
        let state = ConversationState {
            conversation: ConversationId(1),
            max_seq: Seq(3),
            delivered_seq: Seq(5),
            read_seq: Seq(5),
        };
        assert_eq!(state.unread(), 0);
    }
}
