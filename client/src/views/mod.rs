//! One module per screen. Each view draws from the [`State`](crate::state::State) and returns
//! the [`Action`]s the person took; the app carries them out. Views write only their own
//! forms' edit buffers (egui's text fields edit in place) and layout caches.

pub mod chat;
pub mod contacts;
pub mod key_lost;
pub mod kicked;
pub mod login;
pub mod password;
pub mod register;
pub mod status;
pub mod trust;

use std::path::PathBuf;

use egui::{Button, Response, RichText, TextEdit, Ui, WidgetText};
use protocol::e2e::{Content, ImageFormat};
use protocol::message::FriendDecision;
use protocol::{ClientMsgId, ConversationId, UserId};

use crate::i18n::Lang;
use crate::net::ImageKey;

/// The colour of the one main action of a screen.
pub const PRIMARY: egui::Color32 = egui::Color32::from_rgb(30, 115, 215);

/// Height of the big buttons the original asked for.
pub const BUTTON_HEIGHT: f32 = 32.0;

/// Something the person did.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Chose a language.
    SetLang(Lang),
    /// Went to the registration form.
    ShowRegister,
    /// Went back to the login form.
    ShowLogin,
    /// Logs in with the login form.
    LogIn,
    /// Registers with the registration form.
    Register,
    /// Accepted the server's fingerprint.
    TrustServer,
    /// Declined it, or left the warning.
    DismissTrust,
    /// Searches users.
    Search,
    /// Sends a friend request.
    AddFriend(UserId),
    /// Answers a friend request.
    Resolve(UserId, FriendDecision),
    /// Asks to delete a friend (confirmation follows in the same window).
    AskDelete(UserId),
    /// Keeps the friend.
    CancelDelete,
    /// Deletes the friend.
    Delete(UserId),
    /// Makes a group with the typed name.
    CreateGroup,
    /// Joins the group with the typed number.
    JoinGroup,
    /// Opens a chat.
    OpenChat(ConversationId),
    /// Loads older messages of the open chat.
    LoadOlder(ConversationId),
    /// Sends the draft.
    SendDraft,
    /// Sends a failed message again.
    Retry(ConversationId, ClientMsgId),
    /// Opens the in-window file chooser at a folder.
    Browse(PathBuf),
    /// Closes the chooser.
    CloseChooser,
    /// Sends a file to the open chat.
    SendFile(PathBuf),
    /// Fetches an image for display.
    LoadImage(ImageKey, ImageFormat, Content),
    /// Shows an image full size.
    ViewImage(ImageKey, String, Content),
    /// Closes the full-size image.
    CloseViewer,
    /// Saves a received file or image.
    Save(String, Content),
    /// Shows the safety number shared with a friend.
    SafetyNumber(UserId),
    /// Jumps to the newest message.
    ScrollToBottom,
    /// Clears the notice.
    DismissNotice,
    /// Logs out.
    LogOut,
    /// Makes a new key pair after the key was lost.
    StartOver,
    /// Opens the change-password form.
    OpenPasswordForm,
    /// Closes it.
    ClosePasswordForm,
    /// Changes the password with the form.
    ChangePassword,
}

/// A big, clearly labelled button.
pub fn big_button(ui: &mut Ui, text: impl Into<WidgetText>) -> Response {
    ui.add(Button::new(text).min_size(egui::vec2(0.0, BUTTON_HEIGHT)))
}

/// A primary action button, wider and bold.
pub fn primary_button(ui: &mut Ui, text: &str, enabled: bool) -> Response {
    let button = Button::new(RichText::new(text).strong().color(egui::Color32::WHITE))
        .fill(PRIMARY)
        .min_size(egui::vec2(140.0, BUTTON_HEIGHT));
    ui.add_enabled(enabled, button)
}

/// A text field with its label, tied together for screen readers and tests.
pub fn field(ui: &mut Ui, label: &str, value: &mut String, password: bool) -> Response {
    let label = ui.label(label);
    ui.add(
        TextEdit::singleline(value)
            .password(password)
            .desired_width(260.0),
    )
    .labelled_by(label.id)
}

/// A field's error, in red, beside or below it.
pub fn field_error(ui: &mut Ui, error: Option<&str>) {
    if let Some(error) = error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
}

/// Formats a byte count for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("B")),
    }
}
