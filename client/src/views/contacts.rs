//! The contact list and its tools: who I am, user search with one-click requests, friend
//! requests answered inline, groups made or joined by number, and the list itself (F6):
//! online dot, name, address, last message and a red unread badge, only visible rows laid out.

use egui::{Align, Color32, Layout, RichText, Sense, Ui, vec2};
use protocol::message::{FriendDecision, Presence};

use super::{Action, big_button, field};
use crate::i18n::{T, fill};
use crate::state::{Contact, State};

/// Height of one contact row.
pub const ROW_HEIGHT: f32 = 58.0;

/// Height of the red unread badge.
pub const BADGE_HEIGHT: f32 = 20.0;

/// Longest preview of a last message, in characters.
pub const PREVIEW_CHARS: usize = 28;

/// Draws the left-hand panel.
pub fn show(ui: &mut Ui, state: &mut State) -> Vec<Action> {
    let mut actions = Vec::new();
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    if let Some(me) = &state.me {
        ui.horizontal(|ui| {
            ui.label(RichText::new(fill(t(T::SignedInAs), &[&me.username])).strong());
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if ui.button(t(T::LogOut)).clicked() {
                    actions.push(Action::LogOut);
                }
            });
        });
        if state.main.password.is_none() && ui.small_button(t(T::ChangePassword)).clicked() {
            actions.push(Action::OpenPasswordForm);
        }
    }
    super::password::show(ui, state, &mut actions);
    ui.separator();
    search(ui, state, &mut actions);
    requests(ui, state, &mut actions);
    groups(ui, state, &mut actions);
    ui.separator();
    ui.label(RichText::new(t(T::Contacts)).strong());
    list(ui, state, &mut actions);
    actions
}

fn search(ui: &mut Ui, state: &mut State, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    ui.horizontal(|ui| {
        let label = ui.label(t(T::SearchUsers));
        let query = ui
            .add(egui::TextEdit::singleline(&mut state.main.query).desired_width(120.0))
            .labelled_by(label.id);
        let enter = query.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button(t(T::Search)).clicked() || enter {
            actions.push(Action::Search);
        }
    });
    if let Some(results) = &state.main.results {
        if results.is_empty() {
            ui.label(RichText::new(t(T::NoUsersFound)).weak());
        }
        let me = state.me.as_ref().map(|m| m.id);
        for user in results.iter().filter(|u| Some(u.id) != me) {
            if big_button(ui, fill(t(T::AddFriend), &[&user.username])).clicked() {
                actions.push(Action::AddFriend(user.id));
            }
        }
    }
}

fn requests(ui: &mut Ui, state: &State, actions: &mut Vec<Action>) {
    let Some(bundle) = state.contacts.as_ref().map(client_core::Contacts::bundle) else {
        return;
    };
    if bundle.pending_requests.is_empty() {
        return;
    }
    ui.separator();
    ui.label(RichText::new(state.t(T::FriendRequests)).strong());
    for user in &bundle.pending_requests {
        ui.label(fill(state.t(T::WantsToBeFriends), &[&user.username]));
        ui.horizontal(|ui| {
            for (decision, text) in [
                (FriendDecision::Accept, T::Accept),
                (FriendDecision::Reject, T::Reject),
                (FriendDecision::Later, T::Later),
            ] {
                if big_button(ui, state.t(text)).clicked() {
                    actions.push(Action::Resolve(user.id, decision));
                }
            }
        });
    }
}

fn groups(ui: &mut Ui, state: &mut State, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    ui.separator();
    ui.horizontal(|ui| {
        field(ui, t(T::GroupName), &mut state.main.group_name, false);
        if ui.button(t(T::CreateGroup)).clicked() {
            actions.push(Action::CreateGroup);
        }
    });
    ui.horizontal(|ui| {
        field(ui, t(T::GroupNumber), &mut state.main.group_number, false);
        if ui.button(t(T::JoinGroup)).clicked() {
            actions.push(Action::JoinGroup);
        }
    });
}

