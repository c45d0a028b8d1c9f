//! The whole user interface as plain data, changed by [`State::apply`] for what the network
//! side reports and by the app for what the person does. Views read it; the only things they
//! write are the edit buffers of their own forms and measured row heights.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use client_core::{ClientEvent, Contacts, LocalMessage};
use protocol::e2e::Body;
use protocol::message::{ErrorCode, Field, Friend, LoginBundle, Presence, Room, UserSummary};
use protocol::{ClientMsgId, ConversationId, Fingerprint, Seq, Timestamp, UserId};

use crate::i18n::{Lang, T};

mod chat;
mod forms;

use crate::net::{Form, ImageKey, Notice, Pixels, Session, Update};
pub use chat::{Chat, Delivery, LINE_HEIGHT_GUESS, Line};
pub use forms::{LoginForm, MainForm, PasswordForm, RegisterForm};

/// Which screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// Server, username, password.
    #[default]
    Login,
    /// The registration form.
    Register,
    /// Contacts and chat.
    Main,
    /// Signed in elsewhere.
    Kicked,
    /// Logged in, but the private key cannot be found or restored: start over, or go back.
    KeyLost,
}

/// The connection as the status bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    /// No session.
    #[default]
    Offline,
    /// Logged in and connected.
    Online,
    /// Lost; client-core is reconnecting.
    Reconnecting,
}

/// What the server's key looks like to us, when it needs the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustPrompt {
    /// A server never seen: accept its fingerprint?
    Unknown {
        /// `host:port`.
        server: String,
        /// Its fingerprint.
        fingerprint: Fingerprint,
    },
    /// The key changed: a full-screen warning.
    Changed {
        /// `host:port`.
        server: String,
        /// Accepted before.
        pinned: Fingerprint,
        /// Presented now.
        presented: Fingerprint,
    },
}

/// A contact list row: a friend or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// A friend.
    Friend(Friend),
    /// A group.
    Room(Room),
}

impl Contact {
    /// Its conversation.
    pub fn conversation(&self) -> ConversationId {
        match self {
            Self::Friend(f) => f.conversation,
            Self::Room(r) => r.conversation,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Self::Friend(f) => &f.user.username,
            Self::Room(r) => &r.name,
        }
    }

    /// When its last message was sent, if ever.
    pub fn last_message_at(&self) -> Option<Timestamp> {
        match self {
            Self::Friend(f) => f.last_message_at,
            Self::Room(r) => r.last_message_at,
        }
    }

    fn online(&self) -> bool {
        matches!(self, Self::Friend(f) if matches!(f.presence, Presence::Online(_)))
    }
}

/// A file on its way up or down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The file's name.
    pub name: String,
    /// Bytes done.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// An image's place in the texture cache.
#[derive(Clone)]
pub enum ImageSlot {
    /// Asked for.
    Loading,
    /// Decoded, waiting for the UI thread to make a texture.
    Pixels(Arc<Pixels>),
    /// Ready to draw.
    Ready(egui::TextureHandle),
    /// Could not be shown.
    Failed(String),
}

/// Everything the interface shows.
#[derive(Default)]
pub struct State {
    /// The language.
    pub lang: Lang,
    /// The screen.
    pub screen: Screen,
    /// The connection.
    pub link: Link,
    /// The server logged in to.
    pub server: String,
    /// A fingerprint to accept, or a changed key to warn about.
    pub trust: Option<TrustPrompt>,
    /// The login form.
    pub login: LoginForm,
    /// The registration form.
    pub register: RegisterForm,
    /// The main window's inputs.
    pub main: MainForm,
    /// Who is logged in.
    pub me: Option<UserSummary>,
    /// Friends, groups and requests.
    pub contacts: Option<Contacts>,
    /// The contact list in display order (F6), kept in step with `contacts` and `chats`.
    pub order: Vec<Contact>,
    /// Chats by conversation.
    pub chats: HashMap<ConversationId, Chat>,
    /// The open chat.
    pub open: Option<ConversationId>,
    /// Friends whose key changed this session.
    pub key_changed: HashSet<UserId>,
    /// Safety numbers asked for.
    pub safety: HashMap<UserId, String>,
    /// Transfers under way.
    pub transfers: Vec<Transfer>,
    /// Images by message.
    pub images: HashMap<ImageKey, ImageSlot>,
    /// The last notice.
    pub notice: Option<Notice>,
    /// Why the session was ended, on the kicked screen.
    pub kicked: Option<String>,
    /// Names of users met (friends, requests, group members, search results), by id.
    pub people: HashMap<UserId, String>,
    /// Set when no CJK font could be loaded.
    pub missing_cjk_font: bool,
}

