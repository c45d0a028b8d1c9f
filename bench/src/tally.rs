//! The receiving side of a load: every message told to every listening user is checked and
//! counted. Latency is the message's due time (written in its text by the sender, see
//! [`crate::offer::text`]) to its arrival; a message told twice is a duplicate, one told after
//! a later one of its conversation is out of order, and one never told is lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use client_core::{ClientEvent, text_of};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::users::User;

/// After the last send, listeners keep listening until every message expected was told, or
/// until no message came for this long (what is still missing then counts as lost)...
const DRAIN_QUIET: Duration = Duration::from_secs(5);
/// ...and never for longer than this.
const DRAIN_MAX: Duration = Duration::from_secs(120);

/// Highest latency recorded, microseconds (10 minutes; later is recorded as this).
const LATENCY_MAX_MICROS: u64 = 600_000_000;

/// Seconds of a run the timeline covers (later messages count in the run's figures only).
const TIMELINE_MAX_SECONDS: usize = 600;

/// Significant digits of each second's latencies: 24 KiB of counts a second (the run's own
/// histogram, at three digits, takes 170 KiB).
const TIMELINE_DIGITS: u8 = 2;

/// What the listeners saw.
struct Seen {
    latencies: Histogram<u64>,
    /// The latencies of the messages due in each second of the run, by second.
    by_second: Vec<Histogram<u64>>,
    delivered: u64,
    duplicated: u64,
    out_of_order: u64,
    /// When the last message was told.
    last: Option<Instant>,
    /// (recipient, conversation, seq) told.
    told: HashSet<(u64, u64, u64)>,
    /// The highest seq told, by (recipient, conversation).
    highest: HashMap<(u64, u64), u64>,
}

/// Listeners of one run.
pub struct Tally {
    seen: Arc<Mutex<Seen>>,
    start: Instant,
    finish: watch::Sender<bool>,
    listeners: Vec<JoinHandle<User>>,
}

/// Latency percentiles and maximum, milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// What a run's listeners saw once it was over.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Messages told (each recipient's copy counted once).
    pub delivered: u64,
    /// Copies told more than once.
    pub duplicated: u64,
    /// Copies told after a later message of the same conversation.
    pub out_of_order: u64,
    /// Send to receipt.
    pub latency: Latency,
    /// How long from the start of sending to the last message told.
    pub span: Duration,
    /// Each second's messages (by when they were due): where in the run the latency was made.
    pub timeline: Vec<Second>,
}

/// The messages due in one second of a run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Second {
    /// Seconds after the start.
    pub second: usize,
    /// Messages due in it and told.
    pub delivered: u64,
    /// Their latencies.
    #[serde(flatten)]
    pub latency: Latency,
}

impl std::fmt::Display for Second {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "second {:>3}: {:>7} told, {}",
            self.second, self.delivered, self.latency
        )
    }
}

impl Latency {
    /// The percentiles of `latencies` (microseconds).
    fn of(latencies: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            p50_ms: ms(latencies.value_at_quantile(0.50)),
            p90_ms: ms(latencies.value_at_quantile(0.90)),
            p99_ms: ms(latencies.value_at_quantile(0.99)),
            max_ms: ms(latencies.max()),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )
    }
}

impl Outcome {
    /// Deliveries per second over `sending`, or over the time to the last delivery when
    /// stragglers came later.
    pub fn per_sec(&self, sending: Duration) -> f64 {
        self.delivered as f64 / self.span.max(sending).as_secs_f64()
    }

    /// The checks of a run that expected `expected` deliveries and had `failed` sends.
    pub fn checks(&self, expected: u64, failed: u64) -> Checks {
        Checks {
            lost: expected.saturating_sub(self.delivered),
            duplicated: self.duplicated,
            out_of_order: self.out_of_order,
            failed,
        }
    }
}

/// What a run's checks found; every count must be zero. Flattened into the reports, so the
/// JSON keys stay at the top level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checks {
    /// Expected but never told.
    pub lost: u64,
    /// Told more than once.
    pub duplicated: u64,
    /// Told after a later message of the same conversation.
    pub out_of_order: u64,
    /// Sends that failed (an error from the server or the connection).
    pub failed: u64,
}

impl Checks {
    /// Every count together: zero when the run lost, repeated, reordered and failed nothing.
    pub fn total(&self) -> u64 {
        self.lost + self.duplicated + self.out_of_order + self.failed
    }
}

