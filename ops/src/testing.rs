//! Helpers for tests that run the server binaries as processes (feature `testing`).

#![allow(clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Reads `child`'s standard output (which must be piped) until a line contains `needle`;
/// panics if the output ends first. The rest of the output is drained in the background, so
/// the child never blocks on a full pipe.
pub fn wait_for_line(child: &mut Child, needle: &str) -> String {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let found = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains(needle));
    std::thread::spawn(move || lines.for_each(drop));
    found.unwrap_or_else(|| panic!("the process ended without printing {needle:?}"))
}

/// Sends SIGTERM to `child` and waits up to `within` for it to exit; kills it and panics if
/// it does not.
#[cfg(unix)]
pub fn terminate(child: &mut Child, within: Duration) -> ExitStatus {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM failed");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not stop within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
