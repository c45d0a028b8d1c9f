//! Drives the real client UI through its accessibility labels against a real server
//! (`e2e::TestCluster`), waiting for conditions rather than sleeping, and counting clicks.

#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::i18n::Lang;
use client::{App, Options};
use client_core::ClientEvent;
use e2e::TestCluster;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Longest a test waits for the UI to reach a state.
pub const WAIT: Duration = Duration::from_secs(30);

/// The password every UI test user gets.
pub const PASSWORD: &str = "correct horse";

/// A person at a desktop client, registered and logged in as `name`.
pub fn registered(cluster: &TestCluster, name: &str) -> Person {
    let mut person = Person::new(cluster, name);
    person.register(name);
    person
}

/// A user of a headless client who asks `person` to be friends; `person` accepts in the UI.
/// Returns the user once their client has the friendship.
pub fn friend_of(
    rt: &tokio::runtime::Runtime,
    cluster: &TestCluster,
    person: &mut Person,
    name: &str,
) -> e2e::TestClient {
    let me = person.app().state.me.as_ref().map(|m| m.id).unwrap();
    let mut friend = rt.block_on(cluster.user(name));
    rt.block_on(friend.client.add_friend(me)).unwrap();
    person.wait("the request", |p| {
        p.sees(&format!("{name} wants to be your friend"))
    });
    person.click("Accept");
    let added = |e: &ClientEvent| matches!(e, ClientEvent::FriendAdded(_)).then_some(());
    rt.block_on(friend.wait_for("the friendship", added));
    person.wait("the friend in the contacts", |p| {
        p.app()
            .state
            .contacts
            .as_ref()
            .is_some_and(|c| c.bundle().friends.iter().any(|f| f.user.username == name))
    });
    friend
}

/// The one-to-one conversation of `person` with `name`.
pub fn conversation_with(person: &Person, name: &str) -> protocol::ConversationId {
    let contacts = person.app().state.contacts.as_ref().unwrap();
    let friend = contacts
        .bundle()
        .friends
        .iter()
        .find(|f| f.user.username == name);
    friend.unwrap().conversation
}

/// A person at a desktop client.
pub struct Person {
    /// The UI.
    pub h: Harness<'static, App>,
    /// Clicks made since the count was last reset.
    pub clicks: usize,
    /// The client's data folder.
    pub dir: PathBuf,
    /// Where the client saves files.
    pub downloads: PathBuf,
}

