//! `uchat`: Uchat's egui desktop client.

fn main() {
    eprintln!("uchat: not built yet; see the open issues");
    std::process::exit(2);
}
