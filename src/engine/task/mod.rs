//! The raw order: one heap block holding the closure, the state word, the
//! waiter slot and the outcome, shared by the queue and the handle.
//!
//! Submitting an order allocates exactly one block, a task block ([`raw`]). The queue
//! holds it through a [`JobRef`]; the [`Order`](crate::Order) handle holds it
//! through a [`RawOrder`] ([`handle`]). Nothing else is allocated: no `Arc`, no channel,
//! no boxed closure.
//!
//! # The state word
//!
//! The bits and the transitions are in [`state`]: every transition is one
//! named method there.
//!
//! An order is *pending* while none of `RUNNING`, `COMPLETED` and `CLOSED` is
//! set. From pending exactly one transition wins, by compare-and-swap:
//!
//! * **claim**: pending → `RUNNING`, by the baker that took the `JobRef`, or
//!   by a baker of the same pool joining the handle (it runs the order
//!   itself instead of waiting for it);
//! * **cancel** or **reject**: pending → `CLOSED` (`| REJECTED`), by the
//!   handle's `cancel`, by `shutdown_now`, or by a submitter that saw the
//!   pool close under it. The winner drops the closure.
//!
//! The claimant runs the closure and sets `COMPLETED` (clearing `RUNNING`).
//! The handle takes the outcome once and sets `CLOSED`, so the block knows
//! the outcome is gone. Because each transition out of pending is one CAS, an
//! order cannot both run and be cancelled, and cannot run twice.
//!
//! # References and freeing
//!
//! `SCHEDULED` and `HANDLE` are the two references. Each owner clears its own
//! bit with one read-modify-write (`AcqRel`) and the one that clears the last
//! bit frees the block, dropping whatever is left in it: a closure nobody
//! claimed, an outcome nobody took. A completing baker with no awaiter to wake
//! clears `SCHEDULED` in the same CAS that sets `COMPLETED`.
//!
//! A `JobRef` whose order was already claimed by a joiner, cancelled or
//! rejected stays in its queue until some baker pops it; that baker sees the
//! order is not pending and only drops the queue's reference.
//!
//! One path needs no atomics at all: a baker that joins an order it
//! submitted itself, still pending, pops its own deque down to the order's
//! entry (running whatever was pushed after it) and takes the entry back
//! (`RawOrder::join`). It then holds both references, no other thread
//! can reach the block, and it runs the closure, takes the outcome and frees
//! the block with plain loads and stores. The state word's high bits record
//! which baker's deque an order went to, so the joiner knows where to look.
//!
//! # Delayed orders
//!
//! A delayed order's block is made with `TIMED` set, and the timer (see
//! [`crate::engine::timer`]) holds its queue reference as a [`TimedTask`]
//! until the deadline. While `TIMED` is set nobody may claim it: a baker
//! joining the handle waits instead of running it early. The handle may
//! still cancel it (dropping the closure at once), and the timer then only
//! drops its reference, at the deadline or when it sweeps. At the deadline
//! the timer clears `TIMED` and pushes the `JobRef` like any submitter.
//!
//! # Waking the waiter
//!
//! A waiter (a parked thread, an async waker, a sleeping baker) registers
//! under the waiter slot's lock and sets `AWAITER` with a `fetch_or` that
//! also tells it whether the order already has an outcome; if so it does not
//! wait. Whoever gives the order its outcome (completion, cancellation) does
//! so with a read-modify-write that returns the previous state: if `AWAITER`
//! was set, it takes the slot's lock and wakes the waiter. Either the
//! registration's `fetch_or` comes first, and the notifier sees `AWAITER` and
//! finds the waiter under the lock, or the notification's RMW comes first,
//! and the registration sees the outcome. The notifier keeps its reference
//! until the wake-up is done, so the block outlives it.

mod handle;
mod raw;
mod state;

pub(crate) use handle::RawOrder;
pub(crate) use raw::TaskKind;

use crate::engine::job::{JobRef, Mode};
use crate::engine::registry::RegistryId;
use crate::engine::sync::Ordering;
use raw::{Header, Task};
use state::{Close, Snapshot};
use std::ptr::NonNull;

/// A freshly allocated task, before its two references part ways.
pub(crate) struct NewTask<F, T, K> {
    task: NonNull<Task<F, T, K>>,
}

