//! `uchat-bench` as a person pipes it: a reader that stops early does not make it fail.

use std::process::{Command, Stdio};

#[test]
fn a_reader_that_goes_away_early_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_uchat-bench"))
        .args(["limits", "--duration", "1", "--batch", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `| head -0` would: the read end closes before anything is printed.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
