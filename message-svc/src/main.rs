//! `message-svc`: Uchat's message service: store, fan-out, sync, history and attachments.

fn main() {
    eprintln!("message-svc: not built yet; see the open issues");
    std::process::exit(2);
}
