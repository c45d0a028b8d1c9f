//! What the client tells the user interface: messages, presence, friends, key changes and the
//! state of the connection.

use protocol::message::{Friend, Presence, UserSummary};
use protocol::{ClientMsgId, ConversationId, RoomId, Seq, UserId};

use crate::store::LocalMessage;

/// Something that happened, for the user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A message arrived (live or by sync), decrypted and stored.
    Message(LocalMessage),
    /// A message queued while disconnected was accepted after a reconnect.
    Sent {
        /// The conversation.
        conversation: ConversationId,
        /// Its seq.
        seq: Seq,
        /// Its id.
        client_msg_id: ClientMsgId,
    },
    /// A friend came online (with the address their gateway sees) or went offline.
    Presence {
        /// The friend.
        user: UserId,
        /// Where, or offline.
        presence: Presence,
    },
    /// Someone asks to be friends.
    FriendRequest(UserSummary),
    /// A friendship began.
    FriendAdded(Friend),
    /// A friendship ended.
    FriendRemoved(UserId),
    /// Someone joined a group.
    RoomMemberJoined {
        /// The group.
        room: RoomId,
        /// Who.
        member: UserSummary,
    },
    /// A contact's key is not the one seen before: compare safety numbers again.
    KeyChanged {
        /// Whose key changed.
        user: UserId,
    },
    /// The session was ended by the server (a login elsewhere, or shutdown).
    Kicked {
        /// The server's words.
        reason: String,
    },
    /// The connection was lost; the client is reconnecting.
    Disconnected,
    /// The connection is back and the session restored.
    Reconnected,
}
