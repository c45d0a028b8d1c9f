//! Rate limits: token buckets by key (an IP address, a user).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Keys tracked before buckets that are full again are forgotten.
const MAX_TRACKED: usize = 100_000;

/// A rate: `burst` at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Most tokens a key can hold (and spend at once).
    pub burst: u32,
    /// Tokens added per minute.
    pub per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets for one kind of request.
#[derive(Debug, Clone)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Arc<Mutex<HashMap<K, Bucket>>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// Buckets at `rate`.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one token for `key`; false when none is left.
    pub fn allow(&self, key: &K) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: &K, now: Instant) -> bool {
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = f64::from(self.rate.per_minute) / 60.0;
        let refill = |b: &Bucket| {
            (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            buckets.retain(|_, b| refill(b) < burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = refill(bucket);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let limiter = Limiter::new(Rate {
            burst: 3,
            per_minute: 60,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allow_at(&1, start));
        }
        assert!(!limiter.allow_at(&1, start), "the burst is spent");
        assert!(
            limiter.allow_at(&2, start),
            "another key has its own bucket"
        );
        assert!(!limiter.allow_at(&1, start + Duration::from_millis(500)));
        assert!(limiter.allow_at(&1, start + Duration::from_millis(1100)));
    }
}
