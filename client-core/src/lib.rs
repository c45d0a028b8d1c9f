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

pub mod error;
pub mod link;
pub mod store;
pub mod trust;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use protocol::e2e::{
    self, ATTACHMENT_CHUNK_PLAINTEXT, AttachmentRef, Body, CONTENT_KEY_LEN, Content, ContentKey,
    Envelope, ImageFormat, MessageContext, PairwiseKey, StyledText,
};
use protocol::message::{
    Event, Friend, FriendDecision, LoginBundle, Presence, Register, Request, Response, Room, Sex,
    StoredMessage, UserSummary,
};
use protocol::{
    ClientMsgId, ConversationId, Fingerprint, KeyPair, PublicKey, RoomId, Seq, ServerCertificate,
    Timestamp, UserId,
};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

pub use crate::error::ClientError;
use crate::link::Link;
pub use crate::store::LocalMessage;
use crate::store::{Queued, Store};
use crate::trust::KnownServers;

/// Content up to this size travels inside the message; larger content is an attachment.
pub const INLINE_MAX: usize = 32 * 1024;

/// How often an idle connection pings (the server closes after 60 s of silence).
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// First wait before a reconnection attempt; it doubles up to [`RECONNECT_MAX_DELAY`].
pub const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(100);

/// How often a transfer waiting for the connection checks whether it is back.
pub const RECONNECT_POLL: Duration = Duration::from_millis(100);

/// Longest wait between reconnection attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);

/// Longest an interrupted upload waits for the connection to come back.
pub const UPLOAD_RESUME_WAIT: Duration = Duration::from_secs(60);

/// Size of one sealed attachment chunk (what the server stores per chunk).
pub const SEALED_CHUNK_LEN: usize = ATTACHMENT_CHUNK_PLAINTEXT + e2e::CHUNK_OVERHEAD;

/// How long delivery acknowledgements are gathered before they are sent.
pub const ACK_DELAY: Duration = Duration::from_millis(200);

/// Text shown for a message that cannot be decrypted.
pub const UNDECRYPTABLE: &str = "[this message could not be decrypted]";

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's address, `host:port`.
    pub server: String,
    /// The client's folder: known servers, keys, local history, image cache.
    pub data_dir: PathBuf,
    /// Longest a request waits for its answer.
    pub request_timeout: Duration,
    /// Whether a lost connection is re-established (and the session restored) by itself.
    pub auto_reconnect: bool,
}

impl ClientConfig {
    /// Defaults for `server`, keeping files in `data_dir`.
    pub fn new(server: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server: server.into(),
            data_dir: data_dir.into(),
            request_timeout: Duration::from_secs(30),
            auto_reconnect: true,
        }
    }
}

/// What a new account is made with.
#[derive(Debug, Clone)]
pub struct RegisterForm {
    /// 1 to 8 letters or digits.
    pub username: String,
    /// The password.
    pub password: String,
    /// An email address.
    pub email: String,
    /// Sex.
    pub sex: Sex,
    /// Age in years.
    pub age: u8,
}

/// Something that happened, for the user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A message arrived (live or by sync), decrypted and stored.
    Message(LocalMessage),
    /// A message queued while disconnected was accepted after a reconnect.
    Sent {
        /// The conversation.
        conversation: ConversationId,
        /// Its seq.
        seq: Seq,
        /// Its id.
        client_msg_id: ClientMsgId,
    },
    /// A friend came online (with the address their gateway sees) or went offline.
    Presence {
        /// The friend.
        user: UserId,
        /// Where, or offline.
        presence: Presence,
    },
    /// Someone asks to be friends.
    FriendRequest(UserSummary),
    /// A friendship began.
    FriendAdded(Friend),
    /// A friendship ended.
    FriendRemoved(UserId),
    /// Someone joined a group.
    RoomMemberJoined {
        /// The group.
        room: RoomId,
        /// Who.
        member: UserSummary,
    },
    /// A contact's key is not the one seen before: compare safety numbers again.
    KeyChanged {
        /// Whose key changed.
        user: UserId,
    },
    /// The session was ended by the server (a login elsewhere, or shutdown).
    Kicked {
        /// The server's words.
        reason: String,
    },
    /// The connection was lost; the client is reconnecting.
    Disconnected,
    /// The connection is back and the session restored.
    Reconnected,
}

