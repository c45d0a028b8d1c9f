//! Rate limits by key (an IP address, a user), on `governor`'s keyed GCRA limiter: one
//! timestamp per key, lock-sharded, so concurrent keys rarely wait for each other.
//!
//! Memory: keys whose allowance is full again are forgotten whenever the map passes
//! [`MAX_TRACKED`] (checked every [`SWEEP_EVERY`] calls); a flood of distinct keys costs a
//! timestamp each until then, and the sweep keeps only those still limited.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// Keys tracked before those with a full allowance again are forgotten.
pub const MAX_TRACKED: usize = 100_000;

/// Calls between two checks of the map's size.
pub const SWEEP_EVERY: u64 = 1024;

/// A rate: `burst` at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Most a key can spend at once.
    pub burst: u32,
    /// Added back per minute.
    pub per_minute: u32,
}

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A keyed limit for one kind of request.
pub struct Limiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: Arc<Keyed<K, C>>,
    calls: Arc<AtomicU64>,
}

impl<K: Hash + Eq + Clone, C: Clock> Clone for Limiter<K, C> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
            calls: self.calls.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone, C: Clock> std::fmt::Debug for Limiter<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("tracked", &self.limiter.len())
            .finish()
    }
}

fn quota(rate: Rate) -> Quota {
    let per_minute = NonZeroU32::new(rate.per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter at `rate`, on the system clock.
    pub fn new(rate: Rate) -> Self {
        Self::with_clock(rate, &DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Limiter<K, C> {
    /// A limiter at `rate` on `clock` (tests pass a fake one).
    pub fn with_clock(rate: Rate, clock: &C) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::new(
                quota(rate),
                DashMapStateStore::default(),
                clock.clone(),
            )),
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Spends one for `key`; false when its allowance is spent.
    pub fn allow(&self, key: &K) -> bool {
        if self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
            && self.limiter.len() > MAX_TRACKED
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).is_ok()
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// Refused connections are logged at most once per [`REFUSAL_LOG_INTERVAL`], with how many
/// were refused since: a flood of connections must not become a flood of log lines.
pub const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The accept loop's record of refused connections.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl RefusalLog {
    /// Notes a refusal of `peer` for `why`, logging it unless one was logged within the
    /// interval.
    pub fn refused(&mut self, peer: std::net::SocketAddr, why: &str) {
        if let Some(refused) = self.note(std::time::Instant::now()) {
            tracing::warn!(%peer, refused, "connection refused: {why}");
        }
    }

    /// Counts a refusal at `now`; returns how many to report when a line is due.
    fn note(&mut self, now: std::time::Instant) -> Option<u64> {
        self.unlogged += 1;
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::with_clock(
            Rate {
                burst: 3,
                per_minute: 60,
            },
            &clock,
        );
        for _ in 0..3 {
            assert!(limiter.allow(&1));
        }
        assert!(!limiter.allow(&1), "the burst is spent");
        assert!(limiter.allow(&2), "another key has its own allowance");
        clock.advance(Duration::from_millis(500));
        assert!(!limiter.allow(&1));
        clock.advance(Duration::from_millis(600));
        assert!(limiter.allow(&1));
    }

    #[test]
    fn refusals_are_logged_once_a_second_with_their_count() {
        let mut log = RefusalLog::default();
        let start = std::time::Instant::now();
        assert_eq!(log.note(start), Some(1));
        for n in 1..=500 {
            assert_eq!(log.note(start + Duration::from_millis(n)), None);
        }
        assert_eq!(log.note(start + Duration::from_secs(1)), Some(501));
    }

    #[test]
    fn keys_with_a_full_allowance_are_forgotten_past_the_cap() {
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::with_clock(
            Rate {
                burst: 1,
                per_minute: 60,
            },
            &clock,
        );
        for key in 0..(MAX_TRACKED as u64 + 10) {
            limiter.allow(&key);
        }
        clock.advance(Duration::from_secs(2));
        // The next sweep finds every key refilled.
        let calls = limiter.calls.load(Ordering::Relaxed);
        let to_sweep = SWEEP_EVERY - calls % SWEEP_EVERY;
        for _ in 0..=to_sweep {
            limiter.allow(&u64::MAX);
        }
        assert!(limiter.tracked() < 10, "{} keys kept", limiter.tracked());
    }
}
