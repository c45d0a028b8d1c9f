//! Messages: sealing and opening envelopes, sending through the outbox (resent with the same
//! id after a lost connection), sync after login, local history and read marks.

use std::collections::HashMap;

use protocol::e2e::{Body, Envelope, MessageContext, PairwiseKey, StyledText};
use protocol::message::{ErrorCode, Request, Response, StoredMessage};
use protocol::{ClientMsgId, ConversationId, Seq, UserId};
use serde_bytes::ByteBuf;

use crate::client::{Account, Client, unexpected};
use crate::error::ClientError;
use crate::event::ClientEvent;
use crate::store::{LocalMessage, Queued};

/// Times a group message is sealed again for the current members before its refusal stands.
pub const RESEALS: usize = 3;

/// Text shown for a message that cannot be decrypted.
pub const UNDECRYPTABLE: &str = "[this message could not be decrypted]";

impl Client {
    async fn seal(
        &self,
        account: &Account,
        context: &MessageContext,
        body: &Body,
    ) -> Result<Envelope, ClientError> {
        if let Some(peer) = self.direct_peer(context.conversation) {
            let key = self.pairwise(account, peer).await?;
            return Ok(Envelope::seal_direct(&key, context, body)?);
        }
        let room = self.room_of(context.conversation).ok_or_else(|| {
            ClientError::Invalid("no friend or group has this conversation".into())
        })?;
        let members: Vec<UserId> = self
            .room_members(room)
            .await?
            .iter()
            .map(|m| m.id)
            .collect();
        let keys = self.public_keys(account, &members).await?;
        let recipients: Vec<(UserId, PairwiseKey)> = keys
            .iter()
            .map(|(user, key)| (*user, account.pairwise_with(*user, key)))
            .collect();
        Ok(Envelope::seal_group(context, body, &recipients)?)
    }

    async fn open(&self, account: &Account, stored: &StoredMessage) -> Result<Body, ClientError> {
        let envelope = Envelope::decode(&stored.envelope)?;
        let me = account.me.id;
        // A one-to-one message of mine is sealed with the key I share with the other side.
        let with = match (&envelope, stored.sender == me) {
            (Envelope::Direct(_), true) => self
                .direct_peer(stored.conversation)
                .ok_or_else(|| ClientError::Invalid("unknown conversation".into()))?,
            _ => stored.sender,
        };
        let key = self.pairwise(account, with).await?;
        let context = MessageContext {
            conversation: stored.conversation,
            sender: stored.sender,
            client_msg_id: stored.client_msg_id,
        };
        Ok(envelope.open(&context, me, &key)?)
    }

