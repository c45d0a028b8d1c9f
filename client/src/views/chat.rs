//! The chat pane: header (safety number, delete friend with an inline confirmation), the
//! key-change banner, the history (only rows in view are laid out; older pages load on
//! scroll; the view stays at the bottom unless the person scrolled up), and the composer
//! (size, colour, Enter sends, Shift+Enter breaks the line, image and file buttons).

use chrono::{Local, TimeZone};
use egui::{Align, Color32, Key, Layout, Modifiers, RichText, ScrollArea, TextEdit, Ui, vec2};
use protocol::e2e::{Body, StyledText};
use protocol::{ConversationId, Timestamp};

use super::{Action, big_button, bytes, primary_button};
use crate::i18n::{T, fill};
use crate::net::ImageKey;
use crate::state::{Chat, Contact, Delivery, ImageSlot, Line, State};

/// Largest inline image shown in the history, in points on its longer side.
pub const THUMBNAIL: f32 = 240.0;

/// How close to the top (in points) the history must be scrolled to load an older page.
pub const LOAD_OLDER_MARGIN: f32 = 60.0;

/// Room kept beside the message field for the Send button.
pub const SEND_BUTTON_ROOM: f32 = 160.0;

/// Font sizes the composer offers.
pub const FONT_SIZES: std::ops::RangeInclusive<u8> = 8..=36;

/// Colours for senders' names in groups, picked by user id.
const SENDER_COLOURS: [Color32; 8] = [
    Color32::from_rgb(200, 60, 60),
    Color32::from_rgb(40, 130, 200),
    Color32::from_rgb(40, 150, 80),
    Color32::from_rgb(170, 90, 200),
    Color32::from_rgb(210, 120, 20),
    Color32::from_rgb(20, 150, 150),
    Color32::from_rgb(150, 110, 60),
    Color32::from_rgb(220, 60, 150),
];

/// The colour of a sender's name in a group.
pub fn sender_colour(user: protocol::UserId) -> Color32 {
    let index = usize::try_from(user.0 % SENDER_COLOURS.len() as u64).unwrap_or(0);
    SENDER_COLOURS.get(index).copied().unwrap_or(Color32::GRAY)
}

/// Draws the open chat.
pub fn show(ui: &mut Ui, state: &mut State, conversation: ConversationId) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(contact) = state.contact(conversation).cloned() else {
        ui.label(state.t(T::ChooseChat));
        return actions;
    };
    egui::Panel::top("chat_header").show(ui, |ui| header(ui, state, &contact, &mut actions));
    egui::Panel::bottom("composer").show(ui, |ui| composer(ui, state, &mut actions));
    egui::CentralPanel::default_margins().show(ui, |ui| {
        history(ui, state, &contact, &mut actions);
    });
    chooser(ui, state, &mut actions);
    viewer(ui, state, &mut actions);
    actions
}

fn header(ui: &mut Ui, state: &State, contact: &Contact, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.heading(contact.name());
        if let Contact::Room(room) = contact {
            ui.label(RichText::new(fill(state.t(T::GroupTag), &[&room.id.to_string()])).weak());
        }
        let Contact::Friend(friend) = contact else {
            return;
        };
        let user = friend.user.id;
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if big_button(ui, state.t(T::DeleteFriend)).clicked() {
                actions.push(Action::AskDelete(user));
            }
            if big_button(ui, state.t(T::SafetyNumber)).clicked() {
                actions.push(Action::SafetyNumber(user));
            }
        });
    });
    let Contact::Friend(friend) = contact else {
        return;
    };
    let user = friend.user.id;
    let name = &friend.user.username;
    if state.main.confirm_delete == Some(user) {
        ui.horizontal(|ui| {
            ui.label(fill(state.t(T::ConfirmDelete), &[name]));
            if primary_button(ui, state.t(T::YesDelete), true).clicked() {
                actions.push(Action::Delete(user));
            }
            if big_button(ui, state.t(T::Cancel)).clicked() {
                actions.push(Action::CancelDelete);
            }
        });
    }
    if state.key_changed.contains(&user) {
        egui::Frame::new()
            .fill(Color32::from_rgb(255, 225, 200))
            .inner_margin(6)
            .show(ui, |ui| {
                ui.colored_label(
                    Color32::from_rgb(150, 40, 0),
                    fill(state.t(T::PeerKeyChanged), &[name]),
                );
            });
    }
    if let Some(number) = state.safety.get(&user) {
        ui.label(RichText::new(fill(state.t(T::SafetyNumberIs), &[name, number])).monospace());
    }
}

