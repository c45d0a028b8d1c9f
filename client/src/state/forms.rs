//! The forms' edit buffers and their errors: login, registration, and the main window's
//! own inputs (search, groups, the draft, the file chooser, the image viewer).

use std::collections::HashMap;

use protocol::UserId;
use protocol::message::UserSummary;

use crate::net::ImageKey;
use crate::rules::Input;

/// The login form.
#[derive(Debug, Clone, Default)]
pub struct LoginForm {
    /// `host:port`.
    pub server: String,
    /// Username.
    pub username: String,
    /// Password (cleared after use).
    pub password: String,
    /// The form's error.
    pub error: Option<String>,
    /// A request is under way.
    pub busy: bool,
}

/// The registration form.
#[derive(Debug, Clone)]
pub struct RegisterForm {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Password again.
    pub repeat: String,
    /// Email.
    pub email: String,
    /// Sex.
    pub sex: protocol::message::Sex,
    /// Age as typed.
    pub age: String,
    /// The server's per-field errors, shown until that field changes.
    pub server_errors: HashMap<Input, String>,
    /// The form's error that belongs to no field.
    pub error: Option<String>,
    /// A request is under way.
    pub busy: bool,
}

impl Default for RegisterForm {
    fn default() -> Self {
        Self {
            username: String::new(),
            password: String::new(),
            repeat: String::new(),
            email: String::new(),
            sex: protocol::message::Sex::Undisclosed,
            age: String::new(),
            server_errors: HashMap::new(),
            error: None,
            busy: false,
        }
    }
}

/// The main window's own inputs.
#[derive(Debug, Clone, Default)]
pub struct MainForm {
    /// The user search box.
    pub query: String,
    /// Its results, once searched.
    pub results: Option<Vec<UserSummary>>,
    /// The new group's name.
    pub group_name: String,
    /// The number of a group to join.
    pub group_number: String,
    /// The message being written.
    pub draft: String,
    /// Its font size.
    pub font_size: u8,
    /// Its colour.
    pub color: [u8; 3],
    /// The friend whose deletion waits for confirmation.
    pub confirm_delete: Option<UserId>,
    /// The in-window file chooser's folder, while it is open.
    pub chooser: Option<std::path::PathBuf>,
    /// What that folder holds: folders first, then files, by name.
    pub entries: Vec<(std::path::PathBuf, bool)>,
    /// Set to jump the history to its newest message on the next frame.
    pub scroll_to_bottom: bool,
    /// An image shown full size.
    pub viewer: Option<(ImageKey, String, protocol::e2e::Content)>,
    /// The change-password form, while it is open.
    pub password: Option<PasswordForm>,
}

/// The change-password form.
#[derive(Debug, Clone, Default)]
pub struct PasswordForm {
    /// The current password.
    pub current: String,
    /// The new one.
    pub new: String,
    /// The new one again.
    pub repeat: String,
    /// Why the last try failed.
    pub error: Option<String>,
    /// A change is under way.
    pub busy: bool,
}
