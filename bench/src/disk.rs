//! The disk's own stalls during a run, so a latency figure can be read with the disk it had.
//!
//! The server syncs its log at every commit, so while one sync takes long every message in
//! flight waits, and a p99 over a few hundred messages is that one sync. On a shared machine
//! the disk does this by itself: seen here, a 4 KiB write and sync that takes 0.3 ms at the
//! median took 25 to 300 ms several times a minute with nothing of ours running, and calm
//! minutes later (docs/BENCHMARKS.md). A [`Probe`] beside the run writes and syncs
//! [`PROBE_BYTES`] every [`PROBE_EVERY`] in the temporary folder (`$TMPDIR`, where `suite`
//! keeps its servers' data) and counts the syncs slower than [`STALL`]. Its own load, 80 KiB
//! a second, is a small fraction of a server's.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Time between two of the probe's syncs.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);

/// A sync slower than this is a stall: many times the median sync here, and longer than a
/// message's whole path at low load.
pub const STALL: Duration = Duration::from_millis(10);

/// Bytes each probe writes (one page), always at the start of its file.
pub const PROBE_BYTES: usize = 4096;

/// What the probe saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Stalls {
    /// Syncs made.
    pub disk_syncs: u64,
    /// Syncs slower than [`STALL`].
    pub disk_stalls: u64,
    /// The slowest sync, milliseconds.
    pub disk_stall_max_ms: f64,
}

impl Stalls {
    /// Both probes' counts together.
    pub fn and(self, other: Self) -> Self {
        Self {
            disk_syncs: self.disk_syncs + other.disk_syncs,
            disk_stalls: self.disk_stalls + other.disk_stalls,
            disk_stall_max_ms: self.disk_stall_max_ms.max(other.disk_stall_max_ms),
        }
    }
}

impl std::fmt::Display for Stalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "disk meanwhile: {} of {} syncs of 4 KiB over {} ms, the slowest {:.1} ms",
            self.disk_stalls,
            self.disk_syncs,
            STALL.as_millis(),
            self.disk_stall_max_ms
        )
    }
}

/// A probe running on a thread of its own until [`Probe::finish`] (or until dropped).
#[derive(Debug)]
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<Stalls>>>,
}

impl Probe {
    /// Starts probing the temporary folder's disk.
    pub fn start() -> anyhow::Result<Self> {
        let file = tempfile::tempfile().context("a file to probe the disk with")?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn({
                let stop = stop.clone();
                move || probe(&file, &stop)
            })
            .context("start the disk probe")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the probe and returns what it saw.
    pub fn finish(mut self) -> anyhow::Result<Stalls> {
        let thread = self
            .thread
            .take()
            .context("the probe was finished already")?;
        self.stop.store(true, Ordering::Relaxed);
        thread.thread().unpark();
        let seen = thread
            .join()
            .map_err(|_| anyhow::anyhow!("the disk probe panicked"))?;
        seen.context("probe the disk")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

fn probe(file: &File, stop: &AtomicBool) -> io::Result<Stalls> {
    let page = [0x5a_u8; PROBE_BYTES];
    let mut seen = Stalls::default();
    // At least one sync, however soon the probe is finished.
    loop {
        let began = Instant::now();
        file.write_all_at(&page, 0)?;
        file.sync_data()?;
        let took = began.elapsed();
        seen.disk_syncs += 1;
        if took > STALL {
            seen.disk_stalls += 1;
        }
        seen.disk_stall_max_ms = seen.disk_stall_max_ms.max(took.as_secs_f64() * 1e3);
        if stop.load(Ordering::Relaxed) {
            return Ok(seen);
        }
        std::thread::park_timeout(PROBE_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_syncs_at_least_once_and_stops_when_finished() {
        let seen = Probe::start().unwrap().finish().unwrap();
        assert!(seen.disk_syncs >= 1, "{seen:?}");
        assert!(seen.disk_stalls <= seen.disk_syncs);
        assert!(seen.disk_stall_max_ms > 0.0, "{seen:?}");
    }

    #[test]
    fn two_probes_add_up() {
        let a = Stalls {
            disk_syncs: 10,
            disk_stalls: 1,
            disk_stall_max_ms: 30.0,
        };
        let b = Stalls {
            disk_syncs: 5,
            disk_stalls: 2,
            disk_stall_max_ms: 12.0,
        };
        assert_eq!(
            a.and(b),
            Stalls {
                disk_syncs: 15,
                disk_stalls: 3,
                disk_stall_max_ms: 30.0
            }
        );
    }
}
