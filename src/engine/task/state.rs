//! The state word of a task, and every transition of it.
//!
//! | bit         | set while …                                                     |
//! |-------------|-----------------------------------------------------------------|
//! | `SCHEDULED` | a queue holds a `JobRef` to the block: a reference              |
//! | `HANDLE`    | the handle exists: a reference                                   |
//! | `RUNNING`   | a claimant runs the closure; never together with `COMPLETED`     |
//! | `COMPLETED` | the outcome (value or panic) is written; set once, by the claimant |
//! | `CLOSED`    | the closure will never run (cancelled, rejected), or the outcome was taken |
//! | `REJECTED`  | only with `CLOSED`: refused rather than cancelled                |
//! | `AWAITER`   | a waiter may be registered in the waiter slot; never cleared     |
//! | `TIMED`     | the timer holds the queue's reference until a deadline: nobody may claim it yet; cleared when the timer hands it to the bakers |
//! | bits 16 and up | one more than the baker whose own deque got the task, or 0; set before the push, never changed |
//!
//! A task is *pending* while none of `RUNNING`, `COMPLETED` and `CLOSED` is
//! set. Every transition out of pending is one compare-and-swap through
//! [`State::leave_pending`], so exactly one of claim, cancel and reject wins.
//! The reference bits are cleared by their owners; whoever clears the last
//! one frees the block.

use crate::engine::sync::{AtomicUsize, Ordering};

pub(super) const SCHEDULED: usize = 1 << 0;
pub(super) const HANDLE: usize = 1 << 1;
const RUNNING: usize = 1 << 2;
const COMPLETED: usize = 1 << 3;
const CLOSED: usize = 1 << 4;
const REJECTED: usize = 1 << 5;
const AWAITER: usize = 1 << 6;
const TIMED: usize = 1 << 7;
const HOME_SHIFT: u32 = 16;

/// No claim, no outcome, not closed.
const NOT_PENDING: usize = RUNNING | COMPLETED | CLOSED;
/// Not claimable: not pending, or waiting for its deadline.
const NOT_CLAIMABLE: usize = NOT_PENDING | TIMED;
/// An outcome is ready (or was taken).
const FINISHED: usize = COMPLETED | CLOSED;

/// A value of the state word, read through named accessors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Snapshot(usize);

impl Snapshot {
    /// The state of a new task: referenced by a queue and a handle, to be
    /// pushed onto baker `home`'s own deque (or elsewhere, for `None`).
    pub(super) fn new_scheduled(home: Option<usize>) -> Snapshot {
        let home = home.map_or(0, |index| (index + 1) << HOME_SHIFT);
        Snapshot(SCHEDULED | HANDLE | home)
    }

    /// The state of a new delayed task: referenced by the timer (holding
    /// the queue's reference) and a handle, not claimable before its
    /// deadline.
    pub(super) fn new_timed() -> Snapshot {
        Snapshot(SCHEDULED | HANDLE | TIMED)
    }

    /// A task that only its handle references, refused before any queue
    /// saw it.
    pub(super) fn new_rejected() -> Snapshot {
        Snapshot(HANDLE | CLOSED | REJECTED)
    }

    /// A task that only its handle references, to be run by that handle.
    pub(super) fn new_unscheduled() -> Snapshot {
        Snapshot(HANDLE)
    }

    /// Nobody claimed, cancelled or rejected it yet.
    #[inline]
    pub(super) fn is_pending(self) -> bool {
        self.0 & NOT_PENDING == 0
    }

    /// A claimant is running the closure.
    #[inline]
    pub(super) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }

    /// The outcome is written; it may have been taken since.
    #[inline]
    pub(super) fn is_completed(self) -> bool {
        self.0 & COMPLETED != 0
    }

    /// The outcome is written and still in the block.
    #[inline]
    pub(super) fn has_outcome(self) -> bool {
        self.0 & (COMPLETED | CLOSED) == COMPLETED
    }

    /// Closed: never to run, or its outcome taken.
    #[inline]
    pub(super) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    /// Closed because it was refused.
    #[inline]
    pub(super) fn is_rejected(self) -> bool {
        self.0 & REJECTED != 0
    }

    /// Cancelled: closed without running, and not refused.
    #[inline]
    pub(super) fn is_cancelled(self) -> bool {
        self.0 & (CLOSED | COMPLETED | REJECTED) == CLOSED
    }

    /// It has an outcome, or had one that was taken.
    #[inline]
    pub(super) fn is_finished(self) -> bool {
        self.0 & FINISHED != 0
    }

    /// A waiter may be registered and must be woken.
    #[inline]
    pub(super) fn has_awaiter(self) -> bool {
        self.0 & AWAITER != 0
    }

    /// The handle still references the block.
    #[inline]
    pub(super) fn has_handle(self) -> bool {
        self.0 & HANDLE != 0
    }

    /// The baker whose own deque got the task, if any.
    #[inline]
    pub(super) fn home(self) -> Option<usize> {
        (self.0 >> HOME_SHIFT).checked_sub(1)
    }
}

/// Why a task leaves pending without running.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Close {
    /// By its handle, by `shutdown_now`, or by the timer at shutdown.
    Cancel,
    /// By a submitter that saw the pool close, or by a drain with no baker
    /// left.
    Reject,
}