    /// Decrypts and stores a message from the server; one that does not open is stored with
    /// a notice so the history keeps its place. `None` for a message held already (a push
    /// and a sync can bring the same one): it is not told twice.
    pub(crate) async fn receive(
        &self,
        account: &Account,
        stored: StoredMessage,
    ) -> Result<Option<LocalMessage>, ClientError> {
        let body = match self.open(account, &stored).await {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!(conversation = stored.conversation.0, seq = stored.seq.0, %err, "message does not open");
                Body::Text(StyledText {
                    text: UNDECRYPTABLE.to_owned(),
                    font_size: 12,
                    color: [128, 128, 128],
                })
            }
        };
        let message = LocalMessage {
            conversation: stored.conversation,
            seq: stored.seq,
            sender: stored.sender,
            client_msg_id: stored.client_msg_id,
            sent_at: stored.sent_at,
            body,
        };
        let new = account.store.put_message(&message).await?;
        Ok(new.then_some(message))
    }

    /// Fetches everything newer than the local history, page by page, and acknowledges it.
    /// A conversation with no local history (a new computer) starts where the server says
    /// it was delivered: older messages come from the server as the person scrolls back.
    pub async fn sync(&self) -> Result<usize, ClientError> {
        let account = self.account()?;
        let delivered: Vec<(ConversationId, Seq)> = self
            .state()
            .contacts
            .as_ref()
            .map(|c| {
                c.bundle()
                    .conversations
                    .iter()
                    .map(|s| (s.conversation, s.delivered_seq))
                    .collect()
            })
            .unwrap_or_default();
        let mut count = 0;
        loop {
            let mut cursors: HashMap<ConversationId, Seq> =
                account.store.cursors().await?.into_iter().collect();
            for (conversation, seq) in &delivered {
                cursors.entry(*conversation).or_insert(*seq);
            }
            let cursors = cursors
                .into_iter()
                .map(|(conversation, seq)| protocol::message::Cursor { conversation, seq })
                .collect();
            let (messages, more) = match self.request(Request::Sync { cursors, limit: 0 }).await? {
                Response::Messages { messages, more } => (messages, more),
                other => return Err(unexpected(other)),
            };
            let mut newest: HashMap<ConversationId, Seq> = HashMap::new();
            for stored in messages {
                let entry = newest.entry(stored.conversation).or_insert(stored.seq);
                *entry = (*entry).max(stored.seq);
                if let Some(message) = self.receive(&account, stored).await? {
                    let _ = self.inner.events.send(ClientEvent::Message(message));
                    count += 1;
                }
            }
            for (conversation, seq) in newest {
                self.request(Request::AckDelivered { conversation, seq })
                    .await?;
            }
            if !more {
                return Ok(count);
            }
        }
    }

    /// Sends styled text.
    pub async fn send_text(
        &self,
        conversation: ConversationId,
        text: StyledText,
    ) -> Result<Seq, ClientError> {
        self.send_body(conversation, Body::Text(text)).await
    }

    /// Seals and sends `body`. Until the server acknowledges it, the message waits in the
    /// outbox: after a lost connection it is resent with the same id (stored once).
    pub async fn send_body(
        &self,
        conversation: ConversationId,
        body: Body,
    ) -> Result<Seq, ClientError> {
        self.send_with_id(conversation, ClientMsgId::random(), body)
            .await
    }

    /// Like [`Client::send_body`] with the caller's id for the message, so a user interface
    /// can match the [`ClientEvent::Sent`] of a message resent after a reconnect, and retry a
    /// refused one under the same id (the server stores it once).
    pub async fn send_with_id(
        &self,
        conversation: ConversationId,
        client_msg_id: ClientMsgId,
        body: Body,
    ) -> Result<Seq, ClientError> {
        let account = self.account()?;
        let context = MessageContext {
            conversation,
            sender: account.me.id,
            client_msg_id,
        };
        // Sealing may need a key from the server; without a connection, wait for it once.
        let sealed = match self.seal(&account, &context, &body).await {
            Err(err) if err.is_transient() => {
                self.wait_connected(self.inner.config.request_timeout)
                    .await?;
                self.seal(&account, &context, &body).await?
            }
            sealed => sealed?,
        };
        let envelope = sealed.encode()?;
        let queued = Queued {
            client_msg_id,
            conversation,
            envelope,
            body,
        };
        account.store.enqueue(&queued).await?;
        match self.deliver(&account, &queued).await {
            Ok(seq) => Ok(seq),
            Err(err) if err.is_transient() => {
                tracing::debug!(%err, "not sent now; queued for the reconnect");
                Err(err)
            }
            Err(err) => {
                account.store.dequeue(client_msg_id).await?;
                Err(err)
            }
        }
    }

    /// Sends a queued message. When the server says a group's members changed since they were
    /// cached, the message is sealed again for the current members under the same id (up to
    /// [`RESEALS`] times) and the outbox keeps the new envelope.
    async fn deliver(&self, account: &Account, queued: &Queued) -> Result<Seq, ClientError> {
        let mut resealed;
        let mut queued = queued;
        for _ in 0..RESEALS {
            match self.deliver_once(account, queued).await {
                Err(err) if err.code() == Some(ErrorCode::MembersChanged) => {
                    if let Some(room) = self.room_of(queued.conversation) {
                        self.edit_contacts(|c| c.forget_members(room));
                    }
                    let context = MessageContext {
                        conversation: queued.conversation,
                        sender: account.me.id,
                        client_msg_id: queued.client_msg_id,
                    };
                    let envelope = self.seal(account, &context, &queued.body).await?.encode()?;
                    resealed = Queued {
                        envelope,
                        ..queued.clone()
                    };
                    account.store.enqueue(&resealed).await?;
                    queued = &resealed;
                }
                result => return result,
            }
        }
        self.deliver_once(account, queued).await
    }

    async fn deliver_once(&self, account: &Account, queued: &Queued) -> Result<Seq, ClientError> {
        let request = Request::SendMessage(protocol::message::SendMessage {
            conversation: queued.conversation,
            client_msg_id: queued.client_msg_id,
            envelope: ByteBuf::from(queued.envelope.clone()),
        });
        let (seq, sent_at) = match self.request(request).await? {
            Response::MessageAccepted { seq, sent_at, .. } => (seq, sent_at),
            other => return Err(unexpected(other)),
        };
        account
            .store
            .put_message(&LocalMessage {
                conversation: queued.conversation,
                seq,
                sender: account.me.id,
                client_msg_id: queued.client_msg_id,
                sent_at,
                body: queued.body.clone(),
            })
            .await?;
        account.store.dequeue(queued.client_msg_id).await?;
        self.edit_contacts(|c| {
            c.touch(queued.conversation, sent_at);
            c.counted(queued.conversation, seq, true);
        });
        Ok(seq)
    }

    /// Resends every unacknowledged message with its original id.
    pub(crate) async fn flush_outbox(&self) -> Result<(), ClientError> {
        let account = self.account()?;
        let outbox = account.store.outbox().await?;
        tracing::debug!(queued = outbox.len(), "resending the outbox");
        for queued in outbox {
            match self.deliver(&account, &queued).await {
                Ok(seq) => {
                    let _ = self.inner.events.send(ClientEvent::Sent {
                        conversation: queued.conversation,
                        seq,
                        client_msg_id: queued.client_msg_id,
                    });
                }
                Err(err) if err.is_transient() => return Err(err),
                Err(err) => {
                    tracing::warn!(%err, "a queued message was refused; dropped");
                    account.store.dequeue(queued.client_msg_id).await?;
                }
            }
        }
        Ok(())
    }

    /// Messages of `conversation` before `before` (`Seq(0)`: the newest), oldest first, from
    /// the local store; older pages are fetched from the server when the store has none.
    pub async fn history(
        &self,
        conversation: ConversationId,
        before: Seq,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        let account = self.account()?;
        let local = account.store.history(conversation, before, limit).await?;
        let reaches_start = local.first().is_some_and(|m| m.seq.0 <= 1);
        if local.len() >= limit as usize || reaches_start || self.state().link.is_none() {
            return Ok(local);
        }
        let from = local.first().map_or(before, |m| m.seq);
        let fetched = self
            .request(Request::History {
                conversation,
                before: from,
                limit,
            })
            .await;
        if let Ok(Response::Messages { messages, .. }) = fetched {
            for stored in messages {
                self.receive(&account, stored).await?;
            }
        }
        account.store.history(conversation, before, limit).await
    }

    /// The newest message of `conversation` held locally (for a contact list's preview; never
    /// asks the server).
    pub async fn last_local_message(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<LocalMessage>, ClientError> {
        let account = self.account()?;
        Ok(account.store.history(conversation, Seq(0), 1).await?.pop())
    }

    /// Messages not yet marked read, as the server counts them (`max_seq - read_seq`, the
    /// user's own messages being read as written): right on a new computer too, where the
    /// local history starts empty.
    pub async fn unread(&self, conversation: ConversationId) -> Result<u64, ClientError> {
        let account = self.account()?;
        let counted = self
            .state()
            .contacts
            .as_ref()
            .map(|c| c.unread(conversation));
        match counted {
            Some(unread) => Ok(unread),
            None => account.store.unread(conversation, account.me.id).await,
        }
    }

    /// Marks everything up to `seq` read, here and on the server.
    pub async fn mark_read(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<(), ClientError> {
        let account = self.account()?;
        account.store.mark_read(conversation, seq).await?;
        self.edit_contacts(|c| c.read(conversation, seq));
        self.request(Request::AckRead { conversation, seq }).await?;
        Ok(())
    }
}

/// Reads the styled text of a body, if it is text.
pub fn text_of(body: &Body) -> Option<&str> {
    match body {
        Body::Text(text) => Some(&text.text),
        _ => None,
    }
}

/// Plain text with the default style.
pub fn plain(text: &str) -> StyledText {
    StyledText {
        text: text.to_owned(),
        font_size: 12,
        color: [0, 0, 0],
    }
}

#[cfg(feature = "testing")]
impl Client {
    /// Caches `members` as `room`'s, as if a membership event had not arrived yet.
    pub fn put_members_for_test(
        &self,
        room: protocol::RoomId,
        members: Vec<protocol::message::UserSummary>,
    ) {
        self.edit_contacts(|c| c.put_members(room, members));
    }

    /// Puts the last message this user sent to `conversation` back in the outbox with its
    /// original id, as if the server's answer had been lost: the next reconnect resends it.
    pub async fn requeue_last_for_test(
        &self,
        conversation: ConversationId,
    ) -> Result<(), ClientError> {
        let account = self.account()?;
        let history = account.store.history(conversation, Seq(0), 50).await?;
        let last = history
            .iter()
            .rev()
            .find(|m| m.sender == account.me.id)
            .ok_or_else(|| ClientError::Invalid("nothing sent here".into()))?;
        let context = MessageContext {
            conversation,
            sender: account.me.id,
            client_msg_id: last.client_msg_id,
        };
        let envelope = self.seal(&account, &context, &last.body).await?.encode()?;
        account
            .store
            .enqueue(&Queued {
                client_msg_id: last.client_msg_id,
                conversation,
                envelope,
                body: last.body.clone(),
            })
            .await
    }
}
