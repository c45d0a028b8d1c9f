//! The look: a light theme (senders' colours are chosen on white, and the default text
//! colour is black) with larger text and roomier buttons than egui's defaults, as the
//! original asked: big, clearly labelled buttons, consistent fonts.

use egui::{FontFamily, FontId, TextStyle, vec2};

/// Width of the login and registration forms.
pub const FORM_WIDTH: f32 = 460.0;

/// Applies the theme to every style of `ctx`.
pub fn apply(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Light);
    ctx.all_styles_mut(|style| {
        for (text, size) in [
            (TextStyle::Small, 12.0),
            (TextStyle::Body, 15.0),
            (TextStyle::Button, 15.0),
            (TextStyle::Heading, 24.0),
            (TextStyle::Monospace, 14.0),
        ] {
            let family = match text {
                TextStyle::Monospace => FontFamily::Monospace,
                _ => FontFamily::Proportional,
            };
            style.text_styles.insert(text, FontId::new(size, family));
        }
        style.spacing.button_padding = vec2(12.0, 5.0);
        style.spacing.item_spacing = vec2(8.0, 7.0);
        style.spacing.interact_size.y = 26.0;
    });
}

/// Draws `add` in a column of [`FORM_WIDTH`] centred in the window.
pub fn centred_form<R>(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    let margin = ((ui.available_width() - FORM_WIDTH) / 2.0).max(0.0);
    ui.horizontal_top(|ui| {
        ui.add_space(margin);
        ui.vertical(|ui| {
            ui.set_width(FORM_WIDTH.min(ui.available_width()));
            add(ui)
        })
        .inner
    })
    .inner
}
