//! The handle's half of a task: waiting for it, taking its outcome,
//! cancelling it, and letting go of it. [`Order`](crate::Order) and
//! [`ScopedOrder`](crate::ScopedOrder) are thin typed wrappers around it.

use super::raw::{Core, Header};
use super::state::HANDLE;
use crate::engine::baker_thread::BakerThread;
use crate::engine::job::{Fate, JobRef, Mode};
use crate::engine::probe::Probe;
use crate::engine::ready_list::ReadyList;
use crate::engine::registry::RegistryId;
use crate::engine::sync::{local, Arc, Ordering};
use crate::engine::unwind;
use crate::engine::wait;
use crate::engine::waiter::Waiter;
use crate::error::{OrderError, PanicError};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The handle's reference to a task, typed by its output only.
pub(crate) struct RawOrder<T> {
    core: NonNull<Core<T>>,
    _marker: PhantomData<T>,
}

impl<T> RawOrder<T> {
    /// Takes over the `HANDLE` reference of the block behind `core`.
    ///
    /// # Safety
    ///
    /// `core` must point at the `Core<T>` of a live task block whose state
    /// holds a `HANDLE` reference that nobody else owns.
    pub(super) unsafe fn from_core(core: NonNull<Core<T>>) -> RawOrder<T> {
        RawOrder {
            core,
            _marker: PhantomData,
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the handle holds `HANDLE`, so the block is alive.
        unsafe { &self.core.as_ref().header }
    }

    /// The identity of the order's queue entry (its `JobRef::id`).
    #[inline]
    pub(crate) fn job_id(&self) -> *const () {
        self.core.as_ptr().cast_const().cast()
    }

    /// The bakery that accepted the order.
    #[inline]
    pub(crate) fn pool(&self) -> RegistryId {
        self.header().pool
    }

    /// If nobody started or cancelled the order yet: the baker whose own
    /// deque it was pushed onto, if any.
    #[inline]
    fn pending_at_home(&self) -> Option<usize> {
        let state = self.header().state.load(Ordering::Acquire);
        state.is_pending().then(|| state.home()).flatten()
    }

    /// Whether the order is running on the calling baker's own stack, beneath
    /// the caller: waiting for it there could never end.
    fn runs_beneath_caller(&self) -> bool {
        let header = self.header();
        let me = local::get() as usize;
        me != 0
            && header.state.load(Ordering::Acquire).is_running()
            && header.runner.load(Ordering::Relaxed) == me
    }

    /// Whether the order is still pending.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.header().state.load(Ordering::Acquire).is_pending()
    }

