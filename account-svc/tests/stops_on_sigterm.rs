//! The service binary drains and exits cleanly on SIGTERM (what `docker stop` sends), rather
//! than being killed mid-request.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(unix)]
#[tokio::test]
async fn the_binary_exits_cleanly_on_sigterm() {
    use std::process::{Command, Stdio};

    use migrations::{Migrator, MigratorTrait};

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("uchat.db").display()
    );
    let db = service_kit::db::connect(&url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    drop(db);
    let key = dir.path().join("internal.key");
    proto::internal::InternalKey::load_or_create(&key).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_account-svc"))
        .args(["--listen", "127.0.0.1:0", "--database-url", &url])
        .arg("--internal-key-file")
        .arg(&key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    ops::testing::wait_for_line(&mut child, "listening");
    let status = ops::testing::terminate(&mut child, std::time::Duration::from_secs(10));
    assert!(
        status.success(),
        "account-svc ended with {status} on SIGTERM"
    );
}
