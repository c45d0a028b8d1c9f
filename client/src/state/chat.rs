//! One conversation as the chat pane shows it: stored messages in seq order, then mine
//! still on their way, each with its delivery state and measured height.

use client_core::LocalMessage;
use protocol::e2e::Body;
use protocol::{ClientMsgId, Seq, Timestamp, UserId};

/// Estimated height of a chat line before it is first laid out.
pub const LINE_HEIGHT_GUESS: f32 = 40.0;

/// Where one of my messages stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored by the server (or someone else's).
    Stored,
    /// On its way.
    Sending,
    /// In the outbox until the connection is back.
    Queued,
    /// Refused; the words say why.
    Failed(String),
}

/// One message in a chat.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its seq, once stored.
    pub seq: Option<Seq>,
    /// The sender's id for it.
    pub id: ClientMsgId,
    /// Who sent it.
    pub sender: UserId,
    /// When (the server's time once stored).
    pub sent_at: Timestamp,
    /// What it says.
    pub body: Body,
    /// Delivery state.
    pub delivery: Delivery,
    /// Its height when last laid out (a layout cache the chat view keeps current).
    pub height: f32,
}

impl Line {
    pub(super) fn stored(message: LocalMessage) -> Self {
        Self {
            seq: Some(message.seq),
            id: message.client_msg_id,
            sender: message.sender,
            sent_at: message.sent_at,
            body: message.body,
            delivery: Delivery::Stored,
            height: LINE_HEIGHT_GUESS,
        }
    }
}

/// One conversation's messages as loaded so far.
#[derive(Debug, Clone, Default)]
pub struct Chat {
    /// Stored messages in seq order, then my unstored ones in the order sent.
    pub lines: Vec<Line>,
    /// The first page was asked for.
    pub opened: bool,
    /// An older page is being fetched.
    pub loading: bool,
    /// The first message is loaded.
    pub complete: bool,
    /// Messages from others not yet read.
    pub unread: u64,
    /// Messages that arrived while the person was scrolled up.
    pub unseen_below: usize,
    /// The newest message, for the contact list's preview.
    pub last: Option<(UserId, Body)>,
}

impl Chat {
    /// The highest stored seq.
    pub fn max_seq(&self) -> Option<Seq> {
        self.lines.iter().rev().find_map(|l| l.seq)
    }

    pub(super) fn insert_stored(&mut self, message: LocalMessage) {
        let seq = message.seq;
        self.lines
            .retain(|l| l.id != message.client_msg_id || l.seq.is_some());
        let at = self
            .lines
            .partition_point(|l| l.seq.is_some_and(|s| s < seq));
        if self.lines.get(at).is_some_and(|l| l.seq == Some(seq)) {
            return;
        }
        self.lines.insert(at, Line::stored(message));
    }
}