    /// Whether the order has an outcome.
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.header().state.load(Ordering::Acquire).is_finished()
    }

    /// Takes the outcome if there is one.
    ///
    /// # Panics
    ///
    /// If the value was already taken (an `Order` polled after it returned
    /// `Ready`).
    pub(crate) fn take_outcome(&mut self) -> Option<Result<T, OrderError>> {
        let header = self.header();
        let state = header.state.load(Ordering::Acquire);
        if state.is_completed() {
            assert!(!state.is_closed(), "`Order` polled after completion");
            let output = self.read_output();
            header.state.mark_outcome_taken();
            return Some(output);
        }
        if state.is_closed() {
            return Some(Err(closed_error(state.is_rejected())));
        }
        None
    }

    /// Moves the outcome out of a completed block, once.
    fn read_output(&self) -> Result<T, OrderError> {
        // SAFETY: the caller saw `COMPLETED` and not `CLOSED` (read with
        // Acquire): the outcome is written and was never taken; the handle
        // is its only reader, and its caller marks it taken.
        let output = unsafe { self.core.as_ref() }.output.with_mut(|output| {
            // SAFETY: as above.
            unsafe { (*output).assume_init_read() }
        });
        output.map_err(|payload| OrderError::Panicked(PanicError::new(payload)))
    }

    /// Takes the outcome of a finished order and lets go of the handle, with
    /// one read-modify-write for both.
    fn into_outcome(self) -> Result<T, OrderError> {
        let header = self.header();
        let state = header.state.load(Ordering::Acquire);
        debug_assert!(state.is_finished(), "the order has an outcome");
        if !state.is_completed() {
            // Cancelled or rejected; dropping `self` releases the handle.
            return Err(closed_error(state.is_rejected()));
        }
        assert!(!state.is_closed(), "`Order` polled after completion");
        let output = self.read_output();
        if header.state.take_outcome_and_drop_handle() {
            // SAFETY: the queue's reference was gone: this was the last; the
            // vtable matches the block's type.
            unsafe { (header.vtable.dealloc)(self.core.cast()) };
        }
        std::mem::forget(self);
        output
    }

    /// Joins an order whose queue entry this thread just popped back from
    /// its own deque: with both references in hand and nobody else able to
    /// reach the block, it runs the closure and frees the block without a
    /// single atomic read-modify-write.
    fn join_popped(self, job: JobRef, mode: Mode) -> Result<T, OrderError> {
        debug_assert_eq!(job.id(), self.job_id());
        let header = self.header();
        if !header.state.load(Ordering::Acquire).is_pending() || mode != Mode::Run {
            // Cancelled through this handle already, or to be cancelled now:
            // the general path reports it.
            count_here(self.pool(), job.execute(mode));
            return self.into_outcome();
        }
        // SAFETY: this thread holds both references (the handle, and the
        // queue entry it popped), so no other thread can reach the block;
        // the order is pending; the vtable matches the block's type.
        let fate = unsafe { (header.vtable.run_alone)(self.core.cast()) };
        count_here(self.pool(), fate);
        let output = self.read_output();
        header.state.set_ran_alone();
        // SAFETY: both references are this thread's and are dropped here;
        // the state says the closure ran and the outcome was taken.
        unsafe { (header.vtable.dealloc)(self.core.cast()) };
        std::mem::forget(self);
        output
    }

    /// Waits for the outcome and takes it.
    ///
    /// A baker of the order's own pool that finds the order not yet started
    /// runs it itself; any other baker keeps working for its pool while it
    /// waits; any other thread parks.
    pub(crate) fn join(self) -> Result<T, OrderError> {
        if !self.is_finished() {
            let popped = BakerThread::with_own(self.pool(), |baker| {
                let Some(baker) = baker else {
                    wait::wait(&self);
                    return None;
                };
                if self.pending_at_home() == Some(baker.index()) {
                    // Its entry is in this baker's own deque: pop down to it,
                    // running what was pushed after it, and run it here with
                    // no one else involved.
                    while let Some(job) = baker.take_local() {
                        if job.id() == self.job_id() {
                            baker.count_progress();
                            return Some((job, baker.mode()));
                        }
                        baker.execute(job);
                        if !self.is_pending() {
                            // Stolen meanwhile.
                            break;
                        }
                    }
                }
                // Not in this baker's deque: claim it where it sits, or wait
                // for it while working.
                if let Some(fate) = self.run_here_fate() {
                    baker.count_fate(fate);
                } else {
                    assert!(
                        !self.runs_beneath_caller(),
                        "joining this order would deadlock: it runs further down this \
                         baker's own stack, waiting on work that is waiting on it"
                    );
                    wait::wait(&self);
                }
                None
            });
            if let Some((job, mode)) = popped {
                return self.join_popped(job, mode);
            }
        }
        self.into_outcome()
    }

    /// Parks until the outcome is ready or `timeout` passes, then takes it
    /// if there is one; never runs the order or other work on the calling
    /// thread. On a baker that is a blocking wait, and is declared as one:
    /// the bakery keeps its configured number of bakers runnable meanwhile,
    /// so the order (even one queued on this baker's own deque) can run.
    pub(crate) fn join_timeout(&mut self, timeout: Duration) -> Option<Result<T, OrderError>> {
        // A timeout too large for `Instant` waits as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        if !self.is_finished() {
            BakerThread::with_current(|baker| match baker {
                Some(baker) => baker.blocking(|| wait::park_until(&*self, deadline)),
                None => wait::park_until(&*self, deadline),
            });
        }
        self.take_outcome()
    }

    /// One `poll` of the handle as a future.
    pub(crate) fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, OrderError>> {
        if let Some(outcome) = self.take_outcome() {
            return Poll::Ready(outcome);
        }
        if self.register_waker(cx.waker()) {
            Poll::Pending
        } else {
            Poll::Ready(
                self.take_outcome()
                    .expect("a finished order has an outcome"),
            )
        }
    }

    /// Cancels the order if it has not started. Returns whether the order
    /// is cancelled (by this call or an earlier one).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the closure's destructor, after waking any
    /// waiter.
    pub(crate) fn cancel(&self) -> bool {
        let header = self.header();
        match header.state.close(super::state::Close::Cancel) {
            Some(previous) => {
                let dropped = unwind::halt_unwinding(|| {
                    // SAFETY: the cancellation CAS gave this thread the
                    // closure; the vtable matches the block's type.
                    unsafe { (header.vtable.drop_closure)(self.core.cast()) }
                });
                header.notify_if_awaited(previous);
                if let Err(payload) = dropped {
                    unwind::resume_unwinding(payload);
                }
                true
            }
            None => header.state.load(Ordering::Acquire).is_cancelled(),
        }
    }

    /// Claims the order and runs it on this thread if nobody started it.
    /// Returns whether it ran here.
    pub(crate) fn run_here(&self) -> bool {
        self.run_here_fate().is_some()
    }

    /// Like [`run_here`](Self::run_here), saying how the order ended if it
    /// ran here, for the statistics.
    fn run_here_fate(&self) -> Option<Fate> {
        let header = self.header();
        if !header.claim() {
            return None;
        }
        // SAFETY: this thread holds the handle and won the claim; the vtable
        // matches the block's type.
        Some(unsafe { (header.vtable.run_claimed)(self.core.cast()) })
    }

    /// Names the order's place in an order set as its waiter: when it
    /// finishes, the place goes onto `list`. Returns `false` if the order
    /// already has an outcome (the caller then queues the place itself).
    pub(crate) fn register_ready(&self, list: &Arc<ReadyList>, place: usize) -> bool {
        let header = self.header();
        let waiter = Waiter::Ready {
            list: list.clone(),
            place,
        };
        header
            .waiter
            .register(waiter, || header.state.set_awaiter())
    }

    /// Takes the outcome of an order that has one, and lets go of the
    /// handle.
    pub(crate) fn into_finished(self) -> Result<T, OrderError> {
        self.into_outcome()
    }

    /// Registers an async task's waker; returns `false` if the order already
    /// has an outcome.
    fn register_waker(&self, waker: &Waker) -> bool {
        let header = self.header();
        header
            .waiter
            .register_waker(waker, || header.state.set_awaiter())
    }
}