impl State {
    /// A string in the chosen language.
    pub fn t(&self, text: T) -> &'static str {
        text.get(self.lang)
    }

    /// Follows one update from the network side.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::UnknownServer {
                server,
                fingerprint,
            } => {
                self.idle_forms();
                self.trust = Some(TrustPrompt::Unknown {
                    server,
                    fingerprint,
                });
            }
            Update::ServerKeyChanged {
                server,
                pinned,
                presented,
            } => {
                self.idle_forms();
                self.trust = Some(TrustPrompt::Changed {
                    server,
                    pinned,
                    presented,
                });
            }
            Update::FormFailed {
                form,
                code,
                message,
                fields,
            } => self.form_failed(form, code, message, fields),
            Update::LoggedIn(session) => self.logged_in(*session),
            Update::KeyLost => {
                self.idle_forms();
                self.screen = Screen::KeyLost;
            }
            Update::PasswordChange(result) => match result {
                Ok(()) => {
                    self.main.password = None;
                    self.notice = Some(crate::net::Notice::PasswordChanged);
                }
                Err((code, message)) => {
                    let message = match code {
                        Some(ErrorCode::BadCredentials) => self.t(T::WrongCurrentPassword).into(),
                        _ => message,
                    };
                    if let Some(form) = &mut self.main.password {
                        form.busy = false;
                        form.error = Some(message);
                    }
                }
            },
            Update::Event(event) => self.event(event),
            Update::Contacts(bundle) => self.set_contacts(bundle),
            Update::Found(users) => {
                self.meet(&users);
                self.main.results = Some(users);
            }
            Update::Members(_, members) => self.meet(&members),
            Update::History {
                conversation,
                messages,
            } => {
                let chat = self.chats.entry(conversation).or_default();
                chat.loading = false;
                let page_full = messages.len() >= crate::net::HISTORY_PAGE as usize;
                if !page_full || messages.first().is_some_and(|m| m.seq.0 <= 1) {
                    chat.complete = true;
                }
                for message in messages {
                    chat.insert_stored(message);
                }
            }
            Update::Sent {
                conversation,
                id,
                result,
            } => self.sent(conversation, id, result),
            Update::Progress {
                name,
                done,
                total,
                finished,
            } => {
                self.transfers.retain(|t| t.name != name);
                if !finished {
                    self.transfers.push(Transfer { name, done, total });
                }
            }
            Update::Image(key, result) => {
                let slot = match result {
                    Ok(pixels) => ImageSlot::Pixels(pixels),
                    Err(err) => ImageSlot::Failed(err),
                };
                self.images.insert(key, slot);
            }
            Update::Folder(folder, entries) => {
                if self.main.chooser.as_ref() == Some(&folder) {
                    self.main.entries = entries;
                }
            }
            Update::SafetyNumber(user, number) => {
                self.safety.insert(user, number);
            }
            Update::Notice(notice) => self.notice = Some(notice),
        }
    }

    fn idle_forms(&mut self) {
        self.login.busy = false;
        self.register.busy = false;
    }

    fn form_failed(
        &mut self,
        form: Form,
        code: Option<ErrorCode>,
        message: String,
        fields: Vec<(Field, String)>,
    ) {
        self.idle_forms();
        match form {
            Form::Login => {
                self.login.error = Some(match code {
                    Some(ErrorCode::BadCredentials) => self.t(T::BadCredentials).to_owned(),
                    _ => message,
                });
            }
            Form::Register => {
                let form = &mut self.register;
                form.server_errors.clear();
                match code {
                    Some(ErrorCode::UsernameTaken) => {
                        let text = T::UsernameTaken.get(self.lang).to_owned();
                        form.server_errors
                            .insert(crate::rules::Input::Username, text);
                    }
                    Some(ErrorCode::EmailTaken) => {
                        let text = T::EmailTaken.get(self.lang).to_owned();
                        form.server_errors.insert(crate::rules::Input::Email, text);
                    }
                    _ if !fields.is_empty() => form
                        .server_errors
                        .extend(fields.into_iter().map(|(f, m)| (f.into(), m))),
                    _ => form.error = Some(message),
                }
            }
        }
    }

    fn logged_in(&mut self, session: Session) {
        self.idle_forms();
        self.login.password.clear();
        self.register = RegisterForm::default();
        self.trust = None;
        self.screen = Screen::Main;
        self.link = Link::Online;
        self.server = self.login.server.clone();
        self.me = Some(session.contacts.me.clone());
        self.chats.clear();
        self.open = None;
        for (conversation, unread, last) in session.conversations {
            let chat = self.chats.entry(conversation).or_default();
            chat.unread = unread;
            chat.last = last.map(|m| (m.sender, m.body));
        }
        self.set_contacts(session.contacts);
    }

    fn set_contacts(&mut self, bundle: LoginBundle) {
        if let Some(open) = self.open {
            let still_there = bundle.friends.iter().any(|f| f.conversation == open)
                || bundle.rooms.iter().any(|r| r.conversation == open);
            if !still_there {
                self.open = None;
            }
        }
        let known: Vec<UserSummary> = bundle
            .friends
            .iter()
            .map(|f| f.user.clone())
            .chain(bundle.pending_requests.iter().cloned())
            .chain([bundle.me.clone()])
            .collect();
        self.meet(&known);
        self.contacts = Some(Contacts::new(bundle));
        self.reorder();
    }

    /// Sorts the contact list: newest last message first; among those without messages,
    /// online ones first; then by name (F6).
    fn reorder(&mut self) {
        let Some(bundle) = self.contacts.as_ref().map(Contacts::bundle) else {
            self.order.clear();
            return;
        };
        let mut order: Vec<Contact> = bundle
            .friends
            .iter()
            .cloned()
            .map(Contact::Friend)
            .chain(bundle.rooms.iter().cloned().map(Contact::Room))
            .collect();
        order.sort_by(|a, b| {
            b.last_message_at()
                .cmp(&a.last_message_at())
                .then(b.online().cmp(&a.online()))
                .then_with(|| a.name().cmp(b.name()))
        });
        self.order = order;
    }

    fn touch(&mut self, conversation: ConversationId, at: Timestamp) {
        if let Some(contacts) = &mut self.contacts {
            contacts.touch(conversation, at);
            self.reorder();
        }
    }

    fn event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Message(message) => self.message(message),
            ClientEvent::Sent {
                conversation,
                seq,
                client_msg_id,
            } => {
                let chat = self.chats.entry(conversation).or_default();
                if let Some(line) = chat.lines.iter_mut().find(|l| l.id == client_msg_id) {
                    let mut line = line.clone();
                    line.seq = Some(seq);
                    line.delivery = Delivery::Stored;
                    chat.lines.retain(|l| l.id != client_msg_id);
                    let at = chat
                        .lines
                        .partition_point(|l| l.seq.is_some_and(|s| s < seq));
                    chat.lines.insert(at, line);
                }
            }
            ClientEvent::KeyChanged { user } => {
                self.key_changed.insert(user);
                self.safety.remove(&user);
            }
            ClientEvent::Kicked { reason } => {
                self.screen = Screen::Kicked;
                self.link = Link::Offline;
                self.kicked = Some(reason);
            }
            ClientEvent::Disconnected => self.link = Link::Reconnecting,
            ClientEvent::Reconnected => {
                self.link = Link::Online;
                for chat in self.chats.values_mut() {
                    for line in chat.lines.iter_mut() {
                        if line.delivery == Delivery::Queued {
                            line.delivery = Delivery::Sending;
                        }
                    }
                }
            }
            ClientEvent::RoomMemberJoined { member, .. } => self.meet(&[member]),
            // The contacts follow these through `Update::Contacts`.
            ClientEvent::Presence { .. }
            | ClientEvent::FriendRequest(_)
            | ClientEvent::FriendAdded(_)
            | ClientEvent::FriendRemoved(_) => {}
        }
    }

    fn message(&mut self, message: LocalMessage) {
        let mine = self.me.as_ref().is_some_and(|me| me.id == message.sender);
        let conversation = message.conversation;
        let at = message.sent_at;
        let is_open = self.open == Some(conversation);
        let chat = self.chats.entry(conversation).or_default();
        chat.last = Some((message.sender, message.body.clone()));
        if !mine {
            chat.unread += 1;
            if is_open {
                chat.unseen_below += 1;
            }
        }
        if chat.opened {
            chat.insert_stored(message);
        }
        self.touch(conversation, at);
    }

    fn sent(
        &mut self,
        conversation: ConversationId,
        id: ClientMsgId,
        result: Result<LocalMessage, (String, bool)>,
    ) {
        let chat = self.chats.entry(conversation).or_default();
        match result {
            Ok(message) => {
                let at = message.sent_at;
                chat.last = Some((message.sender, message.body.clone()));
                chat.insert_stored(message);
                self.touch(conversation, at);
            }
            Err((error, transient)) => {
                if let Some(line) = chat.lines.iter_mut().find(|l| l.id == id) {
                    line.delivery = if transient {
                        Delivery::Queued
                    } else {
                        Delivery::Failed(error)
                    };
                }
            }
        }
    }

    /// Adds a message of mine as "sending", before the server has it.
    pub fn sending(&mut self, conversation: ConversationId, id: ClientMsgId, body: Body) {
        let sender = self.me.as_ref().map_or(UserId(0), |me| me.id);
        let chat = self.chats.entry(conversation).or_default();
        if let Some(line) = chat.lines.iter_mut().find(|l| l.id == id) {
            line.delivery = Delivery::Sending;
            return;
        }
        chat.lines.push(Line {
            seq: None,
            id,
            sender,
            sent_at: Timestamp::now(),
            body,
            delivery: Delivery::Sending,
            height: LINE_HEIGHT_GUESS,
        });
    }

    /// Opens a chat; returns whether its first page must be fetched.
    pub fn open_chat(&mut self, conversation: ConversationId) -> bool {
        self.open = Some(conversation);
        self.main.confirm_delete = None;
        let chat = self.chats.entry(conversation).or_default();
        chat.unseen_below = 0;
        let first = !chat.opened;
        if first {
            chat.opened = true;
            chat.loading = true;
        }
        first
    }

    /// The open chat's read mark to send, if it has unread messages (it is then counted read).
    pub fn read_due(&mut self) -> Option<(ConversationId, Seq)> {
        let open = self.open?;
        let chat = self.chats.get_mut(&open)?;
        if chat.unread == 0 {
            return None;
        }
        let seq = chat.max_seq()?;
        chat.unread = 0;
        Some((open, seq))
    }

    /// All unread messages, for the window title.
    pub fn total_unread(&self) -> u64 {
        self.chats.values().map(|c| c.unread).sum()
    }

    fn meet(&mut self, users: &[UserSummary]) {
        for user in users {
            self.people.insert(user.id, user.username.clone());
        }
    }

    /// The name of a user met so far, or their number.
    pub fn name_of(&self, user: UserId) -> String {
        self.people
            .get(&user)
            .cloned()
            .unwrap_or_else(|| format!("#{user}"))
    }

    /// The contact whose conversation this is.
    pub fn contact(&self, conversation: ConversationId) -> Option<&Contact> {
        self.order.iter().find(|c| c.conversation() == conversation)
    }
}

#[cfg(test)]
mod tests;
