//! `uchat-bench`: Uchat's load generator and benchmark driver.

fn main() {
    eprintln!("uchat-bench: not built yet; see the open issues");
    std::process::exit(2);
}