/// Counts `fate` on the calling baker, which belongs to bakery `pool` (the
/// joins that run an order on their own thread run only on its bakers).
fn count_here(pool: RegistryId, fate: Fate) {
    if fate != Fate::Untracked {
        BakerThread::with_own(pool, |baker| {
            if let Some(baker) = baker {
                baker.count_fate(fate);
            }
        });
    }
}

/// The error of an order that finished without running.
fn closed_error(rejected: bool) -> OrderError {
    if rejected {
        OrderError::Rejected
    } else {
        OrderError::Cancelled
    }
}

impl<T> Probe for RawOrder<T> {
    #[inline]
    fn probe(&self) -> bool {
        self.is_finished()
    }

    fn register(&self, waiter: impl FnOnce() -> Waiter) -> bool {
        let header = self.header();
        header
            .waiter
            .register(waiter(), || header.state.set_awaiter())
    }

    fn unregister(&self) {
        self.header().waiter.clear();
    }
}

impl<T> Drop for RawOrder<T> {
    fn drop(&mut self) {
        let header = self.header();
        if header.state.drop_reference(HANDLE) {
            // SAFETY: the queue's reference was already gone: this was the
            // last; the vtable matches the block's type.
            unsafe { (header.vtable.dealloc)(self.core.cast()) };
        }
    }
}

// SAFETY: the handle gives access to the outcome `T` (moved out once, on the
// handle's thread) and to atomic state; sending it sends the right to that
// `T`, which requires `T: Send`.
unsafe impl<T: Send> Send for RawOrder<T> {}
// SAFETY: through `&RawOrder` only atomic state is read or changed (cancel,
// is_finished, register); the outcome is reached through `&mut` alone.
unsafe impl<T: Send> Sync for RawOrder<T> {}
