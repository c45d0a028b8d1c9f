//! The `migrate` binary the split stack runs before its services: `up` applies every
//! migration, again changes nothing, and `status` lists them applied.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn migrate(url: &str, command: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["--database-url", url, command])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "migrate {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn up_applies_everything_once_and_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let before = migrate(&url, "status");
    assert!(before.contains("Pending"), "{before}");
    assert!(migrate(&url, "up").contains("applied"));
    assert!(migrate(&url, "up").contains("applied"));
    let after = migrate(&url, "status");
    assert!(!after.contains("Pending"), "{after}");
    assert_eq!(
        after.lines().filter(|l| l.starts_with("Applied")).count(),
        before.lines().count()
    );
}
