//! Uchat's gateway: terminates client connections and forwards to the services.
//!
//! Not built yet: its issue describes what goes here.
