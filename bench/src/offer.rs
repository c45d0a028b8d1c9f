//! The sending side of a load: senders on a schedule, paced (open loop) or flat out, each
//! message's text saying who sent it and when it was due so that [`crate::tally`] can check
//! it and time it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client_core::{Client, plain};
use protocol::ConversationId;

use crate::pace::Pacer;

/// One sender's schedule.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Where it sends.
    pub conversation: ConversationId,
    /// Its number among the senders (staggers paced sends over the period).
    pub sender: usize,
    /// How many senders share `rate`.
    pub senders: usize,
    /// Messages per second over all senders; 0 sends flat out.
    pub rate: f64,
    /// Sends in flight when flat out.
    pub window: usize,
    /// When sending starts (due times are offsets from it).
    pub start: Instant,
    /// When it stops.
    pub stop: Instant,
}

/// Sends answered and failed, over all senders.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Counts {
    fn add(&self, ok: u64, bad: u64) {
        self.sent.fetch_add(ok, Ordering::Relaxed);
        self.failed.fetch_add(bad, Ordering::Relaxed);
    }

    /// Sends the server answered as stored.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Sends that failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// The text of a message: who sent it and when it was due, in microseconds after the start.
fn text(sender: usize, n: u64, due_micros: u128) -> String {
    format!("{sender}:{n}:{due_micros}")
}

/// When a message of [`text`]'s making was due, in microseconds after the start.
pub fn due_micros(text: &str) -> Option<u64> {
    text.rsplit(':').next()?.parse().ok()
}

/// Sends on `plan` until its stop, counting into `counts`; paced sends wait for their due
/// time on `pacer`.
pub async fn send(client: Client, plan: Plan, counts: Counts, pacer: Pacer) {
    if plan.rate > 0.0 {
        // Open loop: every send at its time, without waiting for the ones before.
        let period = Duration::from_secs_f64(plan.senders as f64 / plan.rate);
        let offset = period.mul_f64(plan.sender as f64 / plan.senders as f64);
        let mut in_flight = tokio::task::JoinSet::new();
        let mut n = 0u64;
        let count = |ok: bool| counts.add(u64::from(ok), u64::from(!ok));
        loop {
            let due = plan.start + offset + period.mul_f64(n as f64);
            if due >= plan.stop {
                break;
            }
            pacer.sleep_until(due).await;
            let body = text(plan.sender, n, due.duration_since(plan.start).as_micros());
            let client = client.clone();
            in_flight.spawn(async move {
                client
                    .send_text(plan.conversation, plain(&body))
                    .await
                    .is_ok()
            });
            while let Some(done) = in_flight.try_join_next() {
                count(done.unwrap_or(false));
            }
            n += 1;
        }
        while let Some(done) = in_flight.join_next().await {
            count(done.unwrap_or(false));
        }
    } else {
        // Flat out: `window` lanes, each sending as soon as its last send was answered.
        let window = plan.window.max(1);
        let mut lanes = tokio::task::JoinSet::new();
        for lane in 0..window {
            let client = client.clone();
            lanes.spawn(async move {
                let (mut ok, mut bad) = (0u64, 0u64);
                let mut n = lane as u64;
                while Instant::now() < plan.stop {
                    let due = Instant::now().duration_since(plan.start).as_micros();
                    let body = text(plan.sender, n, due);
                    match client.send_text(plan.conversation, plain(&body)).await {
                        Ok(_) => ok += 1,
                        Err(_) => bad += 1,
                    }
                    n += window as u64;
                }
                (ok, bad)
            });
        }
        while let Some(done) = lanes.join_next().await {
            let (ok, bad) = done.unwrap_or((0, 0));
            counts.add(ok, bad);
        }
    }
}

/// Ticks `progress` once a second until `stop`.
pub fn tick_until(progress: indicatif::ProgressBar, stop: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while Instant::now() < stop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            progress.inc(1);
        }
        progress.finish_and_clear();
    })
}
