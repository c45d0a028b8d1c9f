//! The change-password form, in the contact panel: current password, the new one twice,
//! checked as typed by the same rule as registration.

use egui::Ui;

use super::{Action, field, field_error, primary_button};
use crate::i18n::T;
use crate::state::PasswordForm;
use crate::state::State;

/// What is wrong with the form as typed, if anything.
pub fn problem(form: &PasswordForm) -> Option<T> {
    if form.new.is_empty() {
        return None;
    }
    if client_core::password_problem(&form.new).is_some() {
        return Some(if form.new.len() > client_core::MAX_PASSWORD_BYTES {
            T::ErrPasswordLong
        } else {
            T::ErrPasswordShort
        });
    }
    (!form.repeat.is_empty() && form.repeat != form.new).then_some(T::ErrPasswordsDiffer)
}

/// Draws the form, if open.
pub fn show(ui: &mut Ui, state: &mut State, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let t = |text: T| text.get(lang);
    let Some(form) = &mut state.main.password else {
        return;
    };
    ui.group(|ui| {
        ui.strong(t(T::ChangePassword));
        egui::Grid::new("change-password")
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                field(ui, t(T::CurrentPassword), &mut form.current, true);
                ui.end_row();
                field(ui, t(T::NewPassword), &mut form.new, true);
                ui.end_row();
                field(ui, t(T::RepeatNewPassword), &mut form.repeat, true);
                ui.end_row();
            });
        let problem = problem(form);
        field_error(ui, problem.map(t).or(form.error.as_deref()));
        ui.label(egui::RichText::new(t(T::ForgottenPassword)).weak());
        let ready = !form.busy
            && problem.is_none()
            && !form.current.is_empty()
            && !form.new.is_empty()
            && form.repeat == form.new;
        ui.horizontal(|ui| {
            let text = if form.busy {
                t(T::Working)
            } else {
                t(T::SaveNewPassword)
            };
            if primary_button(ui, text, ready).clicked() {
                actions.push(Action::ChangePassword);
            }
            if ui.button(t(T::Cancel)).clicked() {
                actions.push(Action::ClosePasswordForm);
            }
        });
    });
}
