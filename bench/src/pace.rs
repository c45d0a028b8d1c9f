//! Waking paced senders on time.
//!
//! tokio's timer turns in whole milliseconds and fires a sleep at the first tick at or after
//! its deadline, so a send due at `t` left between `t` and `t + 1 ms` (measured at 20
//! messages/s: 0.69 ms late at the median, 1.1 ms at p90). Latency counts from the due time
//! (open loop), so that lateness was the load tool's, added to every figure. A precise
//! [`Pacer`] is one thread that sleeps on the operating system's clock until the earliest
//! deadline (a condition variable's timed wait) and then wakes the task waiting for it:
//! 0.21 ms late at the median, the task's wake-up included.
//!
//! That costs a wake-up from another thread per send, where tokio's timer wakes all the sends
//! of a tick together on its own worker. At high rates the load tool's cores are the server's
//! too, and the difference showed: at 5,000 messages/s the precise pacer gave a p99 of 35 – 116
//! ms against 49 – 57 ms with tokio's timer, whose millisecond is small beside those figures.
//! So [`Pacer::for_rate`] paces precisely only up to [`PRECISE_MAX_RATE`].
//!
//! The last of that lateness was two wake-ups (the thread's, then the task's on a runtime
//! worker), so the precise pacer wakes its sleepers a [`Handle`]'s lead early and each spins
//! on the clock until its deadline: a send leaves at its due time, not after it. The spin
//! costs the load tool's cores at most the lead per send, so the lead shrinks as the rate
//! grows, to stay within [`SPIN_BUDGET`] of one core ([`Pacer::for_rate`]).
//!
//! The queue of deadlines holds one entry per sleeping sender, so it is bounded by the number
//! of senders; its thread ends when the last handle is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The highest offered rate, in messages per second, paced by the precise pacer.
pub const PRECISE_MAX_RATE: f64 = 1_000.0;

/// How early the precise pacer wakes a sleeper at most, which then spins until its deadline:
/// past the median lateness of the two wake-ups it covers (0.21 ms measured).
pub const MAX_LEAD: Duration = Duration::from_micros(300);

/// The share of one core the senders may spend spinning: the lead is at most this share of
/// the time between two sends.
pub const SPIN_BUDGET: f64 = 0.01;

/// Wakes tasks at their deadlines. Cheap to clone.
#[derive(Clone)]
pub enum Pacer {
    /// tokio's timer: up to a millisecond late, wakes batched per tick.
    Tokio,
    /// Our thread on the operating system's clock.
    Precise(Arc<Handle>),
}

/// Stops the thread when the last [`Pacer`] goes.
pub struct Handle {
    shared: Arc<Shared>,
    /// How early sleepers are woken, to spin until their deadlines.
    lead: Duration,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    sleepers: BinaryHeap<Reverse<Sleeper>>,
    /// Breaks ties between equal deadlines (first come, first woken).
    next: u64,
    stopped: bool,
}

struct Sleeper {
    due: Instant,
    order: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}

impl Eq for Sleeper {}

impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pacer {
    /// The pacer for an offered rate: precise up to [`PRECISE_MAX_RATE`], tokio's above, and
    /// no thread for a flat-out run (rate 0), which never waits for a due time.
    /// The precise one leads by [`MAX_LEAD`], or less where that would spin past
    /// [`SPIN_BUDGET`].
    pub fn for_rate(per_sec: f64) -> std::io::Result<Self> {
        if per_sec > 0.0 && per_sec <= PRECISE_MAX_RATE {
            Self::precise(MAX_LEAD.min(Duration::from_secs_f64(SPIN_BUDGET / per_sec)))
        } else {
            Ok(Self::Tokio)
        }
    }

    /// Starts a precise pacer's thread, waking sleepers `lead` early to spin until their
    /// deadlines.
    pub fn precise(lead: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("uchat-bench-pacer".into())
            .spawn(move || wake_on_time(&theirs, lead))?;
        Ok(Self::Precise(Arc::new(Handle { shared, lead })))
    }

    /// Returns at `due` (at once when it has passed).
    pub async fn sleep_until(&self, due: Instant) {
        let handle = match self {
            Self::Tokio => return tokio::time::sleep_until(due.into()).await,
            Self::Precise(handle) => handle,
        };
        if due <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        {
            let shared = &handle.shared;
            let mut state = shared.lock();
            let order = state.next;
            state.next += 1;
            state.sleepers.push(Reverse(Sleeper { due, order, wake }));
            shared.changed.notify_one();
        }
        // The thread only drops a sleeper by waking it, or all of them when stopped; either
        // way the wait is over. Woken, it is at most the lead early.
        if woken.await.is_ok() && due.saturating_duration_since(Instant::now()) <= handle.lead {
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_one();
    }
}

/// The thread: wakes every sleeper whose deadline is at most `lead` away, then waits for the
/// next one to be, or for a new sleeper.
fn wake_on_time(shared: &Shared, lead: Duration) {
    let mut state = shared.lock();
    while !state.stopped {
        let now = Instant::now() + lead;
        while state
            .sleepers
            .peek()
            .is_some_and(|Reverse(first)| first.due <= now)
        {
            if let Some(Reverse(sleeper)) = state.sleepers.pop() {
                let _ = sleeper.wake.send(());
            }
        }
        state = match state.sleepers.peek() {
            Some(Reverse(first)) => {
                let wait = first.due.saturating_duration_since(now);
                shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sleepers_wake_at_or_after_their_deadlines_in_order() {
        // A lead far past any wake-up's lateness: the spin, not the thread, decides when.
        let pacer = Pacer::precise(Duration::from_millis(5)).unwrap();
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, ms) in [30u64, 10, 20].into_iter().enumerate() {
            let (pacer, tx) = (pacer.clone(), tx.clone());
            tokio::spawn(async move {
                let due = start + Duration::from_millis(ms);
                pacer.sleep_until(due).await;
                tx.send((i, Instant::now() >= due)).unwrap();
            });
        }
        drop(tx);
        let mut woken = Vec::new();
        while let Some(one) = rx.recv().await {
            woken.push(one);
        }
        assert_eq!(woken, [(1, true), (2, true), (0, true)]);
    }

    #[tokio::test]
    async fn a_deadline_passed_returns_at_once() {
        for pacer in [
            Pacer::precise(MAX_LEAD).unwrap(),
            Pacer::for_rate(5_000.0).unwrap(),
        ] {
            pacer.sleep_until(Instant::now()).await;
        }
    }

    #[test]
    fn low_rates_are_paced_precisely_and_high_rates_by_tokio() {
        let lead = |rate| match Pacer::for_rate(rate) {
            Ok(Pacer::Precise(handle)) => Some(handle.lead),
            _ => None,
        };
        assert_eq!(lead(20.0), Some(MAX_LEAD));
        assert_eq!(
            lead(1_000.0),
            Some(Duration::from_micros(10)),
            "1 % of a core"
        );
        assert!(matches!(Pacer::for_rate(5_000.0), Ok(Pacer::Tokio)));
        assert!(matches!(Pacer::for_rate(0.0), Ok(Pacer::Tokio)));
    }

    #[test]
    fn the_thread_ends_with_the_last_handle() {
        let Ok(Pacer::Precise(handle)) = Pacer::precise(MAX_LEAD) else {
            panic!("not a precise pacer");
        };
        let shared = Arc::downgrade(&handle.shared);
        drop(handle);
        // The thread holds its own reference until it sees the stop.
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.strong_count() > 0 {
            assert!(Instant::now() < deadline, "the pacing thread did not end");
            std::thread::yield_now();
        }
    }
}