fn list(ui: &mut Ui, state: &State, actions: &mut Vec<Action>) {
    if state.order.is_empty() {
        ui.label(RichText::new(state.t(T::NoContacts)).weak());
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("contacts")
        .auto_shrink([false, false])
        .show_rows(ui, ROW_HEIGHT, state.order.len(), |ui, rows| {
            for contact in state.order.get(rows).unwrap_or_default() {
                if row(ui, state, contact).clicked() {
                    actions.push(Action::OpenChat(contact.conversation()));
                }
            }
        });
}

/// One contact: dot, name, address or group number, preview, badge. Clicking anywhere on it
/// opens the chat.
fn row(ui: &mut Ui, state: &State, contact: &Contact) -> egui::Response {
    let conversation = contact.conversation();
    let chat = state.chats.get(&conversation);
    let unread = chat.map_or(0, |c| c.unread);
    let selected = state.open == Some(conversation);
    let (rect, response) =
        ui.allocate_exact_size(vec2(ui.available_width(), ROW_HEIGHT), Sense::click());
    let response = response.on_hover_text(contact.name());
    if selected || response.hovered() {
        ui.painter()
            .rect_filled(rect, 4.0, ui.visuals().widgets.hovered.weak_bg_fill);
    }
    let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect.shrink(4.0)));
    child.horizontal(|ui| {
        let (dot, detail) = match contact {
            Contact::Friend(f) => match &f.presence {
                Presence::Online(addr) => (Color32::from_rgb(40, 170, 60), addr.to_string()),
                Presence::Offline => (Color32::GRAY, String::new()),
            },
            Contact::Room(r) => (
                Color32::from_rgb(70, 120, 220),
                fill(state.t(T::GroupTag), &[&r.id.to_string()]),
            ),
        };
        ui.colored_label(dot, "●");
        ui.vertical(|ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new(contact.name()).strong());
                ui.label(RichText::new(detail).weak().small());
            });
            ui.label(RichText::new(preview(state, chat)).weak());
        });
    });
    if let Some(at) = contact.last_message_at().and_then(super::chat::local_time) {
        let today = chrono::Local::now().date_naive() == at.date_naive();
        let text = at.format(if today { "%H:%M" } else { "%m-%d" }).to_string();
        let place = egui::pos2(rect.right() - 8.0, rect.top() + 6.0);
        ui.painter().text(
            place,
            egui::Align2::RIGHT_TOP,
            text,
            egui::FontId::proportional(12.0),
            ui.visuals().weak_text_color(),
        );
    }
    if unread > 0 {
        badge(ui, rect, unread);
    }
    // The accessible name carries the unread count, as the badge shows it.
    let label = match unread {
        0 => contact.name().to_owned(),
        n => format!("{} ({n})", contact.name()),
    };
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
    response
}

/// The red unread count, at the right of the row `rect`.
fn badge(ui: &Ui, rect: egui::Rect, unread: u64) {
    let text = if unread > 99 {
        "99+".to_owned()
    } else {
        unread.to_string()
    };
    let painter = ui.painter();
    let galley = painter.layout_no_wrap(text, egui::FontId::proportional(13.0), Color32::WHITE);
    let size = vec2((galley.size().x + 12.0).max(BADGE_HEIGHT), BADGE_HEIGHT);
    let centre = egui::pos2(rect.right() - 8.0 - size.x / 2.0, rect.center().y + 8.0);
    let pill = egui::Rect::from_center_size(centre, size);
    painter.rect_filled(pill, BADGE_HEIGHT / 2.0, Color32::from_rgb(220, 40, 40));
    painter.galley(centre - galley.size() / 2.0, galley, Color32::WHITE);
}

fn preview(state: &State, chat: Option<&crate::state::Chat>) -> String {
    let Some((_, body)) = chat.and_then(|c| c.last.as_ref()) else {
        return state.t(T::NoMessages).to_owned();
    };
    let text = match body {
        protocol::e2e::Body::Text(text) => text.text.replace('\n', " "),
        protocol::e2e::Body::Image { .. } => state.t(T::ImagePreview).to_owned(),
        protocol::e2e::Body::File { name, .. } => fill(state.t(T::FilePreview), &[name]),
    };
    let mut short: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        short.push('…');
    }
    short
}