/// The history, laid out row by row for the rows in view only: each row's height is
/// measured when drawn and kept on the line, so 10,000 messages cost what a screenful does.
fn history(ui: &mut Ui, state: &mut State, contact: &Contact, actions: &mut Vec<Action>) {
    let conversation = contact.conversation();
    let group = matches!(contact, Contact::Room(_));
    let jump = std::mem::take(&mut state.main.scroll_to_bottom);
    let Some(chat) = state.chats.get(&conversation) else {
        return;
    };
    let tops: Vec<f32> = chat
        .lines
        .iter()
        .scan(0.0, |top, line| {
            let at = *top;
            *top += line.height;
            Some(at)
        })
        .collect();
    let total: f32 = chat.lines.iter().map(|l| l.height).sum();
    let mut measured: Vec<(usize, f32)> = Vec::new();
    let mut area = ScrollArea::vertical()
        .id_salt(("history", conversation))
        .auto_shrink([false, false])
        .stick_to_bottom(true);
    if jump {
        area = area.vertical_scroll_offset(total);
    }
    let output = area.show_viewport(ui, |ui, viewport| {
        ui.set_height(total.max(1.0));
        let width = ui.available_width();
        let origin = ui.max_rect().top();
        let first = tops
            .partition_point(|top| *top < viewport.min.y)
            .saturating_sub(1);
        let mut index = first;
        while let (Some(line), Some(top)) = (chat.lines.get(index), tops.get(index)) {
            if *top > viewport.max.y {
                break;
            }
            let rect = egui::Rect::from_min_size(
                egui::pos2(ui.max_rect().left(), origin + top),
                vec2(width, line.height),
            );
            let previous = index.checked_sub(1).and_then(|i| chat.lines.get(i));
            let drawn = ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
                draw_line(ui, state, chat, line, previous, group, actions);
            });
            measured.push((
                index,
                drawn.response.rect.height() + ui.spacing().item_spacing.y,
            ));
            index += 1;
        }
        if viewport.min.y < LOAD_OLDER_MARGIN && !chat.complete && !chat.loading {
            actions.push(Action::LoadOlder(conversation));
        }
        if chat.loading {
            ui.put(
                egui::Rect::from_min_size(
                    egui::pos2(ui.max_rect().left(), origin),
                    vec2(width, 20.0),
                ),
                egui::Label::new(RichText::new(state.t(T::LoadingOlder)).weak()),
            );
        }
    });
    let at_bottom =
        output.state.clamped_offset().y + output.inner_rect.height() >= output.content_size.y - 4.0;
    if let Some(chat) = state.chats.get_mut(&conversation) {
        let mut changed = false;
        for (index, height) in measured {
            if let Some(line) = chat.lines.get_mut(index)
                && (line.height - height).abs() > 0.5
            {
                line.height = height;
                changed = true;
            }
        }
        if changed {
            ui.ctx().request_repaint();
        }
        if at_bottom {
            chat.unseen_below = 0;
        } else if chat.unseen_below > 0 {
            let button = egui::Button::new(RichText::new(state.t(T::NewMessages)).strong());
            let place = egui::Rect::from_center_size(
                output.inner_rect.center_bottom() - vec2(0.0, 24.0),
                vec2(160.0, 28.0),
            );
            if ui.put(place, button).clicked() {
                actions.push(Action::ScrollToBottom);
            }
        }
    }
}

