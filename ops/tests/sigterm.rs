//! `shutdown_signal` resolves on SIGTERM, as `docker stop` sends it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(unix)]
#[tokio::test]
async fn sigterm_asks_the_process_to_stop() {
    use std::time::Duration;
    use tokio::signal::unix::{SignalKind, signal};

    // Listening to SIGTERM here first keeps this test process alive whichever runs first.
    let _survive = signal(SignalKind::terminate()).unwrap();
    let stop = tokio::spawn(ops::shutdown_signal());
    tokio::task::yield_now().await;
    assert!(!stop.is_finished(), "resolved before any signal");
    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        // Signal until it is seen: one sent before the task listened wakes only `_survive`.
        while !stop.is_finished() {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(stopped.is_ok(), "SIGTERM did not resolve shutdown_signal");
}
