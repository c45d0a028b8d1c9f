//! Uchat's account service: users, certificates, sessions.
//!
//! Not built yet: its issue describes what goes here.
