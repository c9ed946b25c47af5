//! Delayed and repeating orders: `submit_after`, `submit_at`,
//! `submit_every` and `submit_with_fixed_delay`. The orders wait in the
//! bakery's timer, holding no baker, until their time comes (the protocol
//! is in `engine/timer.rs`).

mod repeating;

pub use repeating::Repeating;

use crate::bakery::Bakery;
use crate::engine::timer;
use crate::order::Order;
use repeating::Rate;
use std::time::{Duration, Instant};

impl Bakery {
    /// Submits an order to run once `delay` has passed, and returns its
    /// handle.
    ///
    /// The order waits in the bakery's timer, holding no baker, and then
    /// enters the shared queue like an order from [`submit`](Bakery::submit).
    /// The handle is an ordinary [`Order`]: join it, wait for it with a
    /// timeout, `.await` it, or drop it to detach the order. Joining it,
    /// even from a baker, never runs it before its time.
    /// [`cancel`](Order::cancel) before the deadline stops it and drops the
    /// closure right away, on the cancelling thread.
    ///
    /// A delay too long for [`Instant`] waits until the bakery shuts down.
    ///
    /// # Shutting down
    ///
    /// Once a shutdown has begun, a delayed order is refused, also from the
    /// bakery's own bakers: its handle reports
    /// [`OrderError::Rejected`](crate::OrderError::Rejected). A shutdown of
    /// any kind ([`shutdown`](Bakery::shutdown),
    /// [`shutdown_now`](Bakery::shutdown_now),
    /// [`shutdown_timeout`](Bakery::shutdown_timeout), or dropping the last
    /// handle) cancels every delayed order still waiting for its time: its
    /// handle reports [`OrderError::Cancelled`](crate::OrderError::Cancelled),
    /// and nothing waits for its deadline. One whose time came before is an
    /// ordinary queued order: `shutdown` runs it, `shutdown_now` cancels it.
    ///
    /// The order is also refused if the operating system will not start the
    /// timer's thread (the first delayed order starts it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let start = Instant::now();
    /// let reminder = bakery.submit_after(Duration::from_millis(20), move || start.elapsed());
    /// assert!(reminder.join()? >= Duration::from_millis(20));
    /// # Ok::<(), bakehouse::OrderError>(())
    /// ```
    ///
    /// Cancelled before its time, it never runs:
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let tomorrow = bakery.submit_after(Duration::from_secs(24 * 3600), || "croissants");
    /// assert!(tomorrow.cancel());
    /// assert!(tomorrow.join().unwrap_err().is_cancelled());
    /// ```
    pub fn submit_after<F, T>(&self, delay: Duration, order: F) -> Order<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_at(deadline_after(Instant::now(), delay), order)
    }

    /// Submits an order to run once `when` has come, and returns its
    /// handle: [`submit_after`](Bakery::submit_after) with a deadline
    /// instead of a delay. A deadline already past runs the order as soon
    /// as the timer sees it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let bakery = bakehouse::Bakery::new(2);
    /// let opening = Instant::now() + Duration::from_millis(10);
    /// let doors = bakery.submit_at(opening, move || Instant::now() >= opening);
    /// assert!(doors.join()?, "not before its time");
    /// # Ok::<(), bakehouse::OrderError>(())
    /// ```
    pub fn submit_at<F, T>(&self, when: Instant, order: F) -> Order<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Order::new(timer::submit_at(
            self.registry(),
            when,
            order,
            self.order_kind(),
        ))
    }

    /// Runs `order` every `period`, on some baker, until cancelled or until
    /// the bakery shuts down; the first run comes one period from now.
    ///
    /// Between runs nothing holds a baker: each run is a delayed order.
    /// Runs never overlap: the next one is scheduled when a run ends. The
    /// runs keep a fixed rate, aiming at whole periods from the start; when
    /// a run overruns its period (or the bakers are busy), the ticks it
    /// missed are skipped, not bunched: the next run comes at the next tick
    /// still ahead. For a fixed pause between the end of one run and the
    /// start of the next, use
    /// [`submit_with_fixed_delay`](Bakery::submit_with_fixed_delay).
    ///
    /// A run that panics goes to the bakery's
    /// [`panic_handler`](crate::BakeryBuilder::panic_handler) (or is dropped
    /// quietly if there is none), and the schedule goes on.
    ///
    /// Dropping the [`Repeating`] handle does not stop the schedule, as
    /// dropping an [`Order`] does not cancel it; call
    /// [`Repeating::cancel`]. A shutdown of any kind stops it: the next run,
    /// waiting for its time, is cancelled, and a run that ends after the
    /// shutdown began schedules no other. (A run already handed to the
    /// bakers is a queued order like any other: `shutdown` lets it run,
    /// `shutdown_now` cancels it.)
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let check = bakery.submit_every(Duration::from_millis(5), move || {
    ///     let _ = tx.send("oven at temperature");
    /// });
    /// for _ in 0..3 {
    ///     assert_eq!(rx.recv().unwrap(), "oven at temperature");
    /// }
    /// check.cancel();
    /// while !check.is_stopped() {
    ///     std::thread::yield_now(); // the third run may still be ending
    /// }
    /// assert!(check.runs() >= 3);
    /// ```
    pub fn submit_every<F>(&self, period: Duration, order: F) -> Repeating
    where
        F: FnMut() + Send + 'static,
    {
        assert!(!period.is_zero(), "period must be greater than zero");
        Repeating::start(self, Rate::Fixed(period), Box::new(order))
    }

    /// Runs `order` again and again, `delay` after each run ends, until
    /// cancelled or until the bakery shuts down; the first run comes `delay`
    /// from now.
    ///
    /// Like [`submit_every`](Bakery::submit_every), except that the pause
    /// between runs is fixed, not the rate: a slow run pushes every later
    /// one back. Runs never overlap, a panicking run goes to the panic
    /// handler and the schedule goes on, and dropping the handle does not
    /// stop it.
    ///
    /// # Panics
    ///
    /// If `delay` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let sweeps = Arc::new(AtomicU32::new(0));
    /// let counter = sweeps.clone();
    /// let sweeping = bakery.submit_with_fixed_delay(Duration::from_millis(2), move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    /// });
    /// while sweeping.runs() < 2 {
    ///     std::thread::yield_now();
    /// }
    /// bakery.shutdown();
    /// assert!(sweeping.is_stopped(), "a shutdown stops it");
    /// assert_eq!(sweeps.load(Ordering::SeqCst) as u64, sweeping.runs());
    /// ```
    pub fn submit_with_fixed_delay<F>(&self, delay: Duration, order: F) -> Repeating
    where
        F: FnMut() + Send + 'static,
    {
        assert!(!delay.is_zero(), "delay must be greater than zero");
        Repeating::start(self, Rate::AfterRun(delay), Box::new(order))
    }
}

/// `delay` after `now`, or, for a delay too long for `Instant`, the latest
/// deadline it can hold within a century: for ever, as far as a bakery is
/// concerned.
fn deadline_after(now: Instant, delay: Duration) -> Instant {
    let mut delay = delay.min(Duration::from_secs(100 * 365 * 24 * 3600));
    loop {
        if let Some(deadline) = now.checked_add(delay) {
            return deadline;
        }
        delay /= 2;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::engine::timer::MIN_SWEEP;

    /// The multiplier from `BAKERY_STRESS_SCALE`, as in `tests/stress.rs`.
    fn scaled(base: usize) -> usize {
        let scale = std::env::var("BAKERY_STRESS_SCALE")
            .ok()
            .and_then(|value| value.parse().ok())
            .filter(|&scale: &f64| scale > 0.0)
            .unwrap_or(1.0);
        ((base as f64 * scale) as usize).max(1)
    }

    /// Submitting and cancelling far timers, over and over, keeps the
    /// timer's heap at the sweep's floor: cancelled entries do not pile up.
    #[test]
    fn cancelled_timers_do_not_pile_up() {
        let bakery = Bakery::new(1);
        let mut largest = 0;
        for _ in 0..scaled(20_000) {
            let order = bakery.submit_after(Duration::from_secs(3600), || ());
            assert!(order.cancel());
            largest = largest.max(bakery.registry().timer().len());
        }
        assert!(largest <= MIN_SWEEP, "the heap grew to {largest} entries");
    }

    /// With live timers among the cancelled ones, the heap stays within
    /// twice the live ones (plus the floor).
    #[test]
    fn the_heap_stays_within_twice_the_live_timers() {
        let bakery = Bakery::new(1);
        let live: Vec<_> = (0..200)
            .map(|_| bakery.submit_after(Duration::from_secs(3600), || ()))
            .collect();
        for _ in 0..scaled(10_000) {
            let order = bakery.submit_after(Duration::from_secs(3600), || ());
            order.cancel();
            let len = bakery.registry().timer().len();
            assert!(len <= 2 * (live.len() + 1) + MIN_SWEEP, "{len} entries");
        }
        bakery.shutdown();
        for order in live {
            assert!(order.join().unwrap_err().is_cancelled());
        }
    }

    #[test]
    fn a_delay_too_long_for_instant_is_far_away() {
        let now = Instant::now();
        let deadline = deadline_after(now, Duration::MAX);
        assert!(deadline > now + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
