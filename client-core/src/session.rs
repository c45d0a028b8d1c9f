//! The session's life: connect (pinning the server's key), log in, log out, the event pump,
//! keep-alive pings, and reconnection that logs in again, syncs and resends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use protocol::message::{Event, LoginBundle, Request, Response};
use protocol::{ConversationId, Seq, Timestamp, UserId};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::client::{Account, Client, ClientConfig, Inner, State, io, unexpected};
use crate::contacts::Contacts;
use crate::error::ClientError;
use crate::event::ClientEvent;
use crate::link::Link;
use crate::password::KeyLost;
use crate::store::Store;
use crate::trust::KnownServers;

/// How often an idle connection pings (the server closes after 60 s of silence).
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// First wait before a reconnection attempt; it doubles up to [`RECONNECT_MAX_DELAY`].
pub const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(100);

/// Longest wait between reconnection attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);

/// How long delivery acknowledgements are gathered before they are sent: one per
/// conversation per this long. A delivered cursor only says where another computer's first
/// sync starts (unread counts come from the read cursor), so a second's lag costs nothing a
/// person sees, while each acknowledgement is a call and a cursor write on the server:
/// 1,000 clients told 5,000 messages a second sent 3,100 a second at 200 ms, and the
/// messages' p50 halved when they sent a third of that (docs/BENCHMARKS.md).
pub const ACK_DELAY: Duration = Duration::from_secs(1);

/// How long a message past a gap waits for the messages before it to arrive by themselves
/// before a sync fetches them.
pub const GAP_WAIT: Duration = Duration::from_millis(300);

