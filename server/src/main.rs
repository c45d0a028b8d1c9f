//! `uchat-server`: Uchat all-in-one: migrations, the three services and the gateway in one process.

fn main() {
    eprintln!("uchat-server: not built yet; see the open issues");
    std::process::exit(2);
}
