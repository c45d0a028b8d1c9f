//! The one module that talks to client-core. A tokio runtime on its own thread owns the
//! [`Client`]; the user interface sends [`Command`]s and drains [`Update`]s each frame, and is
//! asked to repaint whenever one arrives. Nothing here runs on the UI thread but the two
//! channel ends.
//!
//! Each command runs as its own task, so a 100 MB upload never holds up a chat message;
//! trusting a server runs in line, so the login that follows it sees the pinned key.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use client_core::trust::KnownServers;
use client_core::{Client, ClientConfig, ClientError, ClientEvent, LocalMessage, RegisterForm};
use protocol::e2e::{Body, Content, ImageFormat};
use protocol::message::{ErrorCode, Field, FriendDecision, LoginBundle, UserSummary};
use protocol::{ClientMsgId, ConversationId, Fingerprint, RoomId, Seq, UserId};
use tokio::sync::{mpsc, oneshot};

mod files;

pub use files::{FOLDER_MAX_ENTRIES, IMAGE_MAX_SIDE, SEND_FILE_MAX, decode};

/// How many messages one page of history holds.
pub const HISTORY_PAGE: u32 = 50;

/// Which form an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The login form.
    Login,
    /// The registration form.
    Register,
}

/// What the user interface asks of the network side.
#[derive(Debug, Clone)]
pub enum Command {
    /// Pins `fingerprint` for `server` (the person compared and accepted it).
    Trust {
        /// `host:port`.
        server: String,
        /// The accepted fingerprint.
        fingerprint: Fingerprint,
    },
    /// Connects and logs in.
    Login {
        /// `host:port`.
        server: String,
        /// Username.
        username: String,
        /// Password (held by client-core for reconnection, never written to disk).
        password: String,
    },
    /// Connects, registers, then logs in.
    Register {
        /// `host:port`.
        server: String,
        /// The form.
        form: RegisterForm,
    },
    /// Logs out.
    Logout,
    /// After [`Update::KeyLost`]: makes a new key pair and finishes the login.
    StartOver,
    /// Changes the password.
    ChangePassword {
        /// The current password.
        current: String,
        /// The new one.
        new: String,
    },
    /// Saves the last server and username (never the password).
    Remember(crate::settings::Settings),
    /// Searches users by name.
    Search(String),
    /// Sends a friend request.
    AddFriend(UserId),
    /// Answers a friend request.
    Resolve(UserId, FriendDecision),
    /// Ends a friendship.
    DeleteFriend(UserId),
    /// Makes a group.
    CreateRoom(String),
    /// Joins a group by number.
    JoinRoom(RoomId),
    /// Loads a page of history before `before` (`Seq(0)`: the newest).
    History(ConversationId, Seq),
    /// Marks a conversation read up to a seq.
    MarkRead(ConversationId, Seq),
    /// Sends a message under the given id.
    Send(ConversationId, ClientMsgId, Body),
    /// Reads a file from disk and sends it.
    SendFile(ConversationId, PathBuf),
    /// Fetches and decodes an image for display.
    LoadImage(ImageKey, ImageFormat, Content),
    /// Fetches content and saves it under the downloads folder.
    Save(String, Content),
    /// Computes the safety number shared with a friend.
    SafetyNumber(UserId),
    /// Lists a group's members (for their names).
    Members(RoomId),
    /// Lists a folder for the file chooser.
    ListFolder(PathBuf),
}

/// Names an image of a message: its conversation and the sender's id for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageKey(pub ConversationId, pub ClientMsgId);

/// What happened after login, to show the contact list at once.
#[derive(Debug, Clone)]
pub struct Session {
    /// Contacts as the server sent them.
    pub contacts: LoginBundle,
    /// Per conversation: unread messages (from others) and the newest message held.
    pub conversations: Vec<(ConversationId, u64, Option<LocalMessage>)>,
}

/// A decoded image, ready for a texture.
#[derive(Debug, Clone)]
pub struct Pixels {
    /// Width and height.
    pub size: [usize; 2],
    /// RGBA, row by row.
    pub rgba: Vec<u8>,
}