impl Client {
    /// Connects to the server, pinning its key on first use and refusing a changed one.
    /// Returns the client and its stream of events.
    pub async fn connect(
        config: ClientConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<ClientEvent>), ClientError> {
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let known = KnownServers::new(config.data_dir.join("known_servers"));
        let pinned = known.get(&config.server)?;
        let (raw, raw_events) = mpsc::unbounded_channel();
        let (link, certificate) = Link::open(&config.server, pinned, raw.clone()).await?;
        if pinned.is_none() {
            if !config.trust_new_servers {
                link.close();
                return Err(ClientError::UnknownServer {
                    fingerprint: certificate.fingerprint(),
                });
            }
            known.pin(&config.server, certificate.fingerprint())?;
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            config,
            known,
            certificate,
            state: Mutex::new(State {
                link: Some(link),
                ..State::default()
            }),
            events,
            raw,
        });
        tokio::spawn(pump(Arc::downgrade(&inner), raw_events));
        Ok((Self { inner }, receiver))
    }

    /// Logs in (kicking any other session of the user), opens the local store, syncs what
    /// arrived while offline and resends anything left unacknowledged.
    ///
    /// The password is stretched here and only its authentication key is sent. On a computer
    /// without the key file, the private key is restored from the server's wrapped copy; if
    /// that cannot be done the login fails with [`ClientError::KeyLost`], still signed in, so
    /// [`Client::start_over`] can continue it.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginBundle, ClientError> {
        self.state().key_lost = None;
        let params = self.prelogin(username).await?;
        let stretched = self.stretch(password, params).await?;
        let request = Request::Login(protocol::message::Login {
            username: username.to_owned(),
            auth_key: stretched.auth_key(),
        });
        let bundle = match self.request(request).await? {
            Response::LoggedIn(bundle) => bundle,
            other => return Err(unexpected(other)),
        };
        match self.restore_key(bundle.me.id, username, &stretched).await? {
            Ok((keys, key_version)) => {
                let auth_key = Zeroizing::new(stretched.auth_key());
                self.finish_login(bundle, keys, key_version, auth_key).await
            }
            Err(key_version) => {
                self.state().key_lost = Some(KeyLost {
                    bundle,
                    stretched,
                    key_version,
                });
                Err(ClientError::KeyLost)
            }
        }
    }

    /// Opens the local store, syncs and resends, once the server accepted the login and the
    /// key is at hand.
    pub(crate) async fn finish_login(
        &self,
        bundle: LoginBundle,
        keys: protocol::KeyPair,
        key_version: u32,
        auth_key: Zeroizing<[u8; 32]>,
    ) -> Result<LoginBundle, ClientError> {
        let store = match self.inner.config.local_store {
            crate::LocalStore::File => {
                let path = self
                    .inner
                    .config
                    .data_dir
                    .join(format!("user-{}.db", bundle.me.id.0));
                Store::open(&path).await?
            }
            crate::LocalStore::Memory => Store::in_memory(),
        };
        store.put_contacts(&bundle).await?;
        for state in &bundle.conversations {
            store.mark_read(state.conversation, state.read_seq).await?;
        }
        let account = Arc::new(Account {
            me: bundle.me.clone(),
            keys,
            key_version,
            auth_key: Mutex::new(auth_key),
            store,
            pairwise: Mutex::new(HashMap::new()),
        });
        {
            let mut state = self.state();
            state.account = Some(account.clone());
            state.contacts = Some(Contacts::new(bundle.clone()));
            state.ended = false;
        }
        let friends: Vec<UserId> = bundle.friends.iter().map(|f| f.user.id).collect();
        self.refresh_certificates(&account, &friends).await?;
        self.sync().await?;
        self.flush_outbox().await?;
        tokio::spawn(supervise(Arc::downgrade(&self.inner)));
        Ok(bundle)
    }

    /// Logs out and closes the connection.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.state().ended = true;
        let result = self.request(Request::Logout).await;
        if let Some(link) = self.state().link.take() {
            link.close();
        }
        result.map(|_| ())
    }

    /// Handles one event from the server: the contacts follow it, then the user interface
    /// hears of it.
    async fn on_event(&self, event: Event) -> Result<(), ClientError> {
        self.edit_contacts(|c| c.apply(&event));
        let emitted = match event {
            Event::Message(stored) => {
                let account = self.account()?;
                let (conversation, seq) = (stored.conversation, stored.seq);
                let received = self.receive(&account, stored).await?;
                self.ack_later(conversation, seq);
                if account.store.gap_below(conversation, seq).await? {
                    self.fill_gap_later(conversation, seq);
                }
                match received {
                    Some(message) => ClientEvent::Message(message),
                    None => return Ok(()),
                }
            }
            Event::Presence { user, presence } => ClientEvent::Presence { user, presence },
            Event::FriendRequest(user) => ClientEvent::FriendRequest(user),
            Event::FriendAdded(friend) => ClientEvent::FriendAdded(friend),
            Event::FriendRemoved { user } => ClientEvent::FriendRemoved(user),
            Event::Kicked { reason } => {
                self.state().ended = true;
                ClientEvent::Kicked { reason }
            }
            Event::RoomMemberJoined { room, member } => {
                ClientEvent::RoomMemberJoined { room, member }
            }
        };
        self.emit(emitted);
        Ok(())
    }

    /// Syncs soon, once, after a message arrived past a gap: the messages in between were
    /// stored by another replica whose push is slower, or their push was lost, or they are the
    /// user's own sends whose answers are still on their way. Waiting a moment lets what is
    /// already on its way arrive first; then the sync runs only if a gap is still open (under
    /// load, most close by themselves, and a sync reads every conversation), and fetches
    /// whatever is still missing (messages already held are not told twice).
    fn fill_gap_later(&self, conversation: ConversationId, seq: Seq) {
        {
            let mut state = self.state();
            let scheduled = state.gaps.is_some();
            let gaps = state.gaps.get_or_insert_default();
            let highest = gaps.entry(conversation).or_insert(seq);
            *highest = (*highest).max(seq);
            if scheduled {
                return;
            }
        }
        let client = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GAP_WAIT).await;
            let gaps = client.state().gaps.take().unwrap_or_default();
            let Ok(account) = client.account() else {
                return;
            };
            if !account.store.any_gap_below(gaps).await.unwrap_or(true) {
                return;
            }
            if let Err(err) = client.sync().await {
                tracing::debug!(%err, "gap sync failed; the next sync fetches the gap");
            }
        });
    }

    /// Acknowledges delivery soon, up to `seq` but never past a gap in what is held:
    /// acknowledgements of a burst are gathered into one per conversation (best effort: the
    /// next sync acknowledges what a lost connection dropped).
    fn ack_later(&self, conversation: ConversationId, seq: Seq) {
        let first = {
            let mut state = self.state();
            let first = state.acks.is_empty();
            let entry = state.acks.entry(conversation).or_insert(seq);
            *entry = (*entry).max(seq);
            first
        };
        if !first {
            return;
        }
        let client = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ACK_DELAY).await;
            let acks = std::mem::take(&mut client.state().acks);
            let Ok(account) = client.account() else {
                return;
            };
            for (conversation, seq) in acks {
                let seq = account
                    .store
                    .ack_point(conversation, seq)
                    .await
                    .unwrap_or(seq);
                let _ = client
                    .request(Request::AckDelivered { conversation, seq })
                    .await;
            }
        });
    }

    /// Connects again and restores the session: log in, sync, resend.
    async fn restore(&self) -> Result<(), ClientError> {
        let account = self.account()?;
        let pinned = self.inner.known.get(&self.inner.config.server)?;
        let (link, _) =
            Link::open(&self.inner.config.server, pinned, self.inner.raw.clone()).await?;
        self.state().link = Some(link);
        let request = Request::Login(protocol::message::Login {
            username: account.me.username.clone(),
            auth_key: **account
                .auth_key
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        });
        match self.request(request).await? {
            Response::LoggedIn(bundle) => {
                account.store.put_contacts(&bundle).await?;
                self.state().contacts = Some(Contacts::new(bundle));
            }
            other => return Err(unexpected(other)),
        }
        self.sync().await?;
        self.flush_outbox().await
    }
}