impl<F, T, K> NewTask<F, T, K>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    /// Allocates a task for `func`, accepted by the bakery `pool`, to be
    /// pushed onto baker `home`'s own deque (or the injector).
    #[inline]
    pub(crate) fn new(func: F, kind: K, pool: RegistryId, home: Option<usize>) -> NewTask<F, T, K> {
        NewTask {
            task: Task::allocate(func, kind, pool, Snapshot::new_scheduled(home)),
        }
    }

    /// Allocates a delayed task for `func`: not claimable until the timer
    /// that will hold its queue reference ([`timed_ref`](Self::timed_ref))
    /// says its deadline came.
    pub(crate) fn new_timed(func: F, kind: K, pool: RegistryId) -> NewTask<F, T, K> {
        NewTask {
            task: Task::allocate(func, kind, pool, Snapshot::new_timed()),
        }
    }

    /// The queue's reference.
    ///
    /// # Safety
    ///
    /// Call at most once per task: the reference it returns owns `SCHEDULED`.
    #[inline]
    pub(crate) unsafe fn job_ref(&self) -> JobRef {
        // SAFETY: the block stays allocated while `SCHEDULED` is set, and
        // `F` and `T` are `Send`.
        unsafe { JobRef::new(self.task) }
    }

    /// The queue's reference of a task made by [`new_timed`](Self::new_timed),
    /// for the timer to hold.
    ///
    /// # Safety
    ///
    /// As for [`job_ref`](Self::job_ref): at most once per task, and never
    /// together with `job_ref`.
    pub(crate) unsafe fn timed_ref(&self) -> TimedTask {
        TimedTask {
            // SAFETY: the caller takes the one queue reference once.
            job: unsafe { self.job_ref() },
            header: self.task.cast(),
        }
    }

    /// Rejects the task if nobody claimed it yet, handing the closure back.
    /// For a submitter that saw the pool close after pushing the job.
    pub(crate) fn reject(&self) -> Option<F> {
        let header = Task::header(self.task);
        let previous = header.state.close(Close::Reject)?;
        // SAFETY: the rejection CAS gave this thread the closure.
        let func = unsafe { Task::take_closure(self.task) };
        header.notify_if_awaited(previous);
        Some(func)
    }

    /// The handle's reference.
    #[inline]
    pub(crate) fn into_handle(self) -> RawOrder<T> {
        // SAFETY: `Core<T>` is the block's first field (`repr(C)`), and the
        // handle takes the `HANDLE` reference this task was created with.
        unsafe { RawOrder::from_core(self.task.cast()) }
    }
}

/// The queue's reference to a delayed task, held by the timer until the
/// task's deadline.
pub(crate) struct TimedTask {
    job: JobRef,
    /// The same block as `job`'s (its header comes first), to read the
    /// state without running anything.
    header: NonNull<Header>,
}

// SAFETY: a `TimedTask` is a `JobRef` (which is `Send`) plus a pointer into
// the same block, used only to read its atomic state.
unsafe impl Send for TimedTask {}

impl TimedTask {
    fn header(&self) -> &Header {
        // SAFETY: this holds the queue's reference, so the block is alive.
        unsafe { self.header.as_ref() }
    }

    /// Whether the order may still run: nobody cancelled it. A task whose
    /// order was cancelled only waits to give up its reference.
    pub(crate) fn is_pending(&self) -> bool {
        self.header().state.load(Ordering::Acquire).is_pending()
    }

    /// The deadline came: the task becomes claimable, and its `JobRef` goes
    /// into a queue.
    pub(crate) fn into_due(self) -> JobRef {
        self.header().state.clear_timed();
        self.job
    }

    /// Cancels the order if it is still pending (its handle reports
    /// `Cancelled`, the closure is dropped here) and drops the reference;
    /// for a shutdown, or for an entry already cancelled by its handle.
    pub(crate) fn cancel(self) {
        self.job.execute(Mode::CancelOrRun);
    }

    /// Rejects the order (it was never accepted) and drops the reference.
    pub(crate) fn reject(self) {
        self.job.execute(Mode::RejectOrRun);
    }
}

/// A task that was rejected before it reached any queue, holding only the
/// handle's reference.
pub(crate) fn rejected<T, K>(kind: K, pool: RegistryId) -> RawOrder<T>
where
    T: Send,
    K: TaskKind,
{
    let task = Task::<fn() -> T, T, K>::allocate(
        || unreachable!("a rejected order never runs"),
        kind,
        pool,
        Snapshot::new_rejected(),
    );
    // SAFETY: as in `NewTask::into_handle`; the only reference is `HANDLE`.
    unsafe { RawOrder::from_core(task.cast()) }
}

/// Runs `func` right here as an order that never saw a queue, and returns
/// its handle, already finished: for a scoped order on a closed pool, which
/// must not be lost.
pub(crate) fn run_now<F, T, K>(func: F, kind: K, pool: RegistryId) -> RawOrder<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    let task = Task::allocate(func, kind, pool, Snapshot::new_unscheduled());
    // SAFETY: as in `NewTask::into_handle`; the only reference is `HANDLE`.
    let order = unsafe { RawOrder::from_core(task.cast()) };
    let ran = order.run_here();
    debug_assert!(ran, "nobody else can reach a task that never saw a queue");
    order
}

#[cfg(all(test, loom))]
mod loom_tests;