/// A logged-in user.
struct Account {
    me: UserSummary,
    keys: KeyPair,
    password: Zeroizing<String>,
    store: Store,
    /// Pairwise keys by user, with the public key they were derived from: deriving one costs
    /// a Diffie-Hellman exponentiation (about a millisecond), so each is derived once.
    pairwise: Mutex<HashMap<UserId, (PublicKey, PairwiseKey)>>,
}

impl Account {
    /// The key shared with `user`, whose public key is `theirs`.
    fn pairwise_with(&self, user: UserId, theirs: &PublicKey) -> PairwiseKey {
        let mut cache = self.pairwise.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, pairwise)) = cache.get(&user).filter(|(key, _)| key == theirs) {
            return pairwise.clone();
        }
        let pairwise = PairwiseKey::derive(&self.keys, self.me.id, theirs, user);
        cache.insert(user, (theirs.clone(), pairwise.clone()));
        pairwise
    }
}

#[derive(Default)]
struct State {
    link: Option<Arc<Link>>,
    account: Option<Arc<Account>>,
    contacts: Option<LoginBundle>,
    /// Set when the session must not be restored (kicked, logged out).
    ended: bool,
    /// Delivery acknowledgements waiting to be sent, by conversation.
    acks: HashMap<ConversationId, Seq>,
}

struct Inner {
    config: ClientConfig,
    known: KnownServers,
    certificate: ServerCertificate,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<ClientEvent>,
    raw: mpsc::UnboundedSender<Event>,
}

/// A Uchat client. Cheap to clone; all clones share one connection and session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.config.server)
            .finish_non_exhaustive()
    }
}

