//! Uchat's end-to-end tests: the whole stack in-process and as separate processes.
//!
//! Not built yet: its issue describes what goes here.
