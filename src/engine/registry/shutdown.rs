//! Shutting down, and why no accepted order is lost.
//!
//! # The steps
//!
//! 1. [`close`](Registry::close) stores `closed` (and, for `shutdown_now`,
//!    `cancel_queued` first), issues a `SeqCst` fence, and wakes every
//!    baker.
//! 2. A submitter from outside reads `closed` before it builds its order and
//!    refuses at once if it is set; one that pushed before seeing it reads
//!    it again after its push and fence ([`Registry::inject`]).
//! 3. A baker leaves its loop only when it has seen `closed`, is out of
//!    work, and after its own `SeqCst` fence finds every queue empty, its
//!    own deque included (the loop's exit probe, in
//!    [`baker_thread`](crate::engine::baker_thread)). Its stop hook runs on
//!    the way out; whatever the hook left on the baker's deque runs too.
//! 4. For `shutdown_now`, the closer cancels every queued order itself
//!    ([`cancel_queued_now`](Registry::cancel_queued_now)), and the bakers
//!    cancel what they take from then on. Work that belongs to work under
//!    way (the forks of a `join`, scoped orders, a carried `join` or
//!    `install`) cannot be cancelled: the closer moves it to the injector
//!    and wakes every baker, a waiting owner included.
//! 5. The closer closes the timer ([`crate::engine::timer`]): delayed orders
//!    whose deadline had not come are cancelled on the closing thread, and
//!    the timer thread returns; the closer that waits for the bakers joins
//!    it first.
//! 6. The last baker out drains the injector
//!    ([`baker_leaving`](Registry::baker_leaving)); a submitter that pushed
//!    after that drains it itself
//!    ([`drain_if_deserted`](Registry::drain_if_deserted)).
//! 7. The closer waits until every baker left, then until their threads are
//!    joined, by it or by a concurrent closer
//!    ([`wait_for_bakers`](Registry::wait_for_bakers)). A closer running on
//!    one of the bakery's own threads does not wait: it would wait for
//!    itself. No baker is started once the bakery is closed, and one started
//!    just before is counted before its thread runs (see [`super::staff`]).
//!
//! # Why every accepted order reports exactly one outcome
//!
//! * A submitter whose second look still says "open" pushed before the
//!   close's store in the total order of `SeqCst` operations, so every
//!   baker's final check, which follows its own read of `closed`, sees the
//!   order: it runs. If the second look says "closed", the submitter tries to
//!   reject the order with the compare-and-swap that also decides whether a
//!   baker started it (see [`crate::engine::task`]): either it wins and
//!   reports `Rejected` (or hands the closure back), or a baker won and runs
//!   it.
//! * A rejected order's queue entry stays in the injector until somebody
//!   drains it. Of the last baker's drain and a late submitter's, whichever
//!   comes second in the fences' order sees the other's work. Draining
//!   rejects what is still pending and runs, on the draining thread, what
//!   cannot be refused.
//! * Orders the bakers submit while the bakery closes go onto their own
//!   deques, and a baker leaves only with an empty deque.
//! * Delayed orders still in the timer are cancelled by step 5; one the
//!   timer handed over races the close like any outside submit (see
//!   [`crate::engine::timer`]).
//! * Under `shutdown_now`, a batch in flight (taken from the injector, not
//!   yet on its baker's deque; see [`crate::engine::injector`]) is missed by
//!   the closer's sweep; the baker that holds it cancels those orders as it
//!   takes them, or a colleague steals and cancels them. A baker waiting
//!   deep in a `join` for a fork that the sweep moved to the injector sleeps
//!   as `Waiting`, which new work does not wake; the sweep wakes every baker,
//!   and such a baker checks the injector under its slot's lock before it
//!   sleeps, so it takes its fork back in either order.

use super::Registry;
use crate::engine::baker_record::Activity;
use crate::engine::job::{JobRef, Mode};
use crate::engine::sync::{fence, local, Ordering};
use crossbeam_deque::Steal;
use std::time::Instant;

impl Registry {
    /// Stops taking orders and wakes every baker so they finish the queues
    /// (or, with `cancel_queued`, cancel them) and leave.
    pub(crate) fn close(&self, cancel_queued: bool) {
        if cancel_queued {
            self.cancel_queued.store(true, Ordering::SeqCst);
        }
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.sleep.wake_all(&self.roster);
        if let Some(monitor) = &self.monitor {
            monitor.close();
        }
        self.timer.close();
    }