fn unexpected(response: Response) -> ClientError {
    ClientError::Invalid(format!("unexpected answer from the server: {response:?}"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::File {
        path: path.to_owned(),
        source,
    }
}

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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The server key's fingerprint (pinned in the known-servers file).
    pub fn server_fingerprint(&self) -> Fingerprint {
        self.inner.certificate.fingerprint()
    }

    /// The known-servers file.
    pub fn known_servers(&self) -> &Path {
        self.inner.known.path()
    }

    async fn request(&self, body: Request) -> Result<Response, ClientError> {
        let link = self
            .state()
            .link
            .clone()
            .ok_or_else(|| ClientError::Disconnected("not connected".into()))?;
        link.request(body, self.inner.config.request_timeout).await
    }

    fn account(&self) -> Result<Arc<Account>, ClientError> {
        self.state()
            .account
            .clone()
            .ok_or_else(|| ClientError::Invalid("log in first".into()))
    }

    fn key_path(&self, username: &str) -> PathBuf {
        let server = hex::encode(self.inner.certificate.fingerprint().0);
        let server = server.get(..16).unwrap_or(&server).to_owned();
        self.inner
            .config
            .data_dir
            .join("keys")
            .join(format!("{server}-{}.key", username.to_lowercase()))
    }

    /// Makes an account: a new key pair (the private key saved, owner-only, in the key
    /// folder) and its certificate sent to the server.
    pub async fn register(&self, form: RegisterForm) -> Result<UserId, ClientError> {
        let keys = KeyPair::generate().map_err(|_| ClientError::Invalid("no randomness".into()))?;
        let path = self.key_path(&form.username);
        let existing = std::fs::read(&path).ok();
        protocol::identity::write_private_file(&path, hex::encode(keys.secret_bytes()).as_bytes())?;
        let request = Request::Register(Register {
            username: form.username,
            password: form.password,
            email: form.email,
            sex: form.sex,
            age: form.age,
            public_key: ByteBuf::from(keys.public().as_bytes().to_vec()),
        });
        match self.request(request).await {
            Ok(Response::Registered { user, .. }) => Ok(user),
            other => {
                // Put back what was there: a failed registration must not lose a key.
                match existing {
                    Some(old) => protocol::identity::write_private_file(&path, &old)?,
                    None => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                match other {
                    Ok(response) => Err(unexpected(response)),
                    Err(err) => Err(err),
                }
            }
        }
    }

    fn load_keys(&self, username: &str) -> Result<KeyPair, ClientError> {
        let path = self.key_path(username);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            ClientError::Invalid(format!(
                "no key for {username} on this machine (expected {}); log in from the \
                 machine where the account was made",
                path.display()
            ))
        })?;
        let secret = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            ClientError::Invalid(format!("{} is not a Uchat key file", path.display()))
        })?);
        let secret: &[u8; 32] = secret.as_slice().try_into().map_err(|_| {
            ClientError::Invalid(format!("{} is not a Uchat key file", path.display()))
        })?;
        KeyPair::from_secret(secret)
            .map_err(|_| ClientError::Invalid(format!("{} holds an invalid key", path.display())))
    }

    /// Logs in (kicking any other session of the user), opens the local store, syncs what
    /// arrived while offline and resends anything left unacknowledged.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginBundle, ClientError> {
        let keys = self.load_keys(username)?;
        let request = Request::Login(protocol::message::Login {
            username: username.to_owned(),
            password: password.to_owned(),
        });
        let bundle = match self.request(request).await? {
            Response::LoggedIn(bundle) => bundle,
            other => return Err(unexpected(other)),
        };
        let store_path = self
            .inner
            .config
            .data_dir
            .join(format!("user-{}.db", bundle.me.id.0));
        let store = Store::open(&store_path).await?;
        store.put_contacts(&bundle).await?;
        for state in &bundle.conversations {
            store.mark_read(state.conversation, state.read_seq).await?;
        }
        let account = Arc::new(Account {
            me: bundle.me.clone(),
            keys,
            password: Zeroizing::new(password.to_owned()),
            store,
            pairwise: Mutex::new(HashMap::new()),
        });
        {
            let mut state = self.state();
            state.account = Some(account.clone());
            state.contacts = Some(bundle.clone());
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

    /// Drops the connection as a network failure would (the client reconnects by itself).
    pub fn drop_connection(&self) {
        if let Some(link) = self.state().link.clone() {
            link.close();
        }
    }

    /// Who is logged in.
    pub fn me(&self) -> Option<UserSummary> {
        self.state().account.as_ref().map(|a| a.me.clone())
    }

    /// Friends, groups and pending requests as last known.
    pub fn contacts(&self) -> Option<LoginBundle> {
        self.state().contacts.clone()
    }

    /// Asks the server for the contacts again.
    pub async fn refresh_contacts(&self) -> Result<LoginBundle, ClientError> {
        match self.request(Request::Contacts).await? {
            Response::Contacts(bundle) => {
                self.state().contacts = Some(bundle.clone());
                if let Ok(account) = self.account() {
                    account.store.put_contacts(&bundle).await?;
                    let friends: Vec<UserId> = bundle.friends.iter().map(|f| f.user.id).collect();
                    self.public_keys(&account, &friends).await?;
                }
                Ok(bundle)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Users whose name starts with `query`.
    pub async fn search(&self, query: &str) -> Result<Vec<UserSummary>, ClientError> {
        match self
            .request(Request::SearchUsers {
                query: query.to_owned(),
            })
            .await?
        {
            Response::Users(users) => Ok(users),
            other => Err(unexpected(other)),
        }
    }

    /// Asks `user` to be friends; `Some` when they had asked too (now friends).
    pub async fn add_friend(&self, user: UserId) -> Result<Option<Friend>, ClientError> {
        match self.request(Request::AddFriend { user }).await? {
            Response::FriendRequestSent { friend } => {
                if let Some(friend) = &friend {
                    self.remember_friend(friend.clone());
                }
                Ok(friend)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Answers `from`'s friend request; `Some` when accepted.
    pub async fn resolve_friend_request(
        &self,
        from: UserId,
        decision: FriendDecision,
    ) -> Result<Option<Friend>, ClientError> {
        match self
            .request(Request::ResolveFriendRequest { from, decision })
            .await?
        {
            Response::Friend(friend) => {
                self.remember_friend(friend.clone());
                Ok(Some(friend))
            }
            Response::Done => Ok(None),
            other => Err(unexpected(other)),
        }
    }

    /// Ends the friendship with `friend`, on both sides.
    pub async fn delete_friend(&self, friend: UserId) -> Result<(), ClientError> {
        self.request(Request::DeleteFriend { friend }).await?;
        if let Some(contacts) = self.state().contacts.as_mut() {
            contacts.friends.retain(|f| f.user.id != friend);
        }
        Ok(())
    }

    /// Makes a group; the server assigns its number.
    pub async fn create_room(&self, name: &str) -> Result<Room, ClientError> {
        let response = self
            .request(Request::CreateRoom {
                name: name.to_owned(),
            })
            .await?;
        self.room_response(response)
    }

    /// Joins a group by number.
    pub async fn join_room(&self, room: RoomId) -> Result<Room, ClientError> {
        let response = self.request(Request::JoinRoom { room }).await?;
        self.room_response(response)
    }

    fn room_response(&self, response: Response) -> Result<Room, ClientError> {
        match response {
            Response::Room(room) => {
                if let Some(contacts) = self.state().contacts.as_mut() {
                    contacts.rooms.retain(|r| r.id != room.id);
                    contacts.rooms.push(room.clone());
                }
                Ok(room)
            }
            other => Err(unexpected(other)),
        }
    }

    /// A group's members.
    pub async fn room_members(&self, room: RoomId) -> Result<Vec<UserSummary>, ClientError> {
        match self.request(Request::RoomMembers { room }).await? {
            Response::Members(members) => Ok(members),
            other => Err(unexpected(other)),
        }
    }

    fn remember_friend(&self, friend: Friend) {
        if let Some(contacts) = self.state().contacts.as_mut() {
            contacts.friends.retain(|f| f.user.id != friend.user.id);
            contacts.friends.push(friend);
        }
    }

    /// Fetches the public keys of `users`, caches them, and reports keys that changed.
    async fn refresh_certificates(
        &self,
        account: &Account,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PublicKey>, ClientError> {
        let mut keys = HashMap::new();
        if users.is_empty() {
            return Ok(keys);
        }
        let certificates = match self
            .request(Request::GetCertificates {
                users: users.to_vec(),
            })
            .await?
        {
            Response::Certificates(certificates) => certificates,
            other => return Err(unexpected(other)),
        };
        for certificate in certificates {
            let Ok(key) = PublicKey::from_bytes(&certificate.public_key) else {
                continue;
            };
            let cached = account.store.certificate(certificate.user).await?;
            if cached
                .as_deref()
                .is_some_and(|c| c != certificate.public_key.as_slice())
            {
                let _ = self.inner.events.send(ClientEvent::KeyChanged {
                    user: certificate.user,
                });
            }
            account
                .store
                .put_certificate(certificate.user, &certificate.public_key)
                .await?;
            keys.insert(certificate.user, key);
        }
        Ok(keys)
    }

    /// The public keys of `users`, from the cache or the server.
    async fn public_keys(
        &self,
        account: &Account,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PublicKey>, ClientError> {
        let mut keys = HashMap::new();
        let mut missing = Vec::new();
        for user in users {
            match account.store.certificate(*user).await? {
                Some(bytes) => {
                    if let Ok(key) = PublicKey::from_bytes(&bytes) {
                        keys.insert(*user, key);
                    }
                }
                None => missing.push(*user),
            }
        }
        keys.extend(self.refresh_certificates(account, &missing).await?);
        Ok(keys)
    }

    async fn pairwise(&self, account: &Account, user: UserId) -> Result<PairwiseKey, ClientError> {
        let keys = self.public_keys(account, &[user]).await?;
        let key = keys
            .get(&user)
            .ok_or_else(|| ClientError::Invalid(format!("no public key for user {user}")))?;
        Ok(account.pairwise_with(user, key))
    }

    /// The safety number shared with `user`, to compare in person.
    pub async fn safety_number(&self, user: UserId) -> Result<String, ClientError> {
        let account = self.account()?;
        let keys = self.public_keys(&account, &[user]).await?;
        let theirs = keys
            .get(&user)
            .ok_or_else(|| ClientError::Invalid(format!("no public key for user {user}")))?;
        Ok(e2e::safety_number(
            (account.me.id, account.keys.public()),
            (user, theirs),
        ))
    }

    fn direct_peer(&self, conversation: ConversationId) -> Option<UserId> {
        self.state().contacts.as_ref().and_then(|c| {
            c.friends
                .iter()
                .find(|f| f.conversation == conversation)
                .map(|f| f.user.id)
        })
    }

    fn room_of(&self, conversation: ConversationId) -> Option<RoomId> {
        self.state().contacts.as_ref().and_then(|c| {
            c.rooms
                .iter()
                .find(|r| r.conversation == conversation)
                .map(|r| r.id)
        })
    }

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
    /// a notice so the history keeps its place.
    async fn receive(
        &self,
        account: &Account,
        stored: StoredMessage,
    ) -> Result<LocalMessage, ClientError> {
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
        account.store.put_message(&message).await?;
        Ok(message)
    }

    /// Fetches everything newer than the local history, page by page, and acknowledges it.
    pub async fn sync(&self) -> Result<usize, ClientError> {
        let account = self.account()?;
        let mut count = 0;
        loop {
            let cursors = account
                .store
                .cursors()
                .await?
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
                let message = self.receive(&account, stored).await?;
                let _ = self.inner.events.send(ClientEvent::Message(message));
                count += 1;
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

    /// Sends a file: an image (recognised by its bytes, shown inline) or any other file. Large
    /// content is uploaded as an encrypted attachment first; `progress` gets (sent, total).
    pub async fn send_file(
        &self,
        conversation: ConversationId,
        name: &str,
        bytes: &[u8],
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Seq, ClientError> {
        let content = if bytes.len() <= INLINE_MAX {
            progress(bytes.len() as u64, bytes.len() as u64);
            Content::Inline(ByteBuf::from(bytes.to_vec()))
        } else {
            Content::Attachment(self.upload(bytes, &progress).await?)
        };
        let body = match ImageFormat::sniff(bytes) {
            Some(format) => Body::Image {
                name: name.to_owned(),
                format,
                content,
            },
            None => Body::File {
                name: name.to_owned(),
                size: bytes.len() as u64,
                content,
            },
        };
        self.send_body(conversation, body).await
    }

    /// Seals and sends `body`. Until the server acknowledges it, the message waits in the
    /// outbox: after a lost connection it is resent with the same id (stored once).
    pub async fn send_body(
        &self,
        conversation: ConversationId,
        body: Body,
    ) -> Result<Seq, ClientError> {
        let account = self.account()?;
        let client_msg_id = ClientMsgId::random();
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

    async fn deliver(&self, account: &Account, queued: &Queued) -> Result<Seq, ClientError> {
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
        Ok(seq)
    }

    /// Resends every unacknowledged message with its original id.
    async fn flush_outbox(&self) -> Result<(), ClientError> {
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

    /// Messages from others not yet marked read.
    pub async fn unread(&self, conversation: ConversationId) -> Result<u64, ClientError> {
        let account = self.account()?;
        account.store.unread(conversation, account.me.id).await
    }

    /// Marks everything up to `seq` read, here and on the server.
    pub async fn mark_read(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<(), ClientError> {
        let account = self.account()?;
        account.store.mark_read(conversation, seq).await?;
        self.request(Request::AckRead { conversation, seq }).await?;
        Ok(())
    }

    /// Encrypts and uploads `bytes` as an attachment, resuming after a lost connection.
    async fn upload(
        &self,
        bytes: &[u8],
        progress: &(impl Fn(u64, u64) + Send + Sync),
    ) -> Result<AttachmentRef, ClientError> {
        let key = ContentKey::generate()?;
        let plain = bytes.to_vec();
        let key_bytes = key.to_bytes();
        let (chunks, cipher_sha, plain_sha) = tokio::task::spawn_blocking(move || {
            let key = ContentKey::from_bytes(&key_bytes);
            let chunks: Vec<Vec<u8>> = plain
                .chunks(ATTACHMENT_CHUNK_PLAINTEXT)
                .enumerate()
                .map(|(i, chunk)| key.seal_chunk(i as u64, chunk))
                .collect();
            let cipher_sha = e2e::sha256(&chunks.concat());
            (chunks, cipher_sha, e2e::sha256(&plain))
        })
        .await
        .map_err(|_| ClientError::Invalid("encryption was cancelled".into()))?;
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let (attachment, chunk_size) = match self
            .request(Request::UploadStart {
                size: total,
                sha256: cipher_sha,
            })
            .await?
        {
            Response::UploadStarted {
                attachment,
                chunk_size,
            } => (attachment, chunk_size),
            other => return Err(unexpected(other)),
        };
        if chunk_size as usize != SEALED_CHUNK_LEN {
            return Err(ClientError::Invalid(format!(
                "the server stores chunks of {chunk_size} bytes; this client seals {SEALED_CHUNK_LEN}"
            )));
        }
        let mut received = 0u64;
        progress(0, total);
        while received < total {
            let index = usize::try_from(received / chunk_size as u64).unwrap_or(usize::MAX);
            let Some(chunk) = chunks.get(index) else {
                return Err(ClientError::Invalid(
                    "the server reports a bad offset".into(),
                ));
            };
            let request = Request::UploadChunk {
                attachment,
                offset: received,
                data: ByteBuf::from(chunk.clone()),
            };
            match self.request(request).await {
                Ok(Response::UploadProgress { received: now, .. }) => received = now,
                Ok(other) => return Err(unexpected(other)),
                Err(err) if err.is_transient() => {
                    // Wait for the reconnect, then ask where the upload stands.
                    self.wait_connected(UPLOAD_RESUME_WAIT).await?;
                    match self.request(Request::UploadStatus { attachment }).await? {
                        Response::UploadProgress { received: now, .. } => received = now,
                        other => return Err(unexpected(other)),
                    }
                }
                Err(err) => return Err(err),
            }
            progress(received, total);
        }
        Ok(AttachmentRef {
            id: attachment,
            size: bytes.len() as u64,
            key: ByteBuf::from(key.to_bytes().to_vec()),
            sha256: plain_sha,
        })
    }

    async fn wait_connected(&self, limit: Duration) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let connected = self.state().link.as_ref().is_some_and(|l| !l.is_closed());
            if connected {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Disconnected(
                    "the connection did not come back".into(),
                ));
            }
            tokio::time::sleep(RECONNECT_POLL).await;
        }
    }

    /// Downloads and decrypts an attachment; `progress` gets (received, total).
    pub async fn download(
        &self,
        attachment: &AttachmentRef,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Vec<u8>, ClientError> {
        let key_bytes: &[u8; CONTENT_KEY_LEN] = attachment
            .key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Invalid("the attachment's key is malformed".into()))?;
        let key = ContentKey::from_bytes(key_bytes);
        // The size comes from another user's message: allocate by what arrives, never by it.
        let mut plain = Vec::with_capacity(SEALED_CHUNK_LEN);
        let mut offset = 0u64;
        let mut index = 0u64;
        loop {
            let request = Request::Download {
                attachment: attachment.id,
                offset,
                max_len: SEALED_CHUNK_LEN as u32,
            };
            let (total, data) = match self.request(request).await? {
                Response::Chunk { total, data, .. } => (total, data),
                other => return Err(unexpected(other)),
            };
            if data.is_empty() {
                break;
            }
            plain.extend(key.open_chunk(index, &data)?);
            if plain.len() as u64 > attachment.size {
                return Err(ClientError::Invalid(
                    "the server sent more than the file's size".into(),
                ));
            }
            offset += data.len() as u64;
            index += 1;
            progress(offset, total);
            if offset >= total {
                break;
            }
        }
        if e2e::sha256(&plain) != attachment.sha256 {
            return Err(ClientError::Invalid(
                "the downloaded file does not match its checksum".into(),
            ));
        }
        Ok(plain)
    }

    /// The bytes of a message's content: inline, or downloaded.
    pub async fn content(&self, content: &Content) -> Result<Vec<u8>, ClientError> {
        match content {
            Content::Inline(bytes) => Ok(bytes.to_vec()),
            Content::Attachment(attachment) => self.download(attachment, |_, _| {}).await,
        }
    }

    /// The path of an image in the image cache folder, fetching it the first time (F10).
    pub async fn cached_image(
        &self,
        format: ImageFormat,
        content: &Content,
    ) -> Result<PathBuf, ClientError> {
        let id = match content {
            Content::Inline(bytes) => e2e::sha256(bytes),
            Content::Attachment(attachment) => attachment.sha256,
        };
        let extension = match format {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Gif => "gif",
            ImageFormat::Bmp => "bmp",
            ImageFormat::WebP => "webp",
        };
        let dir = self.inner.config.data_dir.join("images");
        let path = dir.join(format!("{}.{extension}", hex::encode(id)));
        if path.exists() {
            return Ok(path);
        }
        let bytes = self.content(content).await?;
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::write(&path, bytes).map_err(io(&path))?;
        Ok(path)
    }

    /// Handles one event from the server.
    async fn on_event(&self, event: Event) -> Result<(), ClientError> {
        let emitted = match event {
            Event::Message(stored) => {
                let account = self.account()?;
                let (conversation, seq) = (stored.conversation, stored.seq);
                let message = self.receive(&account, stored).await?;
                self.ack_later(conversation, seq);
                ClientEvent::Message(message)
            }
            Event::Presence { user, presence } => {
                if let Some(contacts) = self.state().contacts.as_mut() {
                    for friend in contacts.friends.iter_mut().filter(|f| f.user.id == user) {
                        friend.presence = presence.clone();
                    }
                }
                ClientEvent::Presence { user, presence }
            }
            Event::FriendRequest(user) => {
                if let Some(contacts) = self.state().contacts.as_mut() {
                    contacts.pending_requests.retain(|u| u.id != user.id);
                    contacts.pending_requests.push(user.clone());
                }
                ClientEvent::FriendRequest(user)
            }
            Event::FriendAdded(friend) => {
                self.remember_friend(friend.clone());
                ClientEvent::FriendAdded(friend)
            }
            Event::FriendRemoved { user } => {
                if let Some(contacts) = self.state().contacts.as_mut() {
                    contacts.friends.retain(|f| f.user.id != user);
                }
                ClientEvent::FriendRemoved(user)
            }
            Event::Kicked { reason } => {
                self.state().ended = true;
                ClientEvent::Kicked { reason }
            }
            Event::RoomMemberJoined { room, member } => {
                ClientEvent::RoomMemberJoined { room, member }
            }
        };
        let _ = self.inner.events.send(emitted);
        Ok(())
    }

    /// Acknowledges delivery of everything up to `seq` soon: acknowledgements of a burst
    /// are gathered into one per conversation (best effort: the next sync acknowledges what
    /// a lost connection dropped).
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
            for (conversation, seq) in acks {
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
            password: account.password.to_string(),
        });
        match self.request(request).await? {
            Response::LoggedIn(bundle) => {
                account.store.put_contacts(&bundle).await?;
                self.state().contacts = Some(bundle);
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
