//! The store as plain data behind a lock ([`LocalStore::Memory`]), for load tools that
//! measure the server. It answers every question as the SQLite file does (the tests in
//! [`super`] ask both), without a database thread to hand each lookup to and back: with
//! thousands of clients in one process, those hand-offs cost more CPU than the server
//! being measured.
//!
//! The lock is never held across an `.await`; every method is a few map operations.
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
    read_marks: HashMap<ConversationId, Seq>,
    /// Oldest first; a message queued again moves to the end, as its new time sorts it in
    /// the file.
    outbox: Vec<Queued>,
    certificates: HashMap<UserId, Vec<u8>>,
    contacts: Option<LoginBundle>,
}

impl Held {
    fn holds(&self, conversation: ConversationId, seq: u64) -> bool {
        self.messages.contains_key(&(conversation, Seq(seq)))
    }

    /// The seqs held in `conversation` from `low` to `high`, both included, in order.
    fn seqs(
        &self,
        conversation: ConversationId,
        low: u64,
        high: u64,
    ) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.messages
            .range((conversation, Seq(low))..=(conversation, Seq(high)))
            .map(|((_, seq), _)| seq.0)
    }
}

impl Memory {
    fn held(&self) -> MutexGuard<'_, Held> {
        // A panic elsewhere cannot leave the maps half-changed: every change is one call.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn put_message(&self, message: &LocalMessage) -> bool {
        let key = (message.conversation, message.seq);
        match self.held().messages.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(place) => {
                place.insert(message.clone());
                true
            }
        }
    }

    pub(super) fn ack_point(&self, conversation: ConversationId, seq: Seq) -> Seq {
        let Some(high) = seq.0.checked_sub(1) else {
            return seq;
        };
        let held = self.held();
        // Walking down, the seq visited just before is the one above: a gap above `below`
        // is a visited seq that is not `below + 1`.
        let mut above = held.holds(conversation, seq.0).then_some(seq.0);
        for below in held
            .seqs(conversation, seq.0.saturating_sub(ACK_WINDOW), high)
            .rev()
        {
            if above != Some(below + 1) {
                return Seq(below);
            }
            above = Some(below);
        }
        seq
    }

    pub(super) fn gap_below(&self, conversation: ConversationId, seq: Seq) -> bool {
        if seq.0 <= 1 {
            return false;
        }
        let held = self.held();
        if !held.holds(conversation, seq.0 - 1) {
            return true;
        }
        let mut run = held.seqs(conversation, seq.0.saturating_sub(GAP_WINDOW), seq.0);
        let Some(oldest) = run.next() else {
            return true;
        };
        let count = 1 + run.count() as u64;
        count < seq.0.saturating_add(1) - oldest
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