/// A server time in the computer's time zone.
pub fn local_time(at: Timestamp) -> Option<chrono::DateTime<Local>> {
    Local
        .timestamp_millis_opt(i64::try_from(at.0).ok()?)
        .single()
}

fn draw_line(
    ui: &mut Ui,
    state: &State,
    chat: &Chat,
    line: &Line,
    previous: Option<&Line>,
    group: bool,
    actions: &mut Vec<Action>,
) {
    let time = local_time(line.sent_at);
    let day = time.map(|t| t.date_naive());
    if previous.is_none() && chat.complete {
        ui.vertical_centered(|ui| ui.label(RichText::new(state.t(T::StartOfChat)).weak().small()));
    }
    if previous.is_none_or(|p| local_time(p.sent_at).map(|t| t.date_naive()) != day)
        && let Some(time) = time
    {
        ui.vertical_centered(|ui| {
            ui.label(RichText::new(time.format("— %Y-%m-%d —").to_string()).weak());
        });
    }
    let mine = state.me.as_ref().is_some_and(|me| me.id == line.sender);
    ui.horizontal(|ui| {
        let name = RichText::new(state.name_of(line.sender)).strong();
        let name = if group {
            name.color(sender_colour(line.sender))
        } else {
            name
        };
        ui.label(name);
        if let Some(time) = time {
            ui.label(
                RichText::new(time.format("%H:%M").to_string())
                    .weak()
                    .small(),
            );
        }
        if mine {
            match &line.delivery {
                Delivery::Stored => {
                    ui.label(RichText::new("✔").weak().small());
                }
                Delivery::Sending => {
                    ui.label(RichText::new(state.t(T::Sending)).weak().small());
                }
                Delivery::Queued => {
                    ui.label(RichText::new(state.t(T::Queued)).weak().small());
                }
                Delivery::Failed(error) => {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        fill(state.t(T::Failed), &[error]),
                    );
                    if ui.button(state.t(T::Retry)).clicked()
                        && let Some(open) = state.open
                    {
                        actions.push(Action::Retry(open, line.id));
                    }
                }
            }
        }
    });
    let key = state.open.map(|open| ImageKey(open, line.id));
    match &line.body {
        Body::Text(text) => styled(ui, text),
        Body::Image {
            name,
            format,
            content,
        } => {
            let Some(key) = key else { return };
            match state.images.get(&key) {
                None => {
                    actions.push(Action::LoadImage(key, *format, content.clone()));
                    ui.label(RichText::new(state.t(T::ImageLoading)).weak());
                }
                Some(ImageSlot::Loading | ImageSlot::Pixels(_)) => {
                    ui.label(RichText::new(state.t(T::ImageLoading)).weak());
                }
                Some(ImageSlot::Failed(error)) => {
                    ui.label(fill(state.t(T::ImageFailed), &[error]));
                }
                Some(ImageSlot::Ready(texture)) => {
                    let image = egui::Image::new(texture)
                        .max_size(vec2(THUMBNAIL, THUMBNAIL))
                        .sense(egui::Sense::click())
                        .alt_text(name.as_str());
                    let response = ui.add(image).on_hover_text(state.t(T::OpenFullSize));
                    if response.clicked() {
                        actions.push(Action::ViewImage(key, name.clone(), content.clone()));
                    }
                }
            }
        }
        Body::File {
            name,
            size,
            content,
        } => {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(fill(state.t(T::FileSize), &[name, &bytes(*size)])).strong(),
                );
                if big_button(ui, fill("{} {}", &[state.t(T::Save), name])).clicked() {
                    actions.push(Action::Save(name.clone(), content.clone()));
                }
            });
        }
    }
}

