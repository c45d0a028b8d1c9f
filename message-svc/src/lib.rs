//! Uchat's message service: store, fan-out, sync, history and attachments.
//!
//! Not built yet: its issue describes what goes here.
