//! The application: drains the network side's updates into the [`State`], draws the screen
//! for it, and carries out what the views return. Runs on the UI thread; every request that
//! touches the network or the disk goes to [`Net`] as a [`Command`].

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use egui::Ui;
use protocol::e2e::Body;
use protocol::{ClientMsgId, RoomId};

use crate::fonts::CjkFont;
use crate::i18n::{Lang, T, fill};
use crate::net::{Command, Net, NetConfig};
use crate::rules;
use crate::settings::Settings;
use crate::state::{ImageSlot, Screen, State, TrustPrompt};
use crate::views::{self, Action};

/// Where the client starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server to offer on the login form.
    pub server: String,
    /// The client's data folder.
    pub data_dir: PathBuf,
    /// Where received files are saved.
    pub downloads: PathBuf,
    /// The interface language.
    pub lang: Lang,
    /// The username to offer.
    pub username: String,
    /// A CJK font, if one was found.
    pub cjk_font: Option<CjkFont>,
    /// The least password stretch accepted from a server
    /// ([`protocol::password::MIN_KDF`]; tests lower it to match their server).
    pub min_kdf: protocol::password::KdfCost,
}

/// The desktop client.
pub struct App {
    /// Everything shown.
    pub state: State,
    net: Net,
    /// The context the network side wakes, set on the first frame.
    ctx: Arc<OnceLock<egui::Context>>,
    /// The CJK font, until the first frame installs it.
    font: Option<CjkFont>,
    data_dir: PathBuf,
    title: String,
}

/// The composer's font size until the person picks another.
pub const DEFAULT_FONT_SIZE: u8 = 14;

/// The folder the file chooser opens at: the home folder, or the current one.
pub fn start_folder() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("."))
}

impl App {
    /// Starts the network side. The fonts are installed, and the network side learns how to
    /// wake the window, on the first frame.
    pub fn new(options: Options) -> std::io::Result<Self> {
        let ctx: Arc<OnceLock<egui::Context>> = Arc::default();
        let wake = ctx.clone();
        let net = Net::start(NetConfig {
            data_dir: options.data_dir.clone(),
            downloads: options.downloads,
            min_kdf: options.min_kdf,
            repaint: Arc::new(move || {
                if let Some(ctx) = wake.get() {
                    ctx.request_repaint();
                }
            }),
        })?;
        let mut state = State {
            lang: options.lang,
            missing_cjk_font: options.cjk_font.is_none(),
            ..State::default()
        };
        state.login.server = options.server;
        state.login.username = options.username;
        state.main.font_size = DEFAULT_FONT_SIZE;
        Ok(Self {
            state,
            net,
            ctx,
            font: options.cjk_font,
            data_dir: options.data_dir,
            title: String::new(),
        })
    }

    /// Applies every update that has arrived.
    pub fn drain(&mut self) {
        while let Some(update) = self.net.try_recv() {
            self.state.apply(update);
        }
    }

    /// Waits up to `limit` for one update and applies it (tests wait for conditions this
    /// way instead of sleeping).
    pub fn wait_update(&mut self, limit: std::time::Duration) -> bool {
        match self.net.recv_timeout(limit) {
            Some(update) => {
                self.state.apply(update);
                true
            }
            None => false,
        }
    }