/// What the network side tells the user interface.
#[derive(Debug, Clone)]
pub enum Update {
    /// The server is new to this client: show the fingerprint and ask.
    UnknownServer {
        /// `host:port`.
        server: String,
        /// What it presented.
        fingerprint: Fingerprint,
    },
    /// The server's key is not the pinned one: warn, never connect.
    ServerKeyChanged {
        /// `host:port`.
        server: String,
        /// The pinned fingerprint.
        pinned: Fingerprint,
        /// The presented one.
        presented: Fingerprint,
    },
    /// A form was refused: the server's code and words, and per-field messages.
    FormFailed {
        /// Which form.
        form: Form,
        /// The error code, when the server refused.
        code: Option<ErrorCode>,
        /// The words to show.
        message: String,
        /// Per-field messages.
        fields: Vec<(Field, String)>,
    },
    /// Logged in.
    LoggedIn(Box<Session>),
    /// Something from client-core (messages, presence, requests, connection state).
    Event(ClientEvent),
    /// The contacts changed.
    Contacts(LoginBundle),
    /// Search results.
    Found(Vec<UserSummary>),
    /// A page of history.
    History {
        /// The conversation.
        conversation: ConversationId,
        /// The messages, oldest first.
        messages: Vec<LocalMessage>,
    },
    /// A message of ours was stored (or was refused).
    Sent {
        /// The conversation.
        conversation: ConversationId,
        /// Its id.
        id: ClientMsgId,
        /// The stored message, or why not (and whether it waits for the reconnect).
        result: Result<LocalMessage, (String, bool)>,
    },
    /// A file transfer moved on.
    Progress {
        /// Which transfer.
        name: String,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
        /// Whether it is finished (or abandoned).
        finished: bool,
    },
    /// An image decoded, or not.
    Image(ImageKey, Result<Arc<Pixels>, String>),
    /// A safety number.
    SafetyNumber(UserId, String),
    /// A group's members.
    Members(RoomId, Vec<UserSummary>),
    /// A folder's folders and files (hidden ones left out), folders first, each with whether
    /// it is a folder.
    Folder(PathBuf, Vec<(PathBuf, bool)>),
    /// Something worth telling the person (a result or an error).
    Notice(Notice),
    /// The login succeeded but the private key cannot be found or restored.
    KeyLost,
    /// How a change of password ended (a refusal's code, and its words).
    PasswordChange(Result<(), (Option<protocol::message::ErrorCode>, String)>),
}

/// A short message for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A friend request went out.
    RequestSent(String),
    /// A group was made or joined.
    RoomReady(String, RoomId),
    /// A file was saved here.
    Saved(PathBuf),
    /// The password was changed.
    PasswordChanged,
    /// Something failed; the words say what.
    Failed(String),
}

/// Where the network side keeps its files, and how it reaches the user interface.
#[derive(Clone)]
pub struct NetConfig {
    /// The client's data folder (keys, known servers, history, image cache).
    pub data_dir: PathBuf,
    /// Where saved files go.
    pub downloads: PathBuf,
    /// Asks the user interface to draw again.
    pub repaint: Arc<dyn Fn() + Send + Sync>,
    /// The least password stretch accepted from a server.
    pub min_kdf: protocol::password::KdfCost,
}

/// The user interface's end of the network side.
pub struct Net {
    commands: mpsc::UnboundedSender<Command>,
    updates: std_mpsc::Receiver<Update>,
}

impl Net {
    /// Starts the network thread.
    pub fn start(config: NetConfig) -> std::io::Result<Self> {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (updates_tx, updates) = std_mpsc::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("uchat-net")
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("uchat-net".into())
            .spawn(move || {
                let out = Out {
                    updates: updates_tx,
                    repaint: config.repaint.clone(),
                };
                runtime.block_on(worker(config, commands_rx, out));
            })?;
        Ok(Self { commands, updates })
    }

    /// Asks for something; the answer comes as an [`Update`].
    pub fn send(&self, command: Command) {
        // The worker stops only when this handle is dropped.
        let _ = self.commands.send(command);
    }

