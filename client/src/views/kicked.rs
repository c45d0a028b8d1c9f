//! "Your account was signed in elsewhere", with a way back to the login form.

use egui::{RichText, Ui};

use super::{Action, primary_button};
use crate::i18n::T;
use crate::state::State;

/// Draws the kicked screen.
pub fn show(ui: &mut Ui, state: &State) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.vertical_centered(|ui| {
        ui.add_space(60.0);
        ui.heading(RichText::new(state.t(T::KickedTitle)).size(26.0));
        ui.add_space(12.0);
        ui.label(state.t(T::KickedBody));
        if let Some(reason) = &state.kicked {
            ui.label(RichText::new(reason).weak());
        }
        ui.add_space(20.0);
        if primary_button(ui, state.t(T::LogInAgain), true).clicked() {
            actions.push(Action::ShowLogin);
        }
    });
    actions
}
