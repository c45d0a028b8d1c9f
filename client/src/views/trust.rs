//! The server's key: the first-contact prompt with its fingerprint, and the full-screen
//! warning when a pinned server presents another key (never a silent connect).

use egui::{Color32, RichText, Ui};

use super::{Action, big_button, primary_button};
use crate::i18n::{T, fill};
use crate::state::{State, TrustPrompt};

/// Draws the prompt or the warning.
pub fn show(ui: &mut Ui, state: &State, prompt: &TrustPrompt) -> Vec<Action> {
    let mut actions = Vec::new();
    match prompt {
        TrustPrompt::Unknown {
            server,
            fingerprint,
        } => {
            ui.add_space(30.0);
            ui.heading(fill(state.t(T::FirstContact), &[server]));
            ui.add_space(10.0);
            ui.label(state.t(T::FirstContactBody));
            ui.add_space(10.0);
            ui.label(RichText::new(state.t(T::Fingerprint)).strong());
            ui.label(
                RichText::new(fingerprint.to_string())
                    .monospace()
                    .size(16.0),
            );
            ui.add_space(16.0);
            ui.horizontal(|ui| {
                if primary_button(ui, state.t(T::AcceptKey), true).clicked() {
                    actions.push(Action::TrustServer);
                }
                if big_button(ui, state.t(T::Cancel)).clicked() {
                    actions.push(Action::DismissTrust);
                }
            });
        }
        TrustPrompt::Changed {
            server,
            pinned,
            presented,
        } => {
            let red = Color32::from_rgb(200, 30, 30);
            ui.add_space(30.0);
            ui.heading(
                RichText::new(state.t(T::KeyChangedTitle))
                    .color(red)
                    .size(26.0),
            );
            ui.add_space(10.0);
            ui.label(fill(state.t(T::KeyChangedBody), &[server, "known_servers"]));
            ui.add_space(10.0);
            for (label, fingerprint) in [(T::PinnedKey, pinned), (T::PresentedKey, presented)] {
                ui.label(RichText::new(state.t(label)).strong());
                ui.label(
                    RichText::new(fingerprint.to_string())
                        .monospace()
                        .size(16.0),
                );
            }
            ui.add_space(16.0);
            if big_button(ui, state.t(T::Back)).clicked() {
                actions.push(Action::DismissTrust);
            }
        }
    }
    actions
}
