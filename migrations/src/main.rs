//! `migrate`: The Uchat database migrator and its CLI, for SQLite and PostgreSQL.

fn main() {
    eprintln!("migrate: not built yet; see the open issues");
    std::process::exit(2);
}
