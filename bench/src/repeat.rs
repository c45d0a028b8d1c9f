//! Workers doing one timed thing over and over until a deadline (a handshake, a login), their
//! latencies merged into one histogram.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency recorded, microseconds (a minute; later is recorded as this).
const LATENCY_MAX_MICROS: u64 = 60_000_000;

/// What the workers did.
#[derive(Debug, Clone, Copy)]
pub struct Repeated {
    /// Times it succeeded.
    pub done: u64,
    /// Times it failed.
    pub failed: u64,
    /// Successes per second over the whole run.
    pub per_sec: f64,
    /// Latency of the timed part, milliseconds: median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// Runs `workers` workers for `duration`; worker `n` calls `once(n)` over and over, which
/// returns how long the part it times took.
pub async fn repeat<F, Fut>(workers: usize, duration: Duration, once: F) -> anyhow::Result<Repeated>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<Duration>> + Send,
{
    let started = Instant::now();
    let stop = started + duration;
    let mut running = tokio::task::JoinSet::new();
    for worker in 0..workers.max(1) {
        let once = once.clone();
        running.spawn(async move {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_MICROS, 3)?;
            let mut failed = 0u64;
            while Instant::now() < stop {
                match once(worker).await {
                    Ok(took) => {
                        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                        let _ = latencies.record(micros.clamp(1, LATENCY_MAX_MICROS));
                    }
                    Err(_) => failed += 1,
                }
            }
            anyhow::Ok((latencies, failed))
        });
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_MICROS, 3)?;
    let mut failed = 0;
    while let Some(done) = running.join_next().await {
        let (worker, worker_failed) = done??;
        latencies.add(&worker)?;
        failed += worker_failed;
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(Repeated {
        done: latencies.len(),
        failed,
        per_sec: latencies.len() as f64 / started.elapsed().as_secs_f64(),
        p50_ms: ms(latencies.value_at_quantile(0.5)),
        p99_ms: ms(latencies.value_at_quantile(0.99)),
        max_ms: ms(latencies.max()),
    })
}
