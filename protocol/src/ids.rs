//! Newtypes for identifiers, so that a user id cannot be passed where a room id is meant.
//!
//! Each is a transparent `u64` on the wire (eight bytes, little-endian), except
//! [`ClientMsgId`], which is 16 random bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }
    };
}

id!(
    /// A registered user.
    UserId
);
id!(
    /// A group chat room; its number is what people type to join it.
    RoomId
);
id!(
    /// A conversation: one per pair of friends and one per room.
    ConversationId
);
id!(
    /// A message's position within its conversation, from 1, without gaps. 0 means "none yet".
    Seq
);
id!(
    /// An uploaded attachment.
    AttachmentId
);

/// The identifier a client gives each message it sends, so that a retry is recognised.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ClientMsgId(pub [u8; 16]);

impl ClientMsgId {
    /// Makes a fresh random id.
    pub fn random() -> Self {
        use rand::Rng;
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        Self(id)
    }
}

impl fmt::Display for ClientMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Returns the current time (0 if the clock is before 1970).
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self(millis)
    }
}
