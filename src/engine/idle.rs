//! Waiting until a bakery is idle: no order queued, none running, with
//! nothing to pay while nobody waits.
//!
//! # The pieces
//!
//! * A **waiter count**, raised by every thread in `Bakery::wait_idle` for
//!   as long as it waits.
//! * A **lock and a condition variable**, under which a waiter checks
//!   whether the bakery is idle and then sleeps.
//! * The bakers' **activity words** (see [`super::baker_record`]): a baker
//!   says `Idle` before it sleeps for want of work and `Vacant` as it goes
//!   home.
//!
//! # The protocol
//!
//! A waiter:
//!
//! 1. adds one to the waiter count (`SeqCst`), then issues a `SeqCst`
//!    fence;
//! 2. takes the lock, and checks whether the bakery is idle
//!    (`Registry::is_idle`); if it is, it is done;
//! 3. otherwise waits on the condition variable, which releases the lock,
//!    and checks again when woken.
//!
//! A baker, each time it stops working for good or for now (it says `Idle`
//! or `Vacant`), issues a `SeqCst` fence after saying so and reads the
//! waiter count; if it is not zero, it takes the lock and wakes every
//! waiter, which checks for itself. A baker never does more than that one
//! load while nobody waits, and it does it only when it runs out of work,
//! never per order.
//!
//! # Why no waiter sleeps through the idle moment
//!
//! The bakery becomes idle only when its last busy baker runs out of work
//! and says `Idle` (or `Vacant`): queued work keeps some baker busy, or
//! wakes one (see [`super::sleep`]). Take that baker B and a waiter W. Both
//! run "write; `SeqCst` fence; read", as in the sleep protocol: B writes
//! its activity and reads the count, W writes the count and reads the
//! activities. Whichever fence comes second, its thread's read sees the
//! other's write: either W's check (step 2) sees B idle, or B sees W
//! counted and wakes it. B's wake-up takes the lock, so it cannot fall
//! between W's check and W's sleep: W holds the lock from the one to the
//! other.
//!
//! # Why a waiter returns only at a true idle moment
//!
//! `Registry::is_idle` reads every baker's activity and job count, then
//! every queue, then the activities and counts again, with `SeqCst` fences
//! between. If every baker was idle with the same count both times, then
//! when the queues were read no baker was running a job: a baker that was
//! idle at the first read and started a job before the second would have
//! counted it. And the queues were empty then. A baker that was idle at the
//! first read takes work only from a queue, through the injector's lock or
//! a deque its owner filled from there, so the queue read either still saw
//! that work or sees the baker's own word saying it is searching. So there
//! was a moment, while the queues were read, with nothing queued and
//! nothing running. Orders submitted after it may already be running when
//! the waiter returns: an idle moment passes, the bakery stays open.
//!
//! The waiter count and its wake-up are modelled with loom in
//! `idle/loom_tests.rs`.

use crate::engine::sync::{fence, AtomicUsize, Condvar, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Instant;

/// The waiters for an idle bakery, and how bakers wake them.
pub(crate) struct IdleWatch {
    /// Threads inside [`wait`](Self::wait).
    waiters: CachePadded<AtomicUsize>,
    lock: Mutex<()>,
    idle: Condvar,
}

impl IdleWatch {
    pub(crate) fn new() -> IdleWatch {
        IdleWatch {
            waiters: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(()),
            idle: Condvar::new(),
        }
    }

    /// A baker said it is idle or vacant, and issued a `SeqCst` fence after
    /// saying so: wakes the waiters, if any, to check.
    #[inline]
    pub(crate) fn baker_stopped(&self) {
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.wake_waiters();
        }
    }

    #[cold]
    fn wake_waiters(&self) {
        let _lock = self.lock.lock();
        self.idle.notify_all();
    }

    /// Waits until `is_idle()` says so, checked under the lock, or until
    /// `deadline` passes. Returns whether it saw the bakery idle.
    pub(crate) fn wait(&self, is_idle: impl Fn() -> bool, deadline: Option<Instant>) -> bool {
        /// Takes the waiter off the count, even if `is_idle` panics.
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }

        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&self.waiters);
        fence(Ordering::SeqCst);
        let mut lock = self.lock.lock();
        loop {
            if is_idle() {
                return true;
            }
            match deadline {
                None => self.idle.wait(&mut lock),
                Some(deadline) => {
                    if self.idle.wait_until(&mut lock, deadline).timed_out() {
                        return is_idle();
                    }
                }
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
