//! A connection's byte budget: what its outbound queue holds, and what the answers it asked
//! for may add once they are made.
//!
//! Two policies meet here, one per way a message reaches the queue:
//!
//! - **Pushed events** (other people's messages, presence) are refused once the queue holds
//!   the budget, and the connection is closed: waiting would let one reader that stopped
//!   reading hold everything sent to it, or hold up the senders. Its messages are stored; it
//!   syncs when it reconnects.
//! - **Answers** are the client's own doing, so the client waits instead: before a request is
//!   dispatched it reserves the most its answer can weigh (a page: one frame), and the next
//!   request is not read while the queue and the reservations would pass the budget. A
//!   client that pipelines requests and does not read stalls itself; its writer's stall
//!   timeout then closes it. Reservations never close a reading client, and events do not
//!   count them: an event is refused only by what is really queued.
//!
//! So a connection holds at most the budget in its queue plus one answer's excess, and the
//! budget again in answers being made (docs/SECURITY.md gives the figures).

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// One connection's budget.
#[derive(Debug)]
pub struct Budget {
    state: Mutex<State>,
    max: usize,
    freed: Notify,
}

#[derive(Debug, Default)]
struct State {
    queued: usize,
    reserved: usize,
}

/// Room taken for an answer being made; given back when dropped (or turned into the
/// answer's weight in the queue by [`Budget::queue_answer`]).
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.update(|state| {
            state.reserved = state.reserved.saturating_sub(self.bytes);
        });
        self.budget.freed.notify_waiters();
    }
}

impl Budget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            max,
            freed: Notify::new(),
        })
    }

    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Counts an event of `weight` into the queue if what is queued leaves room for it.
    pub fn try_queue(&self, weight: usize) -> bool {
        self.update(|state| {
            let room = state.queued.saturating_add(weight) <= self.max;
            if room {
                state.queued += weight;
                crate::telemetry::outbound(weight as f64);
            }
            room
        })
    }

    /// Counts an answer of `weight` into the queue in place of its reservation, whatever
    /// the budget: its room was taken before it was asked for.
    pub fn queue_answer(&self, weight: usize, reservation: Reservation) {
        self.update(|state| state.queued = state.queued.saturating_add(weight));
        crate::telemetry::outbound(weight as f64);
        drop(reservation);
    }

    /// Takes room for an answer of at most `bound` bytes (never more than the whole budget,
    /// so any one answer fits an empty queue), waiting while the queue and the other
    /// reservations leave too little. Cancel-safe.
    pub async fn reserve(self: &Arc<Self>, bound: usize) -> Reservation {
        let bytes = bound.min(self.max);
        loop {
            // Registered before checking, so a release between the check and the wait wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let taken = self.update(|state| {
                let room = state.queued + state.reserved + bytes <= self.max;
                if room {
                    state.reserved += bytes;
                }
                room
            });
            if taken {
                return Reservation {
                    budget: self.clone(),
                    bytes,
                };
            }
            freed.await;
        }
    }

    /// The writer wrote `weight` bytes of the queue (or a message counted in was not queued
    /// after all).
    pub fn written(&self, weight: usize) {
        let written = self.update(|state| {
            let written = weight.min(state.queued);
            state.queued -= written;
            written
        });
        crate::telemetry::outbound(-(written as f64));
        self.freed.notify_waiters();
    }

    /// Bytes queued and reserved, for tests and metrics.
    pub fn held(&self) -> (usize, usize) {
        self.update(|state| (state.queued, state.reserved))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_room_and_events_see_only_the_queue() {
        let budget = Budget::new(1000);
        let first = budget.reserve(600).await;
        // A second large answer waits: 600 + 600 would pass the budget.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(600).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished());
        // Events are refused only by what is queued, not by reservations.
        assert!(budget.try_queue(300));
        assert!(!budget.try_queue(800));

        // The first answer is made (smaller than reserved) and queued; the writer writes it.
        budget.queue_answer(100, first);
        assert_eq!(budget.held(), (400, 0));
        budget.written(400);
        let second = waiting.await.unwrap();
        assert_eq!(budget.held(), (0, 600));
        drop(second);
        assert_eq!(budget.held(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn one_answer_larger_than_the_budget_still_fits_an_empty_queue() {
        let budget = Budget::new(1000);
        let huge = budget.reserve(5000).await;
        assert_eq!(budget.held(), (0, 1000));
        budget.queue_answer(4000, huge);
        // Over the budget by that one answer: events wait for the writer.
        assert_eq!(budget.held(), (4000, 0));
        assert!(!budget.try_queue(1));
        budget.written(4000);
        assert!(budget.try_queue(1));
    }
}