impl std::fmt::Display for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost {}  duplicated {}  out of order {}  failed sends {}",
            self.lost, self.duplicated, self.out_of_order, self.failed
        )
    }
}

impl Tally {
    /// Listeners whose latencies count from `start`, the time sends' due times are offsets of.
    pub fn new(start: Instant) -> anyhow::Result<Self> {
        let seen = Seen {
            latencies: Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3)?,
            by_second: Vec::new(),
            delivered: 0,
            duplicated: 0,
            out_of_order: 0,
            last: None,
            told: HashSet::new(),
            highest: HashMap::new(),
        };
        Ok(Self {
            seen: Arc::new(Mutex::new(seen)),
            start,
            finish: watch::channel(false).0,
            listeners: Vec::new(),
        })
    }

    /// Counts what `user` is told from now on.
    pub fn listen(&mut self, user: User) {
        let listener = listen(user, self.start, self.finish.subscribe(), self.seen.clone());
        self.listeners.push(tokio::spawn(listener));
    }

    /// Waits for `expected` deliveries (or until none came for a while), stops listening and
    /// says what was seen; gives the users back in the order they were listened to.
    pub async fn finish(self, expected: u64) -> anyhow::Result<(Outcome, Vec<User>)> {
        drain(&self.seen, expected).await;
        self.finish.send_replace(true);
        let mut users = Vec::with_capacity(self.listeners.len());
        for listener in self.listeners {
            users.push(listener.await.context("a listener failed")?);
        }
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let timeline = seen
            .by_second
            .iter()
            .enumerate()
            .filter(|(_, latencies)| !latencies.is_empty())
            .map(|(second, latencies)| Second {
                second,
                delivered: latencies.len(),
                latency: Latency::of(latencies),
            })
            .collect();
        let outcome = Outcome {
            delivered: seen.delivered,
            duplicated: seen.duplicated,
            out_of_order: seen.out_of_order,
            latency: Latency::of(&seen.latencies),
            span: seen.last.map_or(Duration::ZERO, |last| {
                last.saturating_duration_since(self.start)
            }),
            timeline,
        };
        Ok((outcome, users))
    }
}

/// Waits until `expected` messages were told, or none came for [`DRAIN_QUIET`], or
/// [`DRAIN_MAX`] passed.
async fn drain(seen: &Mutex<Seen>, expected: u64) {
    let began = Instant::now();
    let mut last_count = 0;
    let mut last_change = began;
    while began.elapsed() < DRAIN_MAX {
        let delivered = seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delivered;
        if delivered >= expected {
            return;
        }
        if delivered != last_count {
            (last_count, last_change) = (delivered, Instant::now());
        } else if last_change.elapsed() > DRAIN_QUIET {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn listen(
    mut user: User,
    start: Instant,
    mut finished: watch::Receiver<bool>,
    seen: Arc<Mutex<Seen>>,
) -> User {
    loop {
        let event = tokio::select! {
            event = user.events.recv() => event,
            _ = finished.wait_for(|f| *f) => None,
        };
        let Some(event) = event else { break };
        let ClientEvent::Message(message) = event else {
            continue;
        };
        // The user's own message, told when a sync brings it before its send was answered
        // (as a message sent from another computer would be): not a delivery to count.
        if message.sender == user.id {
            continue;
        }
        let now = Instant::now();
        let Some(due) = text_of(&message.body).and_then(crate::offer::due_micros) else {
            continue;
        };
        let latency = now
            .duration_since(start + Duration::from_micros(due))
            .as_micros();
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.id.0, message.conversation.0, message.seq.0);
        if !seen.told.insert(key) {
            seen.duplicated += 1;
            continue;
        }
        seen.delivered += 1;
        seen.last = Some(now);
        let highest = seen
            .highest
            .entry((user.id.0, message.conversation.0))
            .or_default();
        if message.seq.0 < *highest {
            seen.out_of_order += 1;
        } else {
            *highest = message.seq.0;
        }
        let micros = u64::try_from(latency)
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_MICROS);
        let _ = seen.latencies.record(micros);
        let second = usize::try_from(due / 1_000_000).unwrap_or(usize::MAX);
        if seen.by_second.len() <= second
            && second < TIMELINE_MAX_SECONDS
            && let Ok(empty) = Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, TIMELINE_DIGITS)
        {
            seen.by_second.resize(second + 1, empty);
        }
        if let Some(latencies) = seen.by_second.get_mut(second) {
            let _ = latencies.record(micros);
        }
    }
    user
}
