//! Server handshakes per second across all cores, the pool's key generation included.
//!
//! Each worker thread plays the server for pre-made ClientHellos: it takes an ephemeral key
//! pair from the shared [`EphemeralPool`] (whose background thread refills it on the same
//! cores) and runs `server_respond`. So the figure is what the machine's CPUs sustain for the
//! whole server side of the handshake, not one core's latency.
//!
//! `cargo bench -p protocol --bench handshake_throughput [-- SECONDS [THREADS]]`

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::handshake::{ClientHandshake, NONCE_LEN, server_respond};
use protocol::{EphemeralPool, ServerIdentity};

fn main() {
    // `cargo bench` passes `--bench`; the numbers after it are ours.
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = args.first().copied().unwrap_or(5);
    let threads = args
        .get(1)
        .copied()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u64));

    let identity = Arc::new(ServerIdentity::generate("bench").unwrap());
    let pool = Arc::new(EphemeralPool::new(protocol::crypto::dh::DEFAULT_POOL_CAPACITY).unwrap());
    let hellos: Arc<Vec<_>> = Arc::new(
        (0..64)
            .map(|_| *ClientHandshake::new(None).unwrap().hello())
            .collect(),
    );
    // Let the pool fill so the run starts from the steady state a busy server would reach.
    std::thread::sleep(Duration::from_millis(200));

    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (identity, pool, hellos, done, stop) = (
                identity.clone(),
                pool.clone(),
                hellos.clone(),
                done.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut i = t as usize;
                while !stop.load(Ordering::Relaxed) {
                    let ephemeral = pool.take().unwrap();
                    let hello = &hellos[i % hellos.len()];
                    server_respond(&identity, &ephemeral, [0; NONCE_LEN], hello).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    println!(
        "server handshakes: {count} in {elapsed:.2} s on {threads} threads = {:.0}/s",
        count as f64 / elapsed
    );
}