    /// Draws one frame.
    pub fn show(&mut self, ui: &mut Ui) {
        if self.ctx.get().is_none() {
            crate::theme::apply(ui.ctx());
            let _ = self.ctx.set(ui.ctx().clone());
        }
        if let Some(font) = self.font.take() {
            crate::fonts::install(ui.ctx(), &font);
        }
        self.drain();
        self.make_textures(ui.ctx());
        if let Some((conversation, seq)) = self.state.read_due() {
            self.net.send(Command::MarkRead(conversation, seq));
        }
        self.set_title(ui.ctx());
        let mut actions = Vec::new();
        egui::Panel::bottom("status").show(ui, |ui| {
            actions.extend(views::status::show(ui, &self.state));
        });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            actions.extend(self.screen(ui));
        });
        if self.state.screen == Screen::Main {
            self.dropped_files(ui.ctx(), &mut actions);
        }
        for action in actions {
            self.handle(action);
        }
    }

    fn screen(&mut self, ui: &mut Ui) -> Vec<Action> {
        if let Some(prompt) = self.state.trust.clone() {
            let state = &self.state;
            return crate::theme::centred_form(ui, |ui| views::trust::show(ui, state, &prompt));
        }
        match self.state.screen {
            Screen::Login => {
                crate::theme::centred_form(ui, |ui| views::login::show(ui, &mut self.state))
            }
            Screen::Register => {
                crate::theme::centred_form(ui, |ui| views::register::show(ui, &mut self.state))
            }
            Screen::Kicked => views::kicked::show(ui, &self.state),
            Screen::KeyLost => views::key_lost::show(ui, &self.state),
            Screen::Main => {
                let mut actions = Vec::new();
                egui::Panel::left("contacts")
                    .default_size(340.0)
                    .show(ui, |ui| {
                        actions.extend(views::contacts::show(ui, &mut self.state))
                    });
                egui::CentralPanel::default_margins().show(ui, |ui| match self.state.open {
                    Some(open) => actions.extend(views::chat::show(ui, &mut self.state, open)),
                    None => {
                        ui.centered_and_justified(|ui| ui.label(self.state.t(T::ChooseChat)));
                    }
                });
                actions
            }
        }
    }

    /// Turns decoded images into textures (the one step that must happen on the UI thread).
    fn make_textures(&mut self, ctx: &egui::Context) {
        for (key, slot) in self.state.images.iter_mut() {
            if let ImageSlot::Pixels(pixels) = slot {
                let image = egui::ColorImage::from_rgba_unmultiplied(pixels.size, &pixels.rgba);
                let name = format!("image-{}-{}", key.0, hex_id(key.1));
                *slot = ImageSlot::Ready(ctx.load_texture(name, image, Default::default()));
            }
        }
    }

    fn set_title(&mut self, ctx: &egui::Context) {
        let unread = self.state.total_unread();
        let title = if unread == 0 {
            self.state.t(T::AppName).to_owned()
        } else {
            fill(self.state.t(T::TitleUnread), &[&unread.to_string()])
        };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    /// The window's title as last set.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn dropped_files(&self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if self.state.open.is_none() {
            return;
        }
        for file in dropped {
            actions.push(Action::SendFile(file.path().to_owned()));
        }
    }

    /// Carries out one action.
    pub fn handle(&mut self, action: Action) {
        let state = &mut self.state;
        match action {
            Action::SetLang(lang) => {
                state.lang = lang;
                self.remember();
            }
            Action::ShowRegister => {
                state.register.username = state.login.username.clone();
                state.screen = Screen::Register;
            }
            Action::ShowLogin => {
                state.screen = Screen::Login;
                state.kicked = None;
            }
            Action::LogIn => {
                state.login.error = None;
                state.login.busy = true;
                self.net.send(Command::Login {
                    server: state.login.server.trim().to_owned(),
                    username: state.login.username.trim().to_owned(),
                    password: state.login.password.clone(),
                });
                self.remember();
            }
            Action::Register => self.register(),
            Action::TrustServer => {
                if let Some(TrustPrompt::Unknown {
                    server,
                    fingerprint,
                }) = state.trust.take()
                {
                    self.net.send(Command::Trust {
                        server,
                        fingerprint,
                    });
                    // Carry on with what the person was doing.
                    let retry = match state.screen {
                        Screen::Register => Action::Register,
                        _ => Action::LogIn,
                    };
                    self.handle(retry);
                }
            }
            Action::DismissTrust => state.trust = None,
            Action::Search => {
                let query = state.main.query.trim().to_owned();
                if !query.is_empty() {
                    self.net.send(Command::Search(query));
                }
            }
            Action::AddFriend(user) => {
                state.main.results = None;
                state.main.query.clear();
                self.net.send(Command::AddFriend(user));
            }
            Action::Resolve(user, decision) => self.net.send(Command::Resolve(user, decision)),
            Action::AskDelete(user) => state.main.confirm_delete = Some(user),
            Action::CancelDelete => state.main.confirm_delete = None,
            Action::Delete(user) => {
                state.main.confirm_delete = None;
                self.net.send(Command::DeleteFriend(user));
            }
            Action::CreateGroup => {
                let name = state.main.group_name.trim().to_owned();
                if !name.is_empty() {
                    state.main.group_name.clear();
                    self.net.send(Command::CreateRoom(name));
                }
            }
            Action::JoinGroup => match state.main.group_number.trim().parse::<u64>() {
                Ok(number) => {
                    state.main.group_number.clear();
                    self.net.send(Command::JoinRoom(RoomId(number)));
                }
                Err(_) => {
                    let error = state.t(T::GroupNumber).to_owned() + "?";
                    state.notice = Some(crate::net::Notice::Failed(error));
                }
            },
            Action::OpenChat(conversation) => {
                if state.open_chat(conversation) {
                    self.net
                        .send(Command::History(conversation, protocol::Seq(0)));
                }
                if let Some(crate::state::Contact::Room(room)) = state.contact(conversation) {
                    self.net.send(Command::Members(room.id));
                }
            }
            Action::LoadOlder(conversation) => {
                let chat = state.chats.entry(conversation).or_default();
                if let Some(oldest) = chat.lines.iter().find_map(|l| l.seq) {
                    chat.loading = true;
                    self.net.send(Command::History(conversation, oldest));
                }
            }
            Action::SendDraft => {
                let Some(open) = state.open else { return };
                if state.main.draft.trim().is_empty() {
                    return;
                }
                let body = Body::Text(protocol::e2e::StyledText {
                    text: std::mem::take(&mut state.main.draft),
                    font_size: state.main.font_size,
                    color: state.main.color,
                });
                let id = ClientMsgId::random();
                state.sending(open, id, body.clone());
                state.main.scroll_to_bottom = true;
                self.net.send(Command::Send(open, id, body));
            }
            Action::Retry(conversation, id) => {
                let body = state
                    .chats
                    .get(&conversation)
                    .and_then(|c| c.lines.iter().find(|l| l.id == id))
                    .map(|l| l.body.clone());
                if let Some(body) = body {
                    state.sending(conversation, id, body.clone());
                    self.net.send(Command::Send(conversation, id, body));
                }
            }
            Action::Browse(folder) => {
                state.main.entries.clear();
                state.main.chooser = Some(folder.clone());
                self.net.send(Command::ListFolder(folder));
            }
            Action::CloseChooser => state.main.chooser = None,
            Action::SendFile(path) => {
                state.main.chooser = None;
                if let Some(open) = state.open {
                    self.net.send(Command::SendFile(open, path));
                }
            }
            Action::LoadImage(key, format, content) => {
                state.images.insert(key, ImageSlot::Loading);
                self.net.send(Command::LoadImage(key, format, content));
            }
            Action::ViewImage(key, name, content) => {
                state.main.viewer = Some((key, name, content));
            }
            Action::CloseViewer => state.main.viewer = None,
            Action::Save(name, content) => self.net.send(Command::Save(name, content)),
            Action::SafetyNumber(user) => self.net.send(Command::SafetyNumber(user)),
            Action::ScrollToBottom => state.main.scroll_to_bottom = true,
            Action::DismissNotice => state.notice = None,
            Action::StartOver => self.net.send(Command::StartOver),
            Action::OpenPasswordForm => state.main.password = Some(Default::default()),
            Action::ClosePasswordForm => state.main.password = None,
            Action::ChangePassword => {
                if let Some(form) = &mut state.main.password {
                    form.busy = true;
                    form.error = None;
                    self.net.send(Command::ChangePassword {
                        current: form.current.clone(),
                        new: form.new.clone(),
                    });
                }
            }
            Action::LogOut => {
                self.net.send(Command::Logout);
                let lang = state.lang;
                let login = std::mem::take(&mut state.login);
                let missing_cjk_font = state.missing_cjk_font;
                *state = State {
                    lang,
                    missing_cjk_font,
                    ..State::default()
                };
                state.login.server = login.server;
                state.login.username = login.username;
                state.main.font_size = DEFAULT_FONT_SIZE;
            }
        }
    }

    fn register(&mut self) {
        let state = &mut self.state;
        let form = &mut state.register;
        form.error = None;
        if !rules::check(form, true).is_empty() {
            form.error = Some(T::ErrRequired.get(state.lang).to_owned());
            return;
        }
        let Ok(age) = form.age.trim().parse::<u8>() else {
            return;
        };
        form.busy = true;
        state.login.username = form.username.trim().to_owned();
        state.login.password = form.password.clone();
        self.net.send(Command::Register {
            server: state.login.server.trim().to_owned(),
            form: client_core::RegisterForm {
                username: form.username.trim().to_owned(),
                password: form.password.clone(),
                email: form.email.trim().to_owned(),
                sex: form.sex,
                age,
            },
        });
        self.remember();
    }

    fn remember(&self) {
        self.net.send(Command::Remember(Settings {
            server: Some(self.state.login.server.trim().to_owned()),
            username: Some(self.state.login.username.trim().to_owned()).filter(|u| !u.is_empty()),
            lang: Some(self.state.lang),
        }));
    }

    /// The client's data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

fn hex_id(id: ClientMsgId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
