//! The client's local store: message history (plaintext, on the user's own machine), read
//! marks, the outbox of unacknowledged messages, the certificate cache and the contacts as
//! last seen. History shows offline from here (F5). A SQLite file per user (`sqlite.rs`), or
//! plain data in memory for load tools (`memory.rs`); both answer alike.

mod memory;
mod sqlite;

use std::path::Path;

use protocol::e2e::Body;
use protocol::message::LoginBundle;
use protocol::{ClientMsgId, ConversationId, Seq, Timestamp, UserId};

use crate::error::ClientError;
use memory::Memory;
use sqlite::Sqlite;

/// A message as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMessage {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its place in the conversation.
    pub seq: Seq,
    /// Who sent it.
    pub sender: UserId,
    /// The sender's id for it.
    pub client_msg_id: ClientMsgId,
    /// When the server stored it.
    pub sent_at: Timestamp,
    /// What it says.
    pub body: Body,
}

/// A message sent but not yet acknowledged by the server.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its id, kept for every resend so the server stores it once.
    pub client_msg_id: ClientMsgId,
    /// The conversation.
    pub conversation: ConversationId,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// The plaintext, to store once acknowledged.
    pub body: Body,
}

/// The local store of one user.
#[derive(Debug, Clone)]
pub struct Store(Backend);

#[derive(Debug, Clone)]
enum Backend {
    File(Sqlite),
    Memory(Memory),
}

/// How many seqs below an arriving message [`Store::ack_point`] looks for a gap.
pub const ACK_WINDOW: u64 = 1024;

/// How many seqs below an arriving message [`Store::gap_below`] looks for a missing one. It
/// runs for every message that arrives, so it counts an index range this long; a gap further
/// down than this many of the user's own messages is fetched at the next login or reconnect.
pub const GAP_WINDOW: u64 = 256;

