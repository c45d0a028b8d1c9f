//! Growing delays for logins to one account after wrong passwords, whatever the addresses
//! they come from: guessing one account's password gets slower with every failure, while
//! its owner, who knows it, still gets in after a bounded wait (a lockout would let anyone
//! lock an owner out).
//!
//! After [`FREE_FAILURES`] failures, attempts on the account are spaced [`FIRST_DELAY`] apart,
//! doubling with each further failure up to [`MAX_DELAY`]; each attempt takes the next free
//! slot, so concurrent guesses queue instead of running at once. An attempt whose slot is
//! more than [`MAX_WAIT`] away is refused at once (`RateLimited`), so no request waits longer
//! than a gateway's call timeout. A success forgets the account's failures. Names that are not
//! registered are throttled the same way, so the delay says nothing about which exist.
//!
//! Memory: one entry per account with recent failures; past [`MAX_TRACKED`] entries, those
//! idle for [`FORGET_AFTER`] are dropped, and if that is not enough, all are (the throttle then
//! starts over, which costs only the delays).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures an account may have before delays start.
pub const FREE_FAILURES: u32 = 3;

/// The spacing of attempts after the free failures.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);

/// The longest spacing.
pub const MAX_DELAY: Duration = Duration::from_secs(8);

/// The longest an attempt waits for its slot before it is refused instead.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// Failures older than this are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Accounts tracked before idle ones are dropped.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// When the next attempt may be checked.
    next_free: Instant,
    last: Instant,
}

/// What an attempt must do before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Check now.
    Now,
    /// Wait this long, then check.
    After(Duration),
    /// Refuse: too many attempts are queued for this account.
    Refused,
}

/// The per-account throttle of one account-svc.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    accounts: Mutex<HashMap<String, Failures>>,
}

/// The spacing after `count` failures.
fn spacing(count: u32) -> Duration {
    match count.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(extra) => FIRST_DELAY
            .saturating_mul(1u32 << extra.min(16))
            .min(MAX_DELAY),
    }
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next turn of an attempt on `account` at `now`.
    pub fn turn(&self, account: &str, now: Instant) -> Turn {
        let mut accounts = self.lock();
        let Some(failures) = accounts.get_mut(account) else {
            return Turn::Now;
        };
        if now.duration_since(failures.last) > FORGET_AFTER {
            accounts.remove(account);
            return Turn::Now;
        }
        let spacing = spacing(failures.count);
        if spacing.is_zero() {
            return Turn::Now;
        }
        let slot = failures.next_free.max(now);
        let wait = slot.duration_since(now);
        if wait > MAX_WAIT {
            return Turn::Refused;
        }
        failures.next_free = slot + spacing;
        if wait.is_zero() {
            Turn::Now
        } else {
            Turn::After(wait)
        }
    }

    /// Records a wrong password for `account` at `now`.
    pub fn failed(&self, account: &str, now: Instant) {
        let mut accounts = self.lock();
        if accounts.len() >= MAX_TRACKED && !accounts.contains_key(account) {
            accounts.retain(|_, f| now.duration_since(f.last) <= FORGET_AFTER);
            if accounts.len() >= MAX_TRACKED {
                accounts.clear();
            }
        }
        let failures = accounts.entry(account.to_owned()).or_insert(Failures {
            count: 0,
            next_free: now,
            last: now,
        });
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        failures.next_free = failures.next_free.max(now + spacing(failures.count));
    }

    /// Forgets `account`'s failures (its password was given).
    pub fn succeeded(&self, account: &str) {
        self.lock().remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_and_grow_to_the_cap() {
        assert_eq!(spacing(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(spacing(FREE_FAILURES), FIRST_DELAY);
        assert_eq!(spacing(FREE_FAILURES + 1), FIRST_DELAY * 2);
        assert_eq!(spacing(FREE_FAILURES + 30), MAX_DELAY);
    }

    #[test]
    fn guesses_from_anywhere_queue_and_the_owner_still_gets_in() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.turn("amy", start), Turn::Now, "free failures");
            throttle.failed("amy", start);
        }
        assert_ne!(throttle.turn("amy", start), Turn::Now, "then a delay");
        throttle.failed("amy", start);
        // Concurrent guesses each take the next slot; too many are refused, not queued.
        let mut waits = Vec::new();
        loop {
            match throttle.turn("amy", start) {
                Turn::After(wait) => waits.push(wait),
                Turn::Now => waits.push(Duration::ZERO),
                Turn::Refused => break,
            }
        }
        assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
        assert!(waits.last().is_some_and(|w| *w <= MAX_WAIT));
        // Another account is not slowed, and later the owner gets a turn again.
        assert_eq!(throttle.turn("bob", start), Turn::Now);
        let later = start + MAX_WAIT + MAX_DELAY * 4;
        assert_ne!(throttle.turn("amy", later), Turn::Refused);
        throttle.succeeded("amy");
        assert_eq!(throttle.turn("amy", later), Turn::Now);
    }

    #[test]
    fn failures_are_forgotten_after_a_while() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..10 {
            throttle.failed("amy", start);
        }
        assert_eq!(
            throttle.turn("amy", start + FORGET_AFTER + Duration::from_secs(1)),
            Turn::Now
        );
    }
}