/// The tokio runtime the cluster runs on while the test drives the UI from its own thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Person {
    /// A client with its own folder under the cluster's.
    pub fn new(cluster: &TestCluster, name: &str) -> Self {
        Self::with(cluster, name, |_| {})
    }

    /// Like [`Person::new`], with the options changed first.
    pub fn with(cluster: &TestCluster, name: &str, change: impl FnOnce(&mut Options)) -> Self {
        let dir = cluster.dir.path().join(format!("ui-{name}"));
        let downloads = dir.join("Downloads");
        let cjk_font = client::fonts::find();
        let mut options = Options {
            server: cluster.addr(),
            data_dir: dir.clone(),
            downloads: downloads.clone(),
            lang: Lang::En,
            username: String::new(),
            cjk_font: cjk_font.clone(),
            min_kdf: e2e::TEST_KDF,
        };
        change(&mut options);
        let app = App::new(options).unwrap();
        let mut builder = Harness::builder().with_size([1200.0, 860.0]);
        if cjk_font.is_none() {
            // Without a CJK font the language switch's "中文" has no glyphs; the Chinese test
            // says so and fails in CI, where the font is installed.
            builder = builder.allow_missing_glyphs();
        }
        let h = builder.build_ui_state(|ui, app: &mut App| app.show(ui), app);
        let mut person = Self {
            h,
            clicks: 0,
            dir,
            downloads,
        };
        person.h.step();
        person
    }

    /// The app.
    pub fn app(&self) -> &App {
        self.h.state()
    }

    /// The app, to clear a field before typing into it again.
    pub fn app_mut(&mut self) -> &mut App {
        self.h.state_mut()
    }

    /// Clicks the button labelled `label`.
    #[track_caller]
    pub fn click(&mut self, label: &str) {
        let button = self.h.get_all_by_role_and_label(Role::Button, label).next();
        button
            .unwrap_or_else(|| panic!("no button labelled {label:?}"))
            .click();
        self.clicks += 1;
        self.h.step();
        self.h.step();
    }

    /// Types `text` into the field labelled `label`.
    #[track_caller]
    pub fn type_into(&mut self, label: &str, text: &str) {
        self.h.get_by_label(label).focus();
        self.h.step();
        self.h.get_by_label(label).type_text(text);
        // One frame takes the text, the next shows what the views derive from it.
        self.h.step();
        self.h.step();
    }

    /// Presses a key.
    pub fn press(&mut self, key: egui::Key) {
        self.h.key_press(key);
        self.h.step();
    }

    /// Whether something labelled `label` shows.
    pub fn sees(&self, label: &str) -> bool {
        self.h.query_all_by_label(label).next().is_some()
    }

    /// Whether something whose label contains `text` shows.
    pub fn sees_text(&self, text: &str) -> bool {
        self.h.query_all_by_label_contains(text).next().is_some()
    }

    /// Whether a button labelled `label` shows.
    pub fn sees_button(&self, label: &str) -> bool {
        self.h
            .query_by_role_and_label(Role::Button, label)
            .is_some()
    }

    /// Steps the UI until `done` holds, waiting for the network side between frames.
    #[track_caller]
    pub fn wait(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.h.step();
            if done(self) {
                return;
            }
            if Instant::now() >= deadline {
                let state = &self.app().state;
                panic!(
                    "timed out waiting for {what} (screen {:?}, login error {:?}, register \
                     error {:?}, notice {:?})",
                    state.screen, state.login.error, state.register.error, state.notice
                );
            }
            self.h.state_mut().wait_update(Duration::from_millis(100));
        }
    }

    /// Accepts the server's fingerprint when the first-contact prompt shows.
    pub fn accept_server(&mut self) {
        self.wait("the fingerprint prompt", |p| {
            p.sees_button("Accept and continue")
        });
        self.click("Accept and continue");
    }

    /// Registers `name` through the form (accepting the server on first contact) and waits
    /// for the contact list. Returns the clicks the form took, without the one-time trust.
    pub fn register(&mut self, name: &str) -> usize {
        self.clicks = 0;
        self.click("Register");
        self.fill_registration(name, &format!("{name}@example.com"));
        self.click("Create account");
        let clicks = self.clicks;
        if !self.known_server() {
            self.accept_server();
        }
        self.wait("the main window", |p| p.sees("Log out"));
        clicks
    }

    /// Fills every field of the registration form validly, with `email`.
    pub fn fill_registration(&mut self, name: &str, email: &str) {
        self.type_into("Username", name);
        self.type_into("Password", PASSWORD);
        self.type_into("Repeat password", PASSWORD);
        self.type_into("Email", email);
        self.type_into("Age", "30");
    }

    /// Logs in as `name` from the login form; returns the clicks it took.
    pub fn login(&mut self, name: &str) -> usize {
        self.clicks = 0;
        let form = &mut self.h.state_mut().state.login;
        form.username.clear();
        form.password.clear();
        self.type_into("Username", name);
        self.type_into("Password", PASSWORD);
        self.click("Log in");
        let clicks = self.clicks;
        if !self.known_server() {
            self.accept_server();
        }
        self.wait("the main window", |p| p.sees("Log out"));
        clicks
    }

    fn known_server(&mut self) -> bool {
        self.wait("an answer from the server", |p| {
            p.sees("Log out")
                || p.sees_button("Accept and continue")
                || p.app().state.login.error.is_some()
        });
        !self.sees_button("Accept and continue")
    }

    /// Drops a file onto the window.
    pub fn drop_file(&mut self, path: &Path) {
        self.h
            .input_mut()
            .dropped_files
            .push(Arc::new(Dropped(path.to_owned())));
        self.h.step();
    }
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}