    /// The next update, if one is waiting.
    pub fn try_recv(&self) -> Option<Update> {
        self.updates.try_recv().ok()
    }

    /// Waits up to `limit` for the next update (for tests that wait for a condition).
    pub fn recv_timeout(&self, limit: Duration) -> Option<Update> {
        self.updates.recv_timeout(limit).ok()
    }
}

/// Sends updates and wakes the user interface.
#[derive(Clone)]
pub(super) struct Out {
    updates: std_mpsc::Sender<Update>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Out {
    pub(super) fn send(&self, update: Update) {
        if self.updates.send(update).is_ok() {
            (self.repaint)();
        }
    }

    pub(super) fn failed(&self, err: &ClientError) {
        self.send(Update::Notice(Notice::Failed(err.to_string())));
    }
}

async fn worker(config: NetConfig, mut commands: mpsc::UnboundedReceiver<Command>, out: Out) {
    let mut live: Option<Live> = None;
    // A login whose key is lost, until the person starts over or goes back.
    let mut key_lost: Option<Connected> = None;
    while let Some(command) = commands.recv().await {
        match command {
            Command::Trust {
                server,
                fingerprint,
            } => {
                let known = KnownServers::new(config.data_dir.join("known_servers"));
                if let Err(err) = known.pin(&server, fingerprint) {
                    out.failed(&err);
                }
            }
            Command::Login {
                server,
                username,
                password,
            } => {
                end(live.take()).await;
                abandon(key_lost.take()).await;
                let act = async |c: &Client| c.login(&username, &password).await.map(|_| ());
                let started = start_session(&config, &out, &server, Form::Login, act).await;
                (live, key_lost) = started.split();
            }
            Command::Register { server, form } => {
                let (username, password) = (form.username.clone(), form.password.clone());
                end(live.take()).await;
                abandon(key_lost.take()).await;
                let act = async |c: &Client| {
                    c.register(form).await?;
                    c.login(&username, &password).await.map(|_| ())
                };
                let started = start_session(&config, &out, &server, Form::Register, act).await;
                (live, key_lost) = started.split();
            }
            Command::Remember(settings) => {
                let path = config.data_dir.join(crate::settings::FILE);
                if let Err(err) = settings.save(&path) {
                    tracing::warn!(%err, "settings not saved");
                }
            }
            Command::ListFolder(folder) => {
                let out = out.clone();
                tokio::spawn(async move {
                    let entries = files::list_folder(&folder).await;
                    out.send(Update::Folder(folder, entries));
                });
            }
            Command::Logout => {
                end(live.take()).await;
                abandon(key_lost.take()).await;
            }
            Command::StartOver => match key_lost.take() {
                Some((client, events)) => match client.start_over().await {
                    Ok(_) => live = go_live(&out, Form::Login, client, events).await,
                    Err(err) => {
                        out.send(form_error("", Form::Login, err));
                        let _ = client.logout().await;
                    }
                },
                None => out.send(Update::Notice(Notice::Failed("not logged in".into()))),
            },
            other => match &live {
                Some(live) => {
                    let client = live.client.clone();
                    tokio::spawn(run(client, config.clone(), out.clone(), other));
                }
                None => out.send(Update::Notice(Notice::Failed("not logged in".into()))),
            },
        }
    }
}

/// A logged-in session: the client, and the end of the task that passes its events on
/// (dropping it stops the task, which would otherwise keep the client alive).
struct Live {
    client: Client,
    _stop: oneshot::Sender<()>,
}

/// Ends a session: logs out (a kicked session's logout fails at once, which is fine) and
/// stops passing its events.
async fn end(live: Option<Live>) {
    if let Some(live) = live {
        let _ = live.client.logout().await;
    }
}

/// A connected client and its events.
type Connected = (Client, mpsc::UnboundedReceiver<ClientEvent>);

/// How a login attempt ended.
enum Started {
    /// Logged in.
    Live(Live),
    /// Logged in without a key: kept for [`Command::StartOver`].
    KeyLost(Connected),
    /// Failed (the form shows why).
    Failed,
}

impl Started {
    fn split(self) -> (Option<Live>, Option<Connected>) {
        match self {
            Self::Live(live) => (Some(live), None),
            Self::KeyLost(connected) => (None, Some(connected)),
            Self::Failed => (None, None),
        }
    }
}

/// Leaves a login whose key was lost (the person went back to the login form).
async fn abandon(key_lost: Option<Connected>) {
    if let Some((client, _)) = key_lost {
        let _ = client.logout().await;
    }
}

/// Connects, runs `act` (log in, or register and log in), and on success reports the
/// session and starts passing on the client's events.
async fn start_session(
    config: &NetConfig,
    out: &Out,
    server: &str,
    form: Form,
    act: impl AsyncFnOnce(&Client) -> Result<(), ClientError>,
) -> Started {
    let mut client_config = ClientConfig::new(server, config.data_dir.clone());
    client_config.trust_new_servers = false;
    client_config.min_kdf = config.min_kdf;
    let (client, events) = match Client::connect(client_config).await {
        Ok(connected) => connected,
        Err(err) => {
            out.send(form_error(server, form, err));
            return Started::Failed;
        }
    };
    match act(&client).await {
        Ok(()) => match go_live(out, form, client, events).await {
            Some(live) => Started::Live(live),
            None => Started::Failed,
        },
        Err(ClientError::KeyLost) => {
            out.send(Update::KeyLost);
            Started::KeyLost((client, events))
        }
        Err(err) => {
            out.send(form_error(server, form, err));
            Started::Failed
        }
    }
}

/// Reports a logged-in session and starts passing on its events.
async fn go_live(
    out: &Out,
    form: Form,
    client: Client,
    mut events: mpsc::UnboundedReceiver<ClientEvent>,
) -> Option<Live> {
    match session(&client).await {
        Ok(session) => out.send(Update::LoggedIn(Box::new(session))),
        Err(err) => {
            out.send(form_error("", form, err));
            return None;
        }
    }
    let (events_out, events_client) = (out.clone(), client.clone());
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = &mut stopped => None,
            };
            let Some(event) = event else { break };
            let contacts_changed = matches!(
                event,
                ClientEvent::Presence { .. }
                    | ClientEvent::FriendRequest(_)
                    | ClientEvent::FriendAdded(_)
                    | ClientEvent::FriendRemoved(_)
                    | ClientEvent::Reconnected
            );
            events_out.send(Update::Event(event));
            if contacts_changed && let Some(contacts) = events_client.contacts() {
                events_out.send(Update::Contacts(contacts));
            }
        }
    });
    Some(Live {
        client,
        _stop: stop,
    })
}

