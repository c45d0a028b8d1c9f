//! What the whole-stack benchmarks share: recipients timing each message from the moment its
//! sender made it, and the summary line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use client_core::{ClientEvent, text_of};
use tokio::task::JoinHandle;

use crate::TestClient;

/// When each message (by its text) was made; recipients take their entry out.
pub type Started = Arc<Mutex<HashMap<String, Instant>>>;

/// Send-to-receipt latencies, as recipients record them.
pub type Latencies = Arc<Mutex<Vec<Duration>>>;

/// How long recipients keep listening after the sending ends.
pub const GRACE: Duration = Duration::from_secs(5);

/// A timed run: recipients listening from its start until [`GRACE`] after its deadline.
pub struct Run {
    /// When each message in flight was made.
    pub started: Started,
    /// When the sending should stop.
    pub deadline: Instant,
    latencies: Latencies,
    begin: Instant,
    listeners: Vec<JoinHandle<()>>,
}

impl Run {
    /// Starts `receivers` listening for a run of `seconds`.
    pub fn start(receivers: Vec<TestClient>, seconds: u64) -> Self {
        let (started, latencies) = (Started::default(), Latencies::default());
        let begin = Instant::now();
        let deadline = begin + Duration::from_secs(seconds);
        let listeners = listen(receivers, &started, &latencies, deadline + GRACE);
        Self {
            started,
            deadline,
            latencies,
            begin,
            listeners,
        }
    }

    /// Once the sends are done (`sent` of them): waits for the recipients and returns the
    /// summary line.
    pub async fn finish(self, sent: u64) -> String {
        let sending = self.begin.elapsed();
        for listener in self.listeners {
            let _ = listener.await;
        }
        summary(&self.latencies, sent, sending)
    }
}

/// Notes that the message `text` is being sent now.
pub fn sending(started: &Started, text: &str) -> Instant {
    let now = Instant::now();
    lock(started).insert(text.to_owned(), now);
    now
}

/// Starts a task per recipient that records the latency of every message it is told whose
/// text is in `started`, until `until`.
pub fn listen(
    receivers: Vec<TestClient>,
    started: &Started,
    latencies: &Latencies,
    until: Instant,
) -> Vec<JoinHandle<()>> {
    receivers
        .into_iter()
        .map(|mut receiver| {
            let (started, latencies) = (started.clone(), latencies.clone());
            tokio::spawn(async move {
                while let Ok(Some(event)) =
                    tokio::time::timeout_at(until.into(), receiver.events.recv()).await
                {
                    if let ClientEvent::Message(message) = event {
                        let key = text_of(&message.body).unwrap_or_default();
                        if let Some(at) = lock(&started).remove(key) {
                            lock(&latencies).push(at.elapsed());
                        }
                    }
                }
                drop(receiver);
            })
        })
        .collect()
}

/// `sent, delivered live N in S s = R delivered/s; latency p50 … p99 …`.
pub fn summary(latencies: &Latencies, sent: u64, sending: Duration) -> String {
    let mut latencies = lock(latencies).clone();
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = (latencies.len() as f64 * q) as usize;
        latencies
            .get(index.min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let seconds = sending.as_secs_f64();
    format!(
        "sent {sent}, delivered live {} in {seconds:.1} s = {:.0} delivered/s; latency p50 {:?} p99 {:?}",
        latencies.len(),
        latencies.len() as f64 / seconds,
        at(0.5),
        at(0.99)
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