/// Text in its sender's size and colour.
fn styled(ui: &mut Ui, text: &StyledText) {
    let [r, g, b] = text.color;
    let size = f32::from(text.font_size.clamp(*FONT_SIZES.start(), *FONT_SIZES.end()));
    ui.add(
        egui::Label::new(
            RichText::new(&text.text)
                .size(size)
                .color(Color32::from_rgb(r, g, b)),
        )
        .wrap(),
    );
}

fn composer(ui: &mut Ui, state: &mut State, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let size = ui.label(t(T::FontSize));
        ui.add(egui::DragValue::new(&mut state.main.font_size).range(FONT_SIZES))
            .labelled_by(size.id);
        let colour = ui.label(t(T::Colour));
        ui.color_edit_button_srgb(&mut state.main.color)
            .labelled_by(colour.id);
        if big_button(ui, t(T::SendImage)).clicked() || big_button(ui, t(T::SendFile)).clicked() {
            actions.push(Action::Browse(crate::app::start_folder()));
        }
    });
    // Enter sends; Shift+Enter is left to the text field, which breaks the line.
    let input = ui.scope_id().with("draft");
    let focused = ui.memory(|m| m.has_focus(input));
    let enter = focused && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter));
    let label = ui.label(RichText::new(t(T::MessageInput)).weak().small());
    ui.horizontal(|ui| {
        let [r, g, b] = state.main.color;
        let draft = TextEdit::multiline(&mut state.main.draft)
            .id(input)
            .desired_rows(3)
            .desired_width(ui.available_width() - SEND_BUTTON_ROOM)
            .font(egui::FontId::proportional(f32::from(state.main.font_size)))
            .text_color(Color32::from_rgb(r, g, b));
        ui.add(draft).labelled_by(label.id);
        if primary_button(ui, t(T::Send), true).clicked() || enter {
            actions.push(Action::SendDraft);
        }
    });
}

/// The in-window file chooser (no second dialog): folders to walk, files to send.
fn chooser(ui: &mut Ui, state: &State, actions: &mut Vec<Action>) {
    let Some(folder) = &state.main.chooser else {
        return;
    };
    egui::Window::new(state.t(T::ChooseFileTitle))
        .collapsible(false)
        .default_size(vec2(480.0, 360.0))
        .show(ui.ctx(), |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("{}: {}", state.t(T::Folder), folder.display()));
            });
            ui.horizontal(|ui| {
                if let Some(parent) = folder.parent()
                    && ui.button(state.t(T::Up)).clicked()
                {
                    actions.push(Action::Browse(parent.to_owned()));
                }
                if ui.button(state.t(T::Cancel)).clicked() {
                    actions.push(Action::CloseChooser);
                }
            });
            ScrollArea::vertical().max_height(280.0).show(ui, |ui| {
                for (entry, is_dir) in &state.main.entries {
                    let name = entry
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                    if *is_dir {
                        if ui.button(format!("📁 {name}")).clicked() {
                            actions.push(Action::Browse(entry.clone()));
                        }
                    } else if ui.button(name).clicked() {
                        actions.push(Action::SendFile(entry.clone()));
                    }
                }
            });
        });
}

/// An image at full size, with Save and Close.
fn viewer(ui: &mut Ui, state: &State, actions: &mut Vec<Action>) {
    let Some((key, name, content)) = &state.main.viewer else {
        return;
    };
    let Some(ImageSlot::Ready(texture)) = state.images.get(key) else {
        return;
    };
    egui::Window::new(name.as_str())
        .collapsible(false)
        .default_size(vec2(640.0, 480.0))
        .show(ui.ctx(), |ui| {
            ui.horizontal(|ui| {
                if big_button(ui, state.t(T::Save)).clicked() {
                    actions.push(Action::Save(name.clone(), content.clone()));
                }
                if big_button(ui, state.t(T::Close)).clicked() {
                    actions.push(Action::CloseViewer);
                }
            });
            ScrollArea::both().show(ui, |ui| {
                ui.add(egui::Image::new(texture).fit_to_original_size(1.0));
            });
        });
}
