//! A repeating order: one delayed order per run, each scheduled by the run
//! before it when it ends, so runs never overlap and nothing holds a baker
//! between them.
//!
//! The schedule's state is shared by the handle and the run in flight:
//! `cancelled` (set by the handle), `stopped` (no run under way and none to
//! come), the run count, and, under a lock, the handle of the next run's
//! delayed order. A run reschedules under that lock only if not cancelled;
//! `cancel` sets `cancelled` and cancels the order found there under the
//! same lock: either the run's lock comes first, and `cancel` finds and
//! cancels the new order, or `cancel`'s comes first, and the run sees
//! `cancelled` and schedules nothing. A next run's closure dropped unrun
//! (cancelled by the handle or by a shutdown, or refused by a closed
//! bakery) marks the schedule stopped.

use crate::bakery::Bakery;
use crate::engine::registry::Registry;
use crate::engine::sync::Arc as EngineArc;
use crate::engine::timer;
use crate::engine::unwind;
use crate::order::{Order, OrderKind};
use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the next run is timed.
#[derive(Clone, Copy, Debug)]
pub(super) enum Rate {
    /// Every period from the start, missed ticks skipped.
    Fixed(Duration),
    /// A fixed pause after each run ends.
    AfterRun(Duration),
}

impl Rate {
    /// The first run's deadline.
    fn first(self, now: Instant) -> Instant {
        match self {
            Rate::Fixed(period) | Rate::AfterRun(period) => super::deadline_after(now, period),
        }
    }

    /// The next run's deadline, after a run due at `due` ended at `now`.
    fn next(self, due: Instant, now: Instant) -> Instant {
        match self {
            Rate::Fixed(period) => next_tick(due, period, now),
            Rate::AfterRun(delay) => super::deadline_after(now, delay),
        }
    }
}

/// The first tick of the fixed-rate schedule `due + k * period` (k ≥ 1)
/// that is still ahead of `now`: ticks already missed are skipped.
fn next_tick(due: Instant, period: Duration, now: Instant) -> Instant {
    let next = super::deadline_after(due, period);
    if next > now {
        return next;
    }
    let behind = now.duration_since(next).as_nanos();
    let skipped = behind / period.as_nanos() + 1;
    u32::try_from(skipped)
        .ok()
        .and_then(|skipped| period.checked_mul(skipped))
        .and_then(|ahead| next.checked_add(ahead))
        .unwrap_or_else(|| super::deadline_after(now, period))
}

/// The handle to a repeating order, from
/// [`Bakery::submit_every`](crate::Bakery::submit_every) or
/// [`Bakery::submit_with_fixed_delay`](crate::Bakery::submit_with_fixed_delay).
///
/// [`cancel`](Repeating::cancel) stops the schedule, [`runs`](Repeating::runs)
/// counts the runs that ended, [`is_stopped`](Repeating::is_stopped) says
/// whether it is over.
///
/// # Dropping the handle does not stop the schedule
///
/// As with an [`Order`], dropping the handle lets the schedule run on:
/// until the bakery shuts down, which stops every repeating order. Call
/// [`cancel`](Repeating::cancel) to stop it sooner; use
/// [`detach`](Repeating::detach) to say out loud that it runs on.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let bakery = bakehouse::Bakery::new(2);
/// let (tx, rx) = mpsc::channel();
/// let mut batch = 0;
/// let proofing = bakery.submit_every(Duration::from_millis(2), move || {
///     batch += 1;
///     let _ = tx.send(batch);
/// });
/// assert_eq!(rx.recv().unwrap(), 1);
/// assert_eq!(rx.recv().unwrap(), 2, "runs never overlap, and share their state");
/// proofing.cancel();
/// ```
///
/// `Repeating` is `Send` and `Sync`:
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<bakehouse::Repeating>();
/// ```
pub struct Repeating {
    shared: Arc<Shared>,
}

/// What the handle and the runs share.
struct Shared {
    rate: Rate,
    /// The user's closure; locked by the one run under way.
    job: Mutex<Box<dyn FnMut() + Send>>,
    runs: AtomicU64,
    cancelled: AtomicBool,
    stopped: AtomicBool,
    /// The next run's order, for `cancel` to cancel.
    next: Mutex<Option<Order<()>>>,
    registry: EngineArc<Registry>,
}

/// One run's closure.
struct Tick {
    shared: Arc<Shared>,
    due: Instant,
    ran: bool,
}