fn form_error(server: &str, form: Form, err: ClientError) -> Update {
    if let ClientError::UnknownServer { fingerprint } = err {
        return Update::UnknownServer {
            server: server.to_owned(),
            fingerprint,
        };
    }
    if let Some((pinned, presented)) = err.changed_server_key() {
        return Update::ServerKeyChanged {
            server: server.to_owned(),
            pinned,
            presented,
        };
    }
    let (code, fields) = match &err {
        ClientError::Server(server_error) => (
            Some(server_error.code),
            server_error
                .fields
                .iter()
                .map(|f| (f.field, f.message.clone()))
                .collect(),
        ),
        _ => (None, Vec::new()),
    };
    Update::FormFailed {
        form,
        code,
        message: err.to_string(),
        fields,
    }
}

/// What the contact list needs right after login: unread counts and the newest message of
/// every conversation, from the local store (which login has just synced).
async fn session(client: &Client) -> Result<Session, ClientError> {
    let contacts = client
        .contacts()
        .ok_or_else(|| ClientError::Invalid("logged in without contacts".into()))?;
    let mut conversations = Vec::new();
    let ids = contacts
        .friends
        .iter()
        .map(|f| f.conversation)
        .chain(contacts.rooms.iter().map(|r| r.conversation));
    for conversation in ids {
        let unread = client.unread(conversation).await?;
        let last = client.last_local_message(conversation).await?;
        conversations.push((conversation, unread, last));
    }
    Ok(Session {
        contacts,
        conversations,
    })
}

