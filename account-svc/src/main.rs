//! `account-svc`: Uchat's account service: users, certificates, sessions.

fn main() {
    eprintln!("account-svc: not built yet; see the open issues");
    std::process::exit(2);
}