    /// Cancels every queued order right away, from the calling thread
    /// (`shutdown_now`), so that handles report `Cancelled` even while every
    /// baker is busy. Jobs that cannot be cancelled are moved to the
    /// injector, where any baker, including their waiting owner, picks them
    /// up.
    pub(crate) fn cancel_queued_now(&self) {
        let mut keep = Vec::new();
        let mut drain = |steal: &dyn Fn() -> Steal<JobRef>| loop {
            match steal() {
                Steal::Success(job) => match job.try_cancel() {
                    Ok(fate) => self.count_fate_off_baker(fate),
                    Err(job) => keep.push(job),
                },
                Steal::Empty => break,
                Steal::Retry => {}
            }
        };
        drain(&|| self.injector.pop().map_or(Steal::Empty, Steal::Success));
        for record in self.roster.records() {
            drain(&|| record.stealer().steal());
        }
        if !keep.is_empty() {
            for job in keep {
                self.injector.push(job);
            }
            // Wake every baker, including one waiting deep in a join for one
            // of these forks. If they all left meanwhile, nobody else will
            // take what was put back.
            self.sleep.wake_all(&self.roster);
            self.drain_if_deserted();
        }
    }

    /// A baker is leaving its main loop for good. The last one out drains
    /// the injector, so that nothing pushed there while the bakers were
    /// leaving is stranded.
    pub(crate) fn baker_leaving(&self) {
        if self.present.fetch_sub(1, Ordering::SeqCst) == 1 {
            fence(Ordering::SeqCst);
            self.drain_injector();
        }
    }

    /// After pushing to the injector and finding the pool closed: if every
    /// baker has left, drain the injector here. Either this reads `present`
    /// after the last baker's decrement and drains, or that baker's drain
    /// comes after this push in the fences' order and sees it.
    pub(crate) fn drain_if_deserted(&self) {
        fence(Ordering::SeqCst);
        if self.present.load(Ordering::SeqCst) == 0 {
            self.drain_injector();
        }
    }

    /// Empties the injector with no baker left to run what is in it:
    /// orders still pending are rejected, work that cannot be refused (a
    /// scoped order, a fork-join or `install` carried in from outside) runs
    /// on the calling thread, and entries of orders that already ran only
    /// give up their reference.
    fn drain_injector(&self) {
        while let Some(job) = self.injector.pop() {
            let fate = job.execute(Mode::RejectOrRun);
            self.count_fate_off_baker(fate);
        }
    }

    /// `count` bakers are about to start: they count as present and alive
    /// from now.
    pub(crate) fn bakers_arriving(&self, count: usize) {
        *self.alive.lock() += count;
        self.present.fetch_add(count, Ordering::SeqCst);
    }

    /// Called by each baker as its thread ends (or fails to start).
    pub(crate) fn baker_left(&self) {
        let mut alive = self.alive.lock();
        *alive -= 1;
        self.gone.notify_all();
    }

    /// How many bakers are running an order or a hook right now (blocked in
    /// one included).
    pub(crate) fn busy_bakers(&self) -> usize {
        self.roster
            .records()
            .filter(|record| matches!(record.activity(), Activity::Working | Activity::Blocked))
            .count()
    }

    /// Waits until every baker left, then until their threads are joined:
    /// by this call, or by a concurrent one that got there first.
    ///
    /// With a `deadline`, gives up once it passes while some baker is still
    /// at work or some order still queued, and returns `Err` with how many
    /// bakers were at work. If nobody is at work and nothing is queued, the
    /// bakers still there are on their way out with nothing left to run, so
    /// it waits for them whatever the deadline: a shutdown of an idle bakery
    /// succeeds even with no time at all. Joining a thread waits for its
    /// thread-local destructors, which no deadline bounds.
    ///
    /// Must not be called from one of this pool's own threads, which would
    /// wait for itself.
    pub(crate) fn wait_for_bakers(&self, mut deadline: Option<Instant>) -> Result<(), usize> {
        debug_assert_ne!(
            local::home(),
            self.id.as_home(),
            "a baker waiting for itself"
        );
        self.timer.join();
        {
            let mut alive = self.alive.lock();
            while *alive > 0 {
                match deadline {
                    None => self.gone.wait(&mut alive),
                    Some(at) => {
                        if self.gone.wait_until(&mut alive, at).timed_out() && *alive > 0 {
                            let busy = self.busy_bakers();
                            if busy > 0 || self.queued() > 0 {
                                return Err(busy);
                            }
                            deadline = None;
                        }
                    }
                }
            }
        }
        let mut staff = self.lock_staff();
        if staff.joining {
            // Every baker has left its loop; the other call is joining their
            // threads, which waits only for their thread-local destructors.
            while !staff.joined {
                self.joined.wait(&mut staff);
            }
            return Ok(());
        }
        staff.joining = true;
        let handles = std::mem::take(&mut staff.handles);
        drop(staff);
        for thread in handles {
            // A baker's thread never unwinds (its loop aborts instead), so
            // there is no panic to report here.
            let _ = thread.join();
        }
        self.lock_staff().joined = true;
        self.joined.notify_all();
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Every baker has left and drained the injector on its way out;
        // whatever a submitter pushed since was drained by that submitter.
        // This is the last safety net.
        self.drain_injector();
    }
}