/// What completing a task did.
pub(super) struct Completion {
    /// The state just before.
    pub(super) previous: Snapshot,
    /// Whether the queue's reference was dropped in the same step (the
    /// completer held it and no waiter needed waking).
    pub(super) released_queue_ref: bool,
}

/// The atomic state word.
pub(super) struct State(AtomicUsize);

impl State {
    pub(super) fn new(initial: Snapshot) -> State {
        State(AtomicUsize::new(initial.0))
    }

    #[inline]
    pub(super) fn load(&self, order: Ordering) -> Snapshot {
        Snapshot(self.0.load(order))
    }

    /// Applies `next` in one compare-and-swap loop until it succeeds or
    /// `next` declines (`None`). Returns the state before the change, or the
    /// state that made `next` decline.
    #[inline]
    fn update(
        &self,
        first: Ordering,
        success: Ordering,
        mut next: impl FnMut(Snapshot) -> Option<usize>,
    ) -> Result<Snapshot, Snapshot> {
        let mut state = Snapshot(self.0.load(first));
        loop {
            let Some(new) = next(state) else {
                return Err(state);
            };
            match self.0.compare_exchange_weak(state.0, new, success, first) {
                Ok(previous) => return Ok(Snapshot(previous)),
                Err(actual) => state = Snapshot(actual),
            }
        }
    }

    /// The one way out of pending: sets `bits` if none of `refuse` (the
    /// bits that end pending, and maybe more) is set. Returns the state
    /// before, or the state that refused.
    #[inline]
    fn leave_pending(
        &self,
        bits: usize,
        refuse: usize,
        success: Ordering,
    ) -> Result<Snapshot, Snapshot> {
        self.update(Ordering::Acquire, success, |state| {
            (state.0 & refuse == 0).then_some(state.0 | bits)
        })
    }

    /// pending → running: the caller now owns the closure. Declines a task
    /// still waiting for its deadline (`TIMED`), so that joining a delayed
    /// order never runs it early.
    #[inline]
    pub(super) fn claim(&self) -> bool {
        self.leave_pending(RUNNING, NOT_CLAIMABLE, Ordering::Acquire)
            .is_ok()
    }

    /// The deadline came: the timer, which holds the queue's reference,
    /// lets whoever takes the task from a queue (or joins it) claim it. The
    /// queue the timer pushes it onto publishes this to the baker that pops
    /// it.
    #[inline]
    pub(super) fn clear_timed(&self) {
        self.0.fetch_and(!TIMED, Ordering::Release);
    }

    /// pending → closed: the caller now owns the closure, to drop it or
    /// hand it back. Returns the state before, whose `AWAITER` says whether
    /// to wake a waiter.
    #[inline]
    pub(super) fn close(&self, why: Close) -> Option<Snapshot> {
        let bits = match why {
            Close::Cancel => CLOSED,
            Close::Reject => CLOSED | REJECTED,
        };
        self.leave_pending(bits, NOT_PENDING, Ordering::AcqRel).ok()
    }

    /// running → completed, by the claimant, after writing the outcome. A
    /// claimant that holds the queue's reference drops it in the same step
    /// when no waiter needs waking (it would have to touch the block again
    /// to wake it).
    #[inline]
    pub(super) fn complete(&self, holds_queue_ref: bool) -> Completion {
        let mut released_queue_ref = false;
        let previous = self
            .update(Ordering::Relaxed, Ordering::AcqRel, |state| {
                released_queue_ref = holds_queue_ref && !state.has_awaiter();
                let mut next = (state.0 & !RUNNING) | COMPLETED;
                if released_queue_ref {
                    next &= !SCHEDULED;
                }
                Some(next)
            })
            .unwrap_or_else(|_| unreachable!("completing never declines"));
        Completion {
            previous,
            released_queue_ref,
        }
    }

    /// Drops the reference `bit` ([`SCHEDULED`] or [`HANDLE`]). Returns
    /// whether it was the last one: the caller must then free the block.
    #[inline]
    pub(super) fn drop_reference(&self, bit: usize) -> bool {
        let previous = self.0.fetch_and(!bit, Ordering::AcqRel);
        previous & (SCHEDULED | HANDLE) & !bit == 0
    }

    /// Marks a completed task's outcome as taken by the handle, which keeps
    /// its reference.
    #[inline]
    pub(super) fn mark_outcome_taken(&self) {
        self.0.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Marks a completed task's outcome as taken and drops the handle's
    /// reference, in one step. Returns whether it was the last reference.
    #[inline]
    pub(super) fn take_outcome_and_drop_handle(&self) -> bool {
        // `HANDLE` is set and `CLOSED` is not, so adding their difference
        // clears the one and sets the other without carrying into any other
        // bit.
        let previous = self
            .0
            .fetch_add(CLOSED.wrapping_sub(HANDLE), Ordering::AcqRel);
        previous & SCHEDULED == 0
    }

    /// Says that a waiter may be registered. Returns whether the task is
    /// already finished (and the waiter need not wait).
    #[inline]
    pub(super) fn set_awaiter(&self) -> bool {
        Snapshot(self.0.fetch_or(AWAITER, Ordering::AcqRel)).is_finished()
    }

    /// Records a task run and taken by a thread holding both references,
    /// which no other thread can reach: a plain store, no read-modify-write.
    #[inline]
    pub(super) fn set_ran_alone(&self) {
        self.0.store(COMPLETED | CLOSED, Ordering::Relaxed);
    }
}
