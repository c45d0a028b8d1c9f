//! `social-svc`: Uchat's social service: friends and groups.

fn main() {
    eprintln!("social-svc: not built yet; see the open issues");
    std::process::exit(2);
}
