//! SeaORM entities for Uchat's tables; each names the one service that writes it.
//!
//! Not built yet: its issue describes what goes here.