/// Passes server events to the client, one at a time, in order.
async fn pump(inner: Weak<Inner>, mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let client = Client { inner };
        if let Err(err) = client.on_event(event).await {
            tracing::warn!(%err, "an event could not be handled");
        }
    }
}

/// Keeps the session alive: pings while connected, reconnects (with growing delays) when the
/// connection is lost, until the session ends or the client is dropped.
async fn supervise(inner: Weak<Inner>) {
    loop {
        let Some(link) = inner.upgrade().and_then(|i| {
            i.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .link
                .clone()
        }) else {
            return;
        };
        tokio::select! {
            () = link.closed() => {}
            () = tokio::time::sleep(PING_EVERY) => {
                let nonce = Timestamp::now().0;
                let _ = link.request(Request::Ping { nonce }, PING_EVERY).await;
                continue;
            }
        }
        // The `Kicked` event may still wait behind others for [`pump`], which ends the
        // session when it gets there; the link knew at once.
        if link.kicked() {
            return;
        }
        let mut delay = RECONNECT_FIRST_DELAY;
        loop {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let client = Client { inner: strong };
            {
                let state = client.state();
                if state.ended || !client.inner.config.auto_reconnect {
                    return;
                }
            }
            let _ = client.inner.events.send(ClientEvent::Disconnected);
            tokio::time::sleep(delay).await;
            match client.restore().await {
                Ok(()) => {
                    let _ = client.inner.events.send(ClientEvent::Reconnected);
                    break;
                }
                Err(ClientError::Connection(err))
                    if matches!(
                        err,
                        protocol::ConnectionError::Handshake(
                            protocol::HandshakeError::ServerKeyChanged { .. }
                        )
                    ) =>
                {
                    tracing::error!(%err, "the server's key changed; not reconnecting");
                    return;
                }
                Err(err) => {
                    tracing::debug!(%err, "reconnect failed; trying again");
                    delay = (delay * 2).min(RECONNECT_MAX_DELAY);
                }
            }
        }
    }
}
