//! Uchat's headless client: connection with trust-on-first-use pinning, requests and events,
//! the user's key pair, end-to-end sealing and opening, a local store of history, automatic
//! reconnection that syncs and resends, and file transfers with progress.
//!
//! The desktop client and the end-to-end tests drive everything through [`Client`]. It never
//! speaks gRPC: only the Uchat protocol, to a gateway.
//!
//! ```text
//! let (client, events) = Client::connect(config).await?;
//! client.login("amy", "password").await?;
//! client.send_text(conversation, "hello".into()).await?;
//! ```
//!
//! Layers, each module using only those above it in this list: `error`, `store`, `trust`,
//! `link` (one connection), `event` and `contacts` (plain data), `client` (the handle and its
//! state), then the `impl Client` blocks by concern: `keys`, `password` (the stretched
//! password, the wrapped key, change of password, start over), `social`, `messages`,
//! `transfer`, and `session` (connect, log in, the event pump, reconnection).

pub mod contacts;
pub mod error;
pub mod event;
pub mod link;
pub mod store;
pub mod trust;

mod client;
mod keys;
mod messages;
mod password;
mod session;
mod social;
mod transfer;

pub use crate::client::{Client, ClientConfig, LocalStore, RECONNECT_POLL};
pub use crate::contacts::Contacts;
pub use crate::error::ClientError;
pub use crate::event::ClientEvent;
pub use crate::keys::RegisterForm;
pub use crate::messages::{UNDECRYPTABLE, plain, text_of};
pub use crate::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, password_problem};
pub use crate::session::{ACK_DELAY, PING_EVERY, RECONNECT_FIRST_DELAY, RECONNECT_MAX_DELAY};
pub use crate::store::LocalMessage;
pub use crate::transfer::{INLINE_MAX, SEALED_CHUNK_LEN, UPLOAD_RESUME_WAIT};
