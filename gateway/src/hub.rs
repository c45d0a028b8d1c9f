//! The sessions this gateway holds, by user: where pushes for a user go; and each
//! connection's way out, its outbound queue.
//!
//! A user has at most one session on a gateway. Every entry carries the session's epoch from
//! account-svc; a push for another epoch is stale (that session was replaced) and is dropped.
//!
//! The outbound queue is bounded twice: in messages, and in bytes (envelopes and file chunks
//! counted in full, the rest as a fixed allowance; [`crate::budget`]). A client that falls
//! behind either bound with pushed events is closed, never waited for: waiting would let one
//! slow reader hold the memory of every message sent to it, or hold up its senders. Nothing is
//! lost: messages are stored before they are pushed, and the client syncs when it reconnects.
//! Its own answers reserve their room before they are asked for, so they wait instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use protocol::message::{Event, Response, ServerMessage};
use tokio::sync::{mpsc, watch};

use crate::budget::{Budget, Reservation};

/// What every queued message is counted as beyond its large parts (ids, framing, names).
pub const MESSAGE_ALLOWANCE: usize = 256;

/// What a queued message weighs against its connection's byte budget: its envelopes and
/// file bytes in full, and [`MESSAGE_ALLOWANCE`] (per message and per listed item) for the rest.
pub fn weight(message: &ServerMessage) -> usize {
    let large = match message {
        ServerMessage::Response {
            result: Ok(response),
            ..
        } => match response {
            Response::Messages { messages, .. } => messages
                .iter()
                .map(|m| m.envelope.len() + MESSAGE_ALLOWANCE)
                .sum(),
            Response::Chunk { data, .. } => data.len(),
            Response::LoggedIn(bundle) | Response::Contacts(bundle) => {
                (bundle.friends.len()
                    + bundle.rooms.len()
                    + bundle.pending_requests.len()
                    + bundle.conversations.len())
                    * MESSAGE_ALLOWANCE
            }
            Response::Users(users) | Response::Members(users) => users.len() * MESSAGE_ALLOWANCE,
            Response::Certificates(certificates) => certificates.len() * (MESSAGE_ALLOWANCE + 256),
            _ => 0,
        },
        ServerMessage::Event(Event::Message(stored)) => stored.envelope.len(),
        _ => 0,
    };
    MESSAGE_ALLOWANCE + large
}

/// A connection's way out: its bounded queue to the writer, and its close signal.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Messages for the client, boxed: a channel allocates its first block of slots when it
    /// is made, and slots of a pointer keep that small for every quiet connection.
    pub queue: mpsc::Sender<Box<ServerMessage>>,
    /// Set to `Some(reason)` to close the connection.
    pub close: watch::Sender<Option<String>>,
    /// Bytes queued (by [`weight`]) and reserved for answers being made.
    pub budget: Arc<Budget>,
}

impl Outbound {
    /// Queues `message` without waiting. A reader too slow to keep its queue below either
    /// bound is closed: its messages stay stored and it syncs when it reconnects.
    pub fn push(&self, message: ServerMessage) -> bool {
        if self.enqueue(message) {
            true
        } else {
            self.end(SLOW_READER);
            false
        }
    }

    /// Queues `message` if both bounds allow it; `false` if not (or the writer is gone).
    fn enqueue(&self, message: ServerMessage) -> bool {
        let weight = weight(&message);
        if !self.budget.try_queue(weight) {
            return false;
        }
        if self.queue.try_send(Box::new(message)).is_err() {
            self.budget.written(weight);
            return false;
        }
        true
    }

    /// Queues the answer whose room `reservation` took (see [`crate::budget`]). Only the
    /// count bound or a gone writer can refuse it; then the connection is closed.
    pub fn answer(&self, message: ServerMessage, reservation: Reservation) {
        let weight = weight(&message);
        self.budget.queue_answer(weight, reservation);
        if self.queue.try_send(Box::new(message)).is_err() {
            self.budget.written(weight);
            self.end(SLOW_READER);
        }
    }

    /// Closes the connection without a `Kicked` event: the client reconnects by itself
    /// (the gateway is stopping, lost its lease, or the client fell behind).
    pub fn end(&self, reason: &str) {
        self.close.send_replace(Some(reason.to_owned()));
    }

    /// Tells the client why and closes the session; the client does not reconnect.
    pub fn kick(&self, reason: &str) {
        // The event goes first; the session closes once its writer has sent it.
        self.enqueue(ServerMessage::Event(Event::Kicked {
            reason: reason.to_owned(),
        }));
        self.end(reason);
    }
}

/// How a logged-in session is reached.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// The connection's number on this gateway (told apart from a later one of the user).
    pub connection: u64,
    /// The epoch account-svc gave this login.
    pub epoch: u64,
    /// Its way out.
    pub outbound: Outbound,
}

/// Why a session whose queue overflowed is closed.
pub const SLOW_READER: &str = "the connection could not keep up; reconnect to sync";

/// The sessions of this gateway.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    sessions: Arc<Mutex<HashMap<u64, SessionHandle>>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionHandle>> {
        // A panic elsewhere never leaves the map half-changed: every change is one call.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `user`'s session; returns the one it replaces on this gateway, if any.
    pub fn insert(&self, user: u64, handle: SessionHandle) -> Option<SessionHandle> {
        let mut sessions = self.lock();
        let replaced = sessions.insert(user, handle);
        metrics::gauge!(crate::telemetry::SESSIONS).set(sessions.len() as f64);
        replaced
    }

    /// Forgets `user`'s session if it is still `connection`'s.
    pub fn remove(&self, user: u64, connection: u64) {
        let mut sessions = self.lock();
        if sessions
            .get(&user)
            .is_some_and(|s| s.connection == connection)
        {
            sessions.remove(&user);
            metrics::gauge!(crate::telemetry::SESSIONS).set(sessions.len() as f64);
        }
    }

    /// The session of `user` with `epoch`, if it is here.
    pub fn get(&self, user: u64, epoch: u64) -> Option<SessionHandle> {
        self.lock().get(&user).filter(|s| s.epoch == epoch).cloned()
    }

    /// Every session (for shutdown).
    pub fn all(&self) -> Vec<SessionHandle> {
        self.lock().values().cloned().collect()
    }

    /// How many sessions are logged in here.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is logged in here.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
