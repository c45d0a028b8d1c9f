//! Uchat's headless client: connection, requests, events, keys, E2E and local history.
//!
//! Not built yet: its issue describes what goes here.
