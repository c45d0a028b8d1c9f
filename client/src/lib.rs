//! Uchat's egui desktop client.
//!
//! ```text
//! app.rs     the screens: drain updates, draw, carry out actions (UI thread)
//! state.rs   everything shown, as plain data, and a pure apply(update)
//! net.rs     the one module that talks to client-core, on its own runtime and thread
//! views/*    one per screen; each returns the actions the person took
//! i18n.rs    every string, English and Chinese
//! rules.rs   the registration rules, checked as the person types
//! fonts.rs   the CJK fallback font
//! settings   the last server, username and language
//! theme.rs   the look: light, larger text, centred forms
//! ```

pub mod app;
pub mod fonts;
pub mod i18n;
pub mod net;
pub mod rules;
pub mod settings;
pub mod state;
pub mod theme;
pub mod views;

pub use app::{App, Options};
