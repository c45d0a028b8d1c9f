//! The status bar: the connection, who is signed in, transfers under way, the last notice.

use egui::Ui;

use super::Action;
use crate::i18n::{T, fill};
use crate::net::Notice;
use crate::state::{Link, State};

/// Draws the status bar.
pub fn show(ui: &mut Ui, state: &State) -> Vec<Action> {
    let mut actions = Vec::new();
    for transfer in &state.transfers {
        let fraction = if transfer.total == 0 {
            0.0
        } else {
            transfer.done as f32 / transfer.total as f32
        };
        let text = fill(
            state.t(T::Transfer),
            &[
                &transfer.name,
                &super::bytes(transfer.done),
                &super::bytes(transfer.total),
            ],
        );
        ui.add(egui::ProgressBar::new(fraction).text(text));
    }
    ui.horizontal(|ui| {
        let (dot, text) = match state.link {
            Link::Online => (
                egui::Color32::from_rgb(40, 170, 60),
                fill(state.t(T::Connected), &[&state.server]),
            ),
            Link::Reconnecting => (
                egui::Color32::from_rgb(230, 150, 20),
                state.t(T::Reconnecting).to_owned(),
            ),
            Link::Offline => (egui::Color32::GRAY, state.t(T::NotConnected).to_owned()),
        };
        ui.colored_label(dot, "●");
        ui.label(text);
        if state.missing_cjk_font {
            ui.separator();
            ui.colored_label(ui.visuals().warn_fg_color, state.t(T::NoCjkFont));
        }
        if let Some(notice) = &state.notice {
            ui.separator();
            let (text, error) = match notice {
                Notice::RequestSent(_) => (state.t(T::RequestSent).to_owned(), false),
                Notice::RoomReady(name, id) => {
                    (fill(state.t(T::RoomReady), &[name, &id.to_string()]), false)
                }
                Notice::Saved(path) => (
                    fill(state.t(T::Saved), &[&path.display().to_string()]),
                    false,
                ),
                Notice::PasswordChanged => (state.t(T::PasswordChanged).to_owned(), false),
                Notice::Failed(text) => (text.clone(), true),
            };
            if error {
                ui.colored_label(ui.visuals().error_fg_color, text);
            } else {
                ui.label(text);
            }
            if ui.small_button(state.t(T::Dismiss)).clicked() {
                actions.push(Action::DismissNotice);
            }
        }
    });
    actions
}
