//! `gateway`: Uchat's gateway: terminates client connections and forwards to the services.

fn main() {
    eprintln!("gateway: not built yet; see the open issues");
    std::process::exit(2);
}
