//! Uchat's social service: friends and groups.
//!
//! Not built yet: its issue describes what goes here.
