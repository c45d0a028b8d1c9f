//! The registration form: every field checked as the person types, with the error beside
//! it, and the server's errors (a taken name or email) shown the same way.

use egui::{RichText, Ui};
use protocol::message::Sex;

use super::{Action, big_button, field, field_error, primary_button};
use crate::i18n::T;
use crate::rules::{self, Input};
use crate::state::State;

/// Draws the registration form.
pub fn show(ui: &mut Ui, state: &mut State) -> Vec<Action> {
    let mut actions = Vec::new();
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    ui.add_space(20.0);
    ui.heading(RichText::new(t(T::CreateAccount)).size(26.0));
    ui.add_space(10.0);
    let form = &mut state.register;
    let local = rules::check(form, false);
    let error = |input: Input, server: &std::collections::HashMap<Input, String>| {
        local
            .get(&input)
            .map(|t| t.get(lang).to_owned())
            .or_else(|| server.get(&input).cloned())
    };
    let mut changed = Vec::new();
    egui::Grid::new("register")
        .num_columns(3)
        .spacing([12.0, 10.0])
        .show(ui, |ui| {
            for (input, label, password) in [
                (Input::Username, T::Username, false),
                (Input::Password, T::Password, true),
                (Input::Repeat, T::RepeatPassword, true),
                (Input::Email, T::Email, false),
                (Input::Age, T::Age, false),
            ] {
                let value = match input {
                    Input::Username => &mut form.username,
                    Input::Password => &mut form.password,
                    Input::Repeat => &mut form.repeat,
                    Input::Email => &mut form.email,
                    Input::Age | Input::Sex => &mut form.age,
                };
                if field(ui, t(label), value, password).changed() {
                    changed.push(input);
                }
                field_error(ui, error(input, &form.server_errors).as_deref());
                ui.end_row();
            }
            ui.label(t(T::Sex));
            ui.horizontal(|ui| {
                for (choice, name) in [
                    (Sex::Undisclosed, T::SexUndisclosed),
                    (Sex::Male, T::SexMale),
                    (Sex::Female, T::SexFemale),
                    (Sex::Other, T::SexOther),
                ] {
                    ui.radio_value(&mut form.sex, choice, t(name));
                }
            });
            ui.end_row();
        });
    for input in changed {
        form.server_errors.remove(&input);
    }
    field_error(ui, form.error.as_deref());
    ui.label(RichText::new(t(T::ForgottenPassword)).weak());
    ui.add_space(12.0);
    let busy = form.busy;
    ui.horizontal(|ui| {
        let text = if busy {
            t(T::Working)
        } else {
            t(T::CreateAccount)
        };
        if primary_button(ui, text, !busy).clicked() {
            actions.push(Action::Register);
        }
        if big_button(ui, t(T::BackToLogin)).clicked() {
            actions.push(Action::ShowLogin);
        }
    });
    ui.add_space(20.0);
    super::login::language(ui, lang, &mut actions);
    actions
}