impl Repeating {
    pub(super) fn start(bakery: &Bakery, rate: Rate, job: Box<dyn FnMut() + Send>) -> Repeating {
        let shared = Arc::new(Shared {
            rate,
            job: Mutex::new(job),
            runs: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            next: Mutex::new(None),
            registry: bakery.registry().clone(),
        });
        let mut next = shared.next.lock();
        *next = Some(shared.schedule(rate.first(Instant::now())));
        drop(next);
        Repeating { shared }
    }

    /// Stops the schedule: no run starts after this returns, except one
    /// that had already begun, which finishes. Cancelling again, or after a
    /// shutdown, does nothing.
    ///
    /// The closure is dropped once no run needs it any more: here, or when
    /// the run under way ends, if the handle is gone by then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let hourly = bakery.submit_every(Duration::from_secs(3600), || println!("ding"));
    /// hourly.cancel();
    /// assert!(hourly.is_stopped(), "its first run had not begun");
    /// assert_eq!(hourly.runs(), 0);
    /// ```
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        let next = self.shared.next.lock().take();
        if let Some(order) = next {
            order.cancel();
        }
    }

    /// How many runs have ended so far (those that panicked included).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let ticking = bakery.submit_every(Duration::from_millis(1), || {});
    /// while ticking.runs() < 3 {
    ///     std::thread::yield_now();
    /// }
    /// ticking.cancel();
    /// ```
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::SeqCst)
    }

    /// Whether the schedule is over: cancelled, or stopped by a shutdown,
    /// with no run under way and none to come.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let ticking = bakery.submit_every(Duration::from_millis(1), || {});
    /// assert!(!ticking.is_stopped());
    /// bakery.shutdown();
    /// assert!(ticking.is_stopped(), "a shutdown stops every repeating order");
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::SeqCst)
    }

    /// Lets the schedule run on without a handle, until the bakery shuts
    /// down: the same as dropping the handle, said out loud.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// bakery
    ///     .submit_every(Duration::from_millis(1), move || {
    ///         let _ = tx.send(());
    ///     })
    ///     .detach();
    /// rx.recv().unwrap();
    /// rx.recv().unwrap();
    /// bakery.shutdown(); // stops it
    /// ```
    pub fn detach(self) {
        drop(self);
    }
}

impl Shared {
    /// The delayed order of the run due at `due`.
    fn schedule(self: &Arc<Self>, due: Instant) -> Order<()> {
        let tick = Tick {
            shared: self.clone(),
            due,
            ran: false,
        };
        let kind = OrderKind {
            panic_handler: self.registry.panic_handler().cloned(),
        };
        Order::new(timer::submit_at(
            &self.registry,
            due,
            move || tick.run(),
            kind,
        ))
    }
}

impl Tick {
    fn run(mut self) {
        self.ran = true;
        let shared = self.shared.clone();
        if shared.cancelled.load(Ordering::SeqCst) {
            shared.stopped.store(true, Ordering::SeqCst);
            return;
        }
        let outcome = unwind::halt_unwinding(|| (shared.job.lock())());
        shared.runs.fetch_add(1, Ordering::SeqCst);
        let finished = {
            let mut next = shared.next.lock();
            let finished = next.take();
            if !shared.cancelled.load(Ordering::SeqCst) {
                let due = shared.rate.next(self.due, Instant::now());
                *next = Some(shared.schedule(due));
            } else {
                shared.stopped.store(true, Ordering::SeqCst);
            }
            finished
        };
        // This run's own handle: dropped before its order ends, so that a
        // panic goes to the panic handler.
        drop(finished);
        drop(self);
        if let Err(payload) = outcome {
            unwind::resume_unwinding(payload);
        }
    }
}

impl Drop for Tick {
    /// A run dropped unrun: cancelled, or refused by a closed bakery. The
    /// schedule is over.
    fn drop(&mut self) {
        if !self.ran {
            self.shared.stopped.store(true, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for Repeating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repeating")
            .field("rate", &self.shared.rate)
            .field("runs", &self.runs())
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_on_time_is_one_period_on() {
        let due = Instant::now();
        let period = Duration::from_millis(10);
        assert_eq!(
            next_tick(due, period, due + Duration::from_millis(3)),
            due + period
        );
    }

    #[test]
    fn missed_ticks_are_skipped_not_bunched() {
        let due = Instant::now();
        let period = Duration::from_millis(10);
        // The run ended 35 ms after it was due: the ticks at 10, 20 and 30 ms
        // are gone, the next is at 40 ms.
        let next = next_tick(due, period, due + Duration::from_millis(35));
        assert_eq!(next, due + Duration::from_millis(40));
        // Exactly on a tick: that tick is not ahead any more.
        let next = next_tick(due, period, due + Duration::from_millis(20));
        assert_eq!(next, due + Duration::from_millis(30));
    }
}
