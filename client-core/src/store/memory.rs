//! The store as plain data behind a lock ([`LocalStore::Memory`]), for load tools that
//! measure the server. It answers every question as the SQLite file does (the tests in
//! [`super`] ask both), without a database thread to hand each lookup to and back: with
//! thousands of clients in one process, those hand-offs cost more CPU than the server
//! being measured.
//!
//! The lock is never held across an `.await`; every method is a few map operations. The
//! questions asked of every arriving message ([`Memory::gap_below`], [`Memory::ack_point`])
//! are answered from the runs of consecutive seqs held, in logarithmic time, where a walk
//! over the window's seqs cost a load tool a fourteenth of its CPU.
//!
//! [`LocalStore::Memory`]: crate::LocalStore::Memory

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protocol::message::LoginBundle;
use protocol::{ClientMsgId, ConversationId, Seq, UserId};

use super::{ACK_WINDOW, GAP_WINDOW, LocalMessage, Queued};

/// One user's store, shared by the clones of its handle.
#[derive(Debug, Clone, Default)]
pub(super) struct Memory(Arc<Mutex<Held>>);

#[derive(Debug, Default)]
struct Held {
    messages: BTreeMap<(ConversationId, Seq), LocalMessage>,
    /// The runs of consecutive seqs held: first seq to last, both included. Runs never
    /// touch: two that would are one.
    runs: BTreeMap<(ConversationId, u64), u64>,
    read_marks: HashMap<ConversationId, Seq>,
    /// Oldest first; a message queued again moves to the end, as its new time sorts it in
    /// the file.
    outbox: Vec<Queued>,
    certificates: HashMap<UserId, Vec<u8>>,
    contacts: Option<LoginBundle>,
}

impl Held {
    /// The run holding `seq`, or the nearest run below it, as (first, last).
    fn run_at_or_below(&self, conversation: ConversationId, seq: u64) -> Option<(u64, u64)> {
        self.runs
            .range((conversation, 0)..=(conversation, seq))
            .next_back()
            .map(|(&(_, first), &last)| (first, last))
    }

    /// The last seq of the nearest run ending below `first`, the first seq of a run.
    fn end_below(&self, conversation: ConversationId, first: u64) -> Option<u64> {
        self.runs
            .range((conversation, 0)..(conversation, first))
            .next_back()
            .map(|(_, &last)| last)
    }

    /// Records `seq`, not held before, joining the runs it touches.
    fn join(&mut self, conversation: ConversationId, seq: u64) {
        let mut first = seq;
        let mut last = seq;
        if let Some(below) = seq.checked_sub(1)
            && let Some((start, end)) = self.run_at_or_below(conversation, below)
            && end == below
        {
            first = start;
        }
        if let Some(above) = seq.checked_add(1)
            && let Some(end) = self.runs.remove(&(conversation, above))
        {
            last = end;
        }
        self.runs.insert((conversation, first), last);
    }
}

impl Memory {
    fn held(&self) -> MutexGuard<'_, Held> {
        // A panic elsewhere cannot leave the maps half-changed: every change is one call.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn put_message(&self, message: &LocalMessage) -> bool {
        let key = (message.conversation, message.seq);
        let mut held = self.held();
        match held.messages.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(place) => {
                place.insert(message.clone());
                held.join(message.conversation, message.seq.0);
                true
            }
        }
    }

    /// The highest seq below `seq` and within [`ACK_WINDOW`] of it whose next is missing,
    /// that is, the last of a run ending below `seq`; `seq` itself when there is none.
    pub(super) fn ack_point(&self, conversation: ConversationId, seq: Seq) -> Seq {
        let Some(high) = seq.0.checked_sub(1) else {
            return seq;
        };
        let held = self.held();
        let Some((first, last)) = held.run_at_or_below(conversation, high) else {
            return seq;
        };
        // A run going on past `high` holds `seq`: its seqs below `seq` all have a next.
        let end = if last > high {
            held.end_below(conversation, first)
        } else {
            Some(last)
        };
        match end {
            Some(end) if end >= seq.0.saturating_sub(ACK_WINDOW) => Seq(end),
            _ => seq,
        }
    }

    /// Whether `seq - 1` or `seq` is missing, or a seq is missing between them and the
    /// oldest seq held within [`GAP_WINDOW`] below `seq`.
    pub(super) fn gap_below(&self, conversation: ConversationId, seq: Seq) -> bool {
        if seq.0 <= 1 {
            return false;
        }
        let held = self.held();
        match held.run_at_or_below(conversation, seq.0) {
            Some((first, last)) if first < seq.0 && last >= seq.0 => held
                .end_below(conversation, first)
                .is_some_and(|end| end >= seq.0.saturating_sub(GAP_WINDOW)),
            _ => true,
        }
    }

    pub(super) fn history(
        &self,
        conversation: ConversationId,
        before: Seq,
        limit: u32,
    ) -> Vec<LocalMessage> {
        let held = self.held();
        let end = if before.0 == 0 { u64::MAX } else { before.0 };
        let mut messages: Vec<LocalMessage> = held
            .messages
            .range((conversation, Seq(0))..(conversation, Seq(end)))
            .rev()
            .take(limit as usize)
            .map(|(_, message)| message.clone())
            .collect();
        messages.reverse();
        messages
    }

    pub(super) fn cursors(&self) -> Vec<(ConversationId, Seq)> {
        let held = self.held();
        let mut cursors: Vec<(ConversationId, Seq)> = Vec::new();
        let mut keys = held.messages.keys().peekable();
        while let Some(&(conversation, seq)) = keys.next() {
            if cursors
                .last()
                .is_some_and(|(done, _)| *done == conversation)
            {
                continue;
            }
            // Seqs come from the server: the one after u64::MAX is none.
            if keys.peek() != Some(&&(conversation, Seq(seq.0.saturating_add(1)))) {
                cursors.push((conversation, seq));
            }
        }
        cursors
    }

    pub(super) fn mark_read(&self, conversation: ConversationId, seq: Seq) {
        let mut held = self.held();
        let mark = held.read_marks.entry(conversation).or_default();
        *mark = (*mark).max(seq);
    }

    pub(super) fn unread(&self, conversation: ConversationId, me: UserId) -> u64 {
        let held = self.held();
        let read = held.read_marks.get(&conversation).map_or(0, |seq| seq.0);
        held.messages
            .range((conversation, Seq(read.saturating_add(1)))..=(conversation, Seq(u64::MAX)))
            .filter(|(_, message)| message.sender != me)
            .count() as u64
    }

    pub(super) fn enqueue(&self, queued: &Queued) {
        let mut held = self.held();
        held.outbox
            .retain(|q| q.client_msg_id != queued.client_msg_id);
        held.outbox.push(queued.clone());
    }

    pub(super) fn dequeue(&self, id: ClientMsgId) {
        self.held().outbox.retain(|q| q.client_msg_id != id);
    }

    pub(super) fn outbox(&self) -> Vec<Queued> {
        self.held().outbox.clone()
    }

    pub(super) fn certificate(&self, user: UserId) -> Option<Vec<u8>> {
        self.held().certificates.get(&user).cloned()
    }

    pub(super) fn put_certificate(&self, user: UserId, key: &[u8]) {
        self.held().certificates.insert(user, key.to_vec());
    }

    pub(super) fn put_contacts(&self, bundle: &LoginBundle) {
        self.held().contacts = Some(bundle.clone());
    }

    pub(super) fn contacts(&self) -> Option<LoginBundle> {
        self.held().contacts.clone()
    }
}
