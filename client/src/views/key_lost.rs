//! "Your key is not on this computer": why, what starting over costs, and the way back.

use egui::{RichText, Ui};

use super::{Action, big_button, primary_button};
use crate::i18n::T;
use crate::state::State;

/// Draws the key-lost screen.
pub fn show(ui: &mut Ui, state: &State) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.vertical_centered(|ui| {
        ui.add_space(60.0);
        ui.heading(RichText::new(state.t(T::KeyLostTitle)).size(26.0));
        ui.add_space(12.0);
        ui.label(state.t(T::KeyLostBody));
        ui.add_space(8.0);
        ui.label(RichText::new(state.t(T::StartOverNote)).strong());
        ui.add_space(20.0);
        if primary_button(ui, state.t(T::StartOver), true).clicked() {
            actions.push(Action::StartOver);
        }
        ui.add_space(8.0);
        if big_button(ui, state.t(T::Cancel)).clicked() {
            actions.push(Action::LogOut);
        }
    });
    actions
}
