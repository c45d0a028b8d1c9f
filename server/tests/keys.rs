//! `uchat-server keys` makes a split deployment's keys once and leaves them alone after.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn keys(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_uchat-server"))
        .arg("--data-dir")
        .arg(dir)
        .arg("keys")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn keys_are_made_once_private_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let first = keys(&keys_dir);
    assert!(first.starts_with("Created"), "{first}");
    let fingerprint = first
        .lines()
        .find(|l| l.starts_with("Server fingerprint"))
        .unwrap();
    let second = keys(&keys_dir);
    assert!(second.starts_with("Found"), "{second}");
    assert!(
        second.contains(fingerprint),
        "the server key changed: {second}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [server::SERVER_KEY_FILE, server::INTERNAL_KEY_FILE] {
            let mode = std::fs::metadata(keys_dir.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    // The split processes read the internal key from here.
    proto::internal::InternalKey::load(&keys_dir.join(server::INTERNAL_KEY_FILE)).unwrap();
}
