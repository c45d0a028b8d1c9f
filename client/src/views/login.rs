//! The login window: server, username, password, Log in and Register, the language.

use egui::{Key, RichText, Ui};

use super::{Action, field, field_error, primary_button};
use crate::i18n::{Lang, T};
use crate::state::State;

/// Draws the login form.
pub fn show(ui: &mut Ui, state: &mut State) -> Vec<Action> {
    let mut actions = Vec::new();
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    ui.vertical_centered(|ui| {
        ui.add_space(40.0);
        ui.heading(RichText::new(t(T::AppName)).size(32.0).strong());
        ui.add_space(20.0);
    });
    let busy = state.login.busy;
    let form = &mut state.login;
    egui::Grid::new("login")
        .num_columns(2)
        .spacing([12.0, 10.0])
        .show(ui, |ui| {
            field(ui, t(T::Server), &mut form.server, false);
            ui.end_row();
            field(ui, t(T::Username), &mut form.username, false);
            ui.end_row();
            let password = field(ui, t(T::Password), &mut form.password, true);
            if password.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                actions.push(Action::LogIn);
            }
            ui.end_row();
        });
    field_error(ui, form.error.as_deref());
    ui.add_space(12.0);
    ui.horizontal(|ui| {
        let text = if busy { t(T::Working) } else { t(T::LogIn) };
        if primary_button(ui, text, !busy).clicked() {
            actions.push(Action::LogIn);
        }
        if super::big_button(ui, t(T::Register)).clicked() {
            actions.push(Action::ShowRegister);
        }
    });
    ui.add_space(20.0);
    language(ui, lang, &mut actions);
    actions
}

/// The language switch.
pub fn language(ui: &mut Ui, lang: Lang, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.label(T::Language.get(lang));
        for (choice, name) in [(Lang::En, "English"), (Lang::Zh, "中文")] {
            if ui.selectable_label(lang == choice, name).clicked() {
                actions.push(Action::SetLang(choice));
            }
        }
    });
}