impl Store {
    /// Opens (creating) the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, ClientError> {
        Ok(Self(Backend::File(Sqlite::open(path).await?)))
    }

    /// A store in memory, gone when dropped ([`crate::LocalStore::Memory`]).
    pub fn in_memory() -> Self {
        Self(Backend::Memory(Memory::default()))
    }

    /// Stores a message (again: a message already stored is left as it is); `true` if it was
    /// not held before.
    pub async fn put_message(&self, message: &LocalMessage) -> Result<bool, ClientError> {
        match &self.0 {
            Backend::File(file) => file.put_message(message).await,
            Backend::Memory(memory) => Ok(memory.put_message(message)),
        }
    }

    /// How far delivery of `conversation` can be acknowledged when `seq` arrived: `seq`,
    /// or the last message held before the highest gap among the [`ACK_WINDOW`] seqs below
    /// it. A bounded look (an index range), so a long history costs nothing per message.
    pub async fn ack_point(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<Seq, ClientError> {
        match &self.0 {
            Backend::File(file) => file.ack_point(conversation, seq).await,
            Backend::Memory(memory) => Ok(memory.ack_point(conversation, seq)),
        }
    }

    /// Whether a message is missing below `seq` (held) in `conversation`: the one just
    /// before it, or any between it and the oldest message held among the [`GAP_WINDOW`]
    /// seqs below it. So a lost push shows even when the message after it is the user's own,
    /// answered to them and never pushed. A count over an index range.
    pub async fn gap_below(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<bool, ClientError> {
        match &self.0 {
            Backend::File(file) => file.gap_below(conversation, seq).await,
            Backend::Memory(memory) => Ok(memory.gap_below(conversation, seq)),
        }
    }

    /// Whether a message is still missing below any of `arrivals` (each a conversation and a
    /// seq held in it), by [`Store::gap_below`].
    pub async fn any_gap_below(
        &self,
        arrivals: impl IntoIterator<Item = (ConversationId, Seq)>,
    ) -> Result<bool, ClientError> {
        for (conversation, seq) in arrivals {
            if self.gap_below(conversation, seq).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Up to `limit` messages of `conversation` before `before` (0: the newest), oldest first.
    pub async fn history(
        &self,
        conversation: ConversationId,
        before: Seq,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        match &self.0 {
            Backend::File(file) => file.history(conversation, before, limit).await,
            Backend::Memory(memory) => Ok(memory.history(conversation, before, limit)),
        }
    }

    /// Per conversation, the seq up to which the history held is whole: the end of the run
    /// of consecutive seqs that starts at the oldest message held (the sync cursors). A
    /// message held past a gap (the client's own, answered before a friend's earlier one
    /// arrived; a push that overtook another) does not move it, so the next sync fetches
    /// the gap.
    pub async fn cursors(&self) -> Result<Vec<(ConversationId, Seq)>, ClientError> {
        match &self.0 {
            Backend::File(file) => file.cursors().await,
            Backend::Memory(memory) => Ok(memory.cursors()),
        }
    }

    /// Records that everything up to `seq` was read (never moves back).
    pub async fn mark_read(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<(), ClientError> {
        match &self.0 {
            Backend::File(file) => file.mark_read(conversation, seq).await,
            Backend::Memory(memory) => {
                memory.mark_read(conversation, seq);
                Ok(())
            }
        }
    }

    /// Messages from others after the read mark.
    pub async fn unread(
        &self,
        conversation: ConversationId,
        me: UserId,
    ) -> Result<u64, ClientError> {
        match &self.0 {
            Backend::File(file) => file.unread(conversation, me).await,
            Backend::Memory(memory) => Ok(memory.unread(conversation, me)),
        }
    }

    /// Queues an outgoing message until the server acknowledges it.
    pub async fn enqueue(&self, queued: &Queued) -> Result<(), ClientError> {
        match &self.0 {
            Backend::File(file) => file.enqueue(queued).await,
            Backend::Memory(memory) => {
                memory.enqueue(queued);
                Ok(())
            }
        }
    }

    /// Removes an acknowledged message from the outbox.
    pub async fn dequeue(&self, id: ClientMsgId) -> Result<(), ClientError> {
        match &self.0 {
            Backend::File(file) => file.dequeue(id).await,
            Backend::Memory(memory) => {
                memory.dequeue(id);
                Ok(())
            }
        }
    }

    /// Every unacknowledged message, oldest first.
    pub async fn outbox(&self) -> Result<Vec<Queued>, ClientError> {
        match &self.0 {
            Backend::File(file) => file.outbox().await,
            Backend::Memory(memory) => Ok(memory.outbox()),
        }
    }

    /// The cached public key of `user`.
    pub async fn certificate(&self, user: UserId) -> Result<Option<Vec<u8>>, ClientError> {
        match &self.0 {
            Backend::File(file) => file.certificate(user).await,
            Backend::Memory(memory) => Ok(memory.certificate(user)),
        }
    }

    /// Caches `user`'s public key.
    pub async fn put_certificate(&self, user: UserId, key: &[u8]) -> Result<(), ClientError> {
        match &self.0 {
            Backend::File(file) => file.put_certificate(user, key).await,
            Backend::Memory(memory) => {
                memory.put_certificate(user, key);
                Ok(())
            }
        }
    }

    /// Saves the contacts as last seen, for offline display.
    pub async fn put_contacts(&self, bundle: &LoginBundle) -> Result<(), ClientError> {
        match &self.0 {
            Backend::File(file) => file.put_contacts(bundle).await,
            Backend::Memory(memory) => {
                memory.put_contacts(bundle);
                Ok(())
            }
        }
    }

    /// The contacts as last seen.
    pub async fn contacts(&self) -> Result<Option<LoginBundle>, ClientError> {
        match &self.0 {
            Backend::File(file) => file.contacts().await,
            Backend::Memory(memory) => Ok(memory.contacts()),
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::e2e::StyledText;
    use tempfile::TempDir;

    use super::*;

    /// Both kinds of store, named for the assertions; the file lives in `dir`.
    async fn stores(dir: &TempDir) -> [(&'static str, Store); 2] {
        let file = Store::open(&dir.path().join("user-1.db")).await.unwrap();
        [("file", file), ("memory", Store::in_memory())]
    }

    fn message_in(conversation: u64, seq: u64, sender: u64) -> LocalMessage {
        LocalMessage {
            conversation: ConversationId(conversation),
            seq: Seq(seq),
            sender: UserId(sender),
            client_msg_id: ClientMsgId([seq as u8; 16]),
            sent_at: Timestamp(seq),
            body: Body::Text(StyledText {
                text: format!("m{seq}"),
                font_size: 12,
                color: [0, 0, 0],
            }),
        }
    }

    fn message(seq: u64) -> LocalMessage {
        message_in(7, seq, 1)
    }

    fn queued(id: u8) -> Queued {
        Queued {
            client_msg_id: ClientMsgId([id; 16]),
            conversation: ConversationId(7),
            envelope: vec![id; 3],
            body: message(u64::from(id)).body,
        }
    }

    #[tokio::test]
    async fn cursors_and_acknowledgements_stop_at_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, store) in stores(&dir).await {
            for seq in [1, 2, 4, 5] {
                assert!(store.put_message(&message(seq)).await.unwrap(), "{kind}");
            }
            assert!(
                !store.put_message(&message(4)).await.unwrap(),
                "{kind}: held already"
            );
            let whole = store.cursors().await.unwrap();
            assert_eq!(whole, vec![(ConversationId(7), Seq(2))], "{kind}");
            let point = store.ack_point(ConversationId(7), Seq(5)).await.unwrap();
            assert_eq!(point, Seq(2), "{kind}");

            store.put_message(&message(3)).await.unwrap();
            let whole = store.cursors().await.unwrap();
            assert_eq!(whole, vec![(ConversationId(7), Seq(5))], "{kind}");
            let point = store.ack_point(ConversationId(7), Seq(5)).await.unwrap();
            assert_eq!(point, Seq(5), "{kind}");
        }
    }

    #[tokio::test]
    async fn a_gap_shows_below_any_message_held_past_it() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, store) in stores(&dir).await {
            let gap = |seq| store.gap_below(ConversationId(7), Seq(seq));
            store.put_message(&message(1)).await.unwrap();
            assert!(
                !gap(1).await.unwrap(),
                "{kind}: nothing comes before the first"
            );
            store.put_message(&message(3)).await.unwrap();
            assert!(gap(3).await.unwrap(), "{kind}: 2 is missing just below");
            // 4 (say, the user's own, answered to them) hides the gap from a check of 5's
            // neighbour alone.
            store.put_message(&message(4)).await.unwrap();
            store.put_message(&message(5)).await.unwrap();
            assert!(
                gap(5).await.unwrap(),
                "{kind}: 2 is still missing further below"
            );
            store.put_message(&message(2)).await.unwrap();
            assert!(!gap(5).await.unwrap(), "{kind}");
            assert!(!gap(3).await.unwrap(), "{kind}");
        }
    }

    #[tokio::test]
    async fn a_gap_that_closed_by_itself_is_open_no_more() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, store) in stores(&dir).await {
            for seq in [1, 3] {
                store.put_message(&message(seq)).await.unwrap();
            }
            store.put_message(&message_in(8, 1, 1)).await.unwrap();
            let arrivals = [(ConversationId(8), Seq(1)), (ConversationId(7), Seq(3))];
            assert!(
                store.any_gap_below(arrivals).await.unwrap(),
                "{kind}: 2 is missing below 3"
            );
            // 2 arrives by itself (the user's own send answered, a slower push) before the
            // gap sync would run: nothing is left to fetch.
            store.put_message(&message(2)).await.unwrap();
            assert!(!store.any_gap_below(arrivals).await.unwrap(), "{kind}");
        }
    }

    #[tokio::test]
    async fn the_outbox_keeps_the_order_of_queueing() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, store) in stores(&dir).await {
            for id in [1, 2, 3] {
                store.enqueue(&queued(id)).await.unwrap();
            }
            store.dequeue(ClientMsgId([2; 16])).await.unwrap();
            let ids: Vec<u8> = store
                .outbox()
                .await
                .unwrap()
                .iter()
                .map(|q| q.client_msg_id.0[0])
                .collect();
            assert_eq!(ids, [1, 3], "{kind}");
            let first = &store.outbox().await.unwrap()[0];
            assert_eq!(first.envelope, queued(1).envelope, "{kind}");
            assert_eq!(first.body, queued(1).body, "{kind}");
        }
    }

    /// Every question asked of both stores holding the same messages: runs with gaps, a
    /// hole wider than [`GAP_WINDOW`], runs longer than it, a history longer than
    /// [`ACK_WINDOW`], three conversations and two senders.
    #[tokio::test]
    async fn the_memory_store_answers_as_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let [(_, file), (_, memory)] = stores(&dir).await;
        let last = ACK_WINDOW + 400;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for conversation in [3, 7, 5] {
            for seq in 1..=last {
                let missing = match conversation {
                    5 => seq % (GAP_WINDOW + 50) == 0,
                    7 => (500..500 + GAP_WINDOW + 20).contains(&seq) || next() % 9 == 0,
                    _ => next() % 9 == 0,
                };
                if missing {
                    continue;
                }
                let message = message_in(conversation, seq, 1 + next() % 2);
                assert_eq!(
                    file.put_message(&message).await.unwrap(),
                    memory.put_message(&message).await.unwrap()
                );
            }
        }
        file.mark_read(ConversationId(3), Seq(last - 100))
            .await
            .unwrap();
        memory
            .mark_read(ConversationId(3), Seq(last - 100))
            .await
            .unwrap();

        assert_eq!(
            file.cursors().await.unwrap(),
            memory.cursors().await.unwrap()
        );
        for conversation in [3, 5, 7, 9].map(ConversationId) {
            for seq in (0..=last + 2).map(Seq) {
                assert_eq!(
                    file.ack_point(conversation, seq).await.unwrap(),
                    memory.ack_point(conversation, seq).await.unwrap(),
                    "ack point of {seq} in {conversation}"
                );
                assert_eq!(
                    file.gap_below(conversation, seq).await.unwrap(),
                    memory.gap_below(conversation, seq).await.unwrap(),
                    "gap below {seq} in {conversation}"
                );
            }
            for before in [0, 1, 2, 600, last, last + 5].map(Seq) {
                for limit in [0, 1, 50] {
                    assert_eq!(
                        file.history(conversation, before, limit).await.unwrap(),
                        memory.history(conversation, before, limit).await.unwrap(),
                        "history of {conversation} before {before}, {limit}"
                    );
                }
            }
            for me in [1, 2].map(UserId) {
                assert_eq!(
                    file.unread(conversation, me).await.unwrap(),
                    memory.unread(conversation, me).await.unwrap(),
                    "unread of {me} in {conversation}"
                );
            }
        }
    }
}
