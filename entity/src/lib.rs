//! SeaORM entities for every Uchat table.
//!
//! Each module's first line names the one service that writes its table; other services may
//! read it through these types. Ids are `i64` because PostgreSQL has no unsigned integers;
//! they are always positive. Times are Unix milliseconds.

#![allow(missing_docs)]

pub mod account_secret;
pub mod attachment;
pub mod attachment_chunk;
pub mod chat_history;
pub mod conversation;
pub mod conversation_head;
pub mod cursor;
pub mod friend;
pub mod gateway;
pub mod room;
pub mod room_user;
pub mod session;
pub mod user;

/// `conversation.kind` of a one-to-one conversation.
pub const CONVERSATION_DIRECT: i16 = 1;
/// `conversation.kind` of a group conversation.
pub const CONVERSATION_ROOM: i16 = 2;
