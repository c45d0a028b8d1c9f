//! The Uchat database migrator and its CLI, for SQLite and PostgreSQL.
//!
//! Not built yet: its issue describes what goes here.
