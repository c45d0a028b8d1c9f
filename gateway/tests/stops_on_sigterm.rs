//! The gateway binary stops cleanly on SIGTERM even while it is still waiting for account-svc
//! to register with (a stack that is being stopped while it starts).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(unix)]
#[test]
fn a_gateway_waiting_for_account_svc_stops_on_sigterm() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("internal.key");
    proto::internal::InternalKey::load_or_create(&key).unwrap();
    // An address nobody answers on: the gateway keeps retrying its registration.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let account_url = format!("http://{}", nobody.local_addr().unwrap());
    drop(nobody);

    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--listen", "127.0.0.1:0", "--push-listen", "127.0.0.1:0"])
        .args(["--account-url", &account_url])
        .arg("--server-key")
        .arg(dir.path().join("server.key"))
        .arg("--internal-key-file")
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    ops::testing::wait_for_line(&mut child, "gateway listening");
    let status = ops::testing::terminate(&mut child, std::time::Duration::from_secs(10));
    assert!(
        status.success(),
        "the gateway ended with {status} on SIGTERM"
    );
}
