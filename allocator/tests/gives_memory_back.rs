//! Memory freed on threads that then go quiet goes back to the system without waiting for
//! them to allocate again: the shape of a server whose attackers were just disconnected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

const THREADS: usize = 2;
/// Small buffers, as a server's are (frames, messages, strings): kept in the threads' own
/// pages, not handed straight to the system as huge ones are.
const BUFFERS: usize = 6400;
const BUFFER: usize = 16 << 10;

/// Resident memory, read without allocating (an allocation would itself give mimalloc the
/// chance to purge, which is what the test must not hand it).
fn resident_mib() -> u64 {
    use std::io::Read;
    let mut status = [0u8; 4096];
    let mut file = std::fs::File::open("/proc/self/status").unwrap();
    let mut len = 0;
    while let Ok(n @ 1..) = file.read(&mut status[len..]) {
        len += n;
    }
    let text = std::str::from_utf8(&status[..len]).unwrap();
    let line = text.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[test]
fn freed_memory_is_returned_while_the_threads_are_idle() {
    assert!(allocator::return_freed_memory_promptly());
    assert_eq!(allocator::purge_delay_ms(), 0);
    let before = resident_mib();

    // Each thread fills 100 MiB in small buffers, frees it, then idles (as a worker does between bursts).
    let freed = Arc::new(Barrier::new(THREADS + 1));
    let done = Arc::new(Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (freed, done) = (freed.clone(), done.clone());
            std::thread::spawn(move || {
                let buffers: Vec<Vec<u8>> = (0..BUFFERS).map(|i| vec![i as u8; BUFFER]).collect();
                assert_eq!(buffers.len(), BUFFERS);
                drop(buffers);
                freed.wait();
                done.wait();
            })
        })
        .collect();
    freed.wait();

    // Wait for the condition, not a fixed time: within 5 s resident memory is back near
    // where it started (it never comes back if freeing waits for the threads to allocate).
    let filled = (THREADS * BUFFERS * BUFFER) as u64 >> 20;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = resident_mib();
    while now > before + filled / 4 && Instant::now() < deadline {
        std::thread::yield_now();
        now = resident_mib();
    }
    done.wait();
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(
        now <= before + filled / 4,
        "{now} MiB resident after freeing {filled} MiB, from {before} MiB before"
    );
}