/// Runs one command of a logged-in session.
async fn run(client: Client, config: NetConfig, out: Out, command: Command) {
    let contacts = |out: &Out| {
        if let Some(contacts) = client.contacts() {
            out.send(Update::Contacts(contacts));
        }
    };
    match command {
        Command::Search(query) => match client.search(&query).await {
            Ok(users) => out.send(Update::Found(users)),
            Err(err) => out.failed(&err),
        },
        Command::AddFriend(user) => match client.add_friend(user).await {
            Ok(Some(_)) => contacts(&out),
            Ok(None) => {
                let name = user.to_string();
                out.send(Update::Notice(Notice::RequestSent(name)));
            }
            Err(err) => out.failed(&err),
        },
        Command::Resolve(user, decision) => {
            match client.resolve_friend_request(user, decision).await {
                Ok(_) => contacts(&out),
                Err(err) => out.failed(&err),
            }
        }
        Command::DeleteFriend(user) => match client.delete_friend(user).await {
            Ok(()) => contacts(&out),
            Err(err) => out.failed(&err),
        },
        Command::CreateRoom(name) => room(&client, &out, client.create_room(&name).await),
        Command::JoinRoom(id) => room(&client, &out, client.join_room(id).await),
        Command::History(conversation, before) => {
            match client.history(conversation, before, HISTORY_PAGE).await {
                Ok(messages) => out.send(Update::History {
                    conversation,
                    messages,
                }),
                Err(err) => out.failed(&err),
            }
        }
        Command::MarkRead(conversation, seq) => {
            if let Err(err) = client.mark_read(conversation, seq).await {
                tracing::debug!(%err, "read mark not sent; the next one carries it");
            }
        }
        Command::Send(conversation, id, body) => {
            let result = client.send_with_id(conversation, id, body.clone()).await;
            out.send(sent(conversation, id, body, &client, result));
        }
        Command::SendFile(conversation, path) => {
            files::send_file(&client, &out, conversation, &path).await
        }
        Command::LoadImage(key, _format, content) => {
            let result = files::load_image(&client, &content).await.map(Arc::new);
            out.send(Update::Image(key, result));
        }
        Command::Save(name, content) => files::save(&client, &config, &out, &name, &content).await,
        Command::SafetyNumber(user) => match client.safety_number(user).await {
            Ok(number) => out.send(Update::SafetyNumber(user, number)),
            Err(err) => out.failed(&err),
        },
        Command::Members(room) => match client.room_members(room).await {
            Ok(members) => out.send(Update::Members(room, members)),
            Err(err) => out.failed(&err),
        },
        Command::ChangePassword { current, new } => {
            let result = client.change_password(&current, &new).await;
            out.send(Update::PasswordChange(
                result.map_err(|err| (err.code(), err.to_string())),
            ));
        }
        Command::Trust { .. }
        | Command::Login { .. }
        | Command::Register { .. }
        | Command::Remember(_)
        | Command::ListFolder(_)
        | Command::StartOver
        | Command::Logout => {}
    }
}

fn room(client: &Client, out: &Out, result: Result<protocol::message::Room, ClientError>) {
    match result {
        Ok(room) => {
            // The list first, so the group is there when the notice names it.
            if let Some(contacts) = client.contacts() {
                out.send(Update::Contacts(contacts));
            }
            out.send(Update::Notice(Notice::RoomReady(room.name, room.id)));
        }
        Err(err) => out.failed(&err),
    }
}

pub(super) fn sent(
    conversation: ConversationId,
    id: ClientMsgId,
    body: Body,
    client: &Client,
    result: Result<Seq, ClientError>,
) -> Update {
    let result = match result {
        Ok(seq) => Ok(LocalMessage {
            conversation,
            seq,
            sender: client.me().map_or(UserId(0), |me| me.id),
            client_msg_id: id,
            sent_at: protocol::Timestamp::now(),
            body,
        }),
        Err(err) => Err((err.to_string(), err.is_transient())),
    };
    Update::Sent {
        conversation,
        id,
        result,
    }
}
