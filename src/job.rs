//! What the deques hold: a type-erased reference to a job, and the job that
//! lives on a forking baker's stack.
//!
//! A [`JobRef`] is two words, a data pointer and the function that runs it,
//! so the deques move plain words and never allocate per job. Two kinds of
//! job sit behind it:
//!
//! * an order ([`crate::task`]): one heap block that also holds the state its
//!   handle reads;
//! * a [`StackJob`]: the second closure of a `join`, living in the forking
//!   baker's stack frame, which does not return before the job has run.

use crate::latch::Latch;
use crate::sync::UnsafeCell;
use crate::unwind::{self, AbortIfPanic, Payload};
use std::mem;
use std::ptr::NonNull;

/// What to do with a job taken from a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run it.
    Run,
    /// The pool is shutting down with `shutdown_now`: cancel it if it can be
    /// cancelled, else run it.
    Cancel,
    /// Cancel it if it can be cancelled; otherwise leave it untouched and
    /// report that it was not consumed.
    CancelOnly,
    /// No baker is left to run it (the pool closed and its bakers went
    /// home): reject it if it can be cancelled, run it here otherwise.
    Reject,
}

/// A job that can sit in a queue behind a [`JobRef`].
pub(crate) trait Job {
    /// Runs (or cancels) the job and gives up the queue's reference to it.
    /// Returns `false`, having done nothing, only for `Mode::CancelOnly` on a
    /// job that cannot be cancelled.
    ///
    /// # Safety
    ///
    /// `this` must come from the [`JobRef`] that the queue held, and that
    /// `JobRef` must be executed at most once (a call that returned `false`
    /// does not count).
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> bool;
}

/// A type-erased, unique reference to a queued job.
pub(crate) struct JobRef {
    pointer: NonNull<()>,
    execute_fn: unsafe fn(NonNull<()>, Mode) -> bool,
}

// SAFETY: a `JobRef` is only created for jobs whose closures and results are
// `Send` (every constructor requires it), and it is executed exactly once, on
// whichever baker takes it: moving it between threads moves that right.
unsafe impl Send for JobRef {}

impl JobRef {
    /// # Safety
    ///
    /// `data` must stay valid until the `JobRef` is executed, and the job's
    /// closure and result must be `Send`.
    pub(crate) unsafe fn new<J: Job>(data: NonNull<J>) -> JobRef {
        JobRef {
            pointer: data.cast(),
            execute_fn: execute_erased::<J>,
        }
    }

    /// An identity for comparing against a job the caller pushed.
    #[inline]
    pub(crate) fn id(&self) -> *const () {
        self.pointer.as_ptr()
    }

    /// Runs the job (`Mode::Run`), or cancels (`Mode::Cancel`) or rejects
    /// (`Mode::Reject`) it if it can be cancelled and runs it otherwise.
    #[inline]
    pub(crate) fn execute(self, mode: Mode) {
        debug_assert_ne!(mode, Mode::CancelOnly);
        // SAFETY: `self` is consumed, so the job runs once; its creator
        // promised the pointer stays valid until then.
        unsafe { (self.execute_fn)(self.pointer, mode) };
    }

    /// Cancels the job if it can be cancelled; otherwise hands it back
    /// untouched.
    pub(crate) fn try_cancel(self) -> Result<(), JobRef> {
        // SAFETY: as in `execute`; a `false` return means the job was not
        // touched, and `self` is handed back to be executed later.
        if unsafe { (self.execute_fn)(self.pointer, Mode::CancelOnly) } {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// Restores the job's type and runs it.
///
/// # Safety
///
/// `pointer` must be the pointer a [`JobRef`] for a `J` was made from.
unsafe fn execute_erased<J: Job>(pointer: NonNull<()>, mode: Mode) -> bool {
    // SAFETY: the caller passes the pointer stored beside this function.
    unsafe { J::execute(pointer.cast(), mode) }
}

/// The outcome slot of a [`StackJob`].
pub(crate) enum JobResult<R> {
    None,
    Ok(R),
    Panic(Payload),
}

/// The second closure of a `join`, on the forking baker's stack.
pub(crate) struct StackJob<L, F, R> {
    pub(crate) latch: L,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<JobResult<R>>,
}

impl<L, F, R> StackJob<L, F, R>
where
    L: Latch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    pub(crate) fn new(func: F, latch: L) -> StackJob<L, F, R> {
        StackJob {
            latch,
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(JobResult::None),
        }
    }

    /// A reference for the deque.
    ///
    /// # Safety
    ///
    /// The caller must not let `self` move or be dropped until the job has
    /// run: either it pops the reference back and drops it unexecuted, or it
    /// waits for the latch.
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        // SAFETY: the caller keeps `self` in place until the job ran; `F` and
        // `R` are `Send`.
        unsafe { JobRef::new(NonNull::from(self)) }
    }

    /// Runs the closure on the forking baker itself, after popping the
    /// reference back unexecuted.
    pub(crate) fn run_inline(self) -> R {
        let func = self
            .func
            .with_mut(|func| {
                // SAFETY: the reference was popped back by the forking baker,
                // so no other thread can reach the job any more.
                unsafe { (*func).take() }
            })
            .expect("a join's second half ran twice");
        func()
    }

    /// The outcome left by the thief: its value, or its panic's payload.
    ///
    /// Call only once the latch is set.
    pub(crate) fn into_outcome(self) -> Result<R, Payload> {
        let result = self.result.with_mut(|result| {
            // SAFETY: the latch is set: the thief wrote the result before
            // setting it and touches the job no more.
            unsafe { mem::replace(&mut *result, JobResult::None) }
        });
        match result {
            JobResult::Ok(value) => Ok(value),
            JobResult::Panic(payload) => Err(payload),
            JobResult::None => unreachable!("a join's second half never ran"),
        }
    }
}

impl<L, F, R> Job for StackJob<L, F, R>
where
    L: Latch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> bool {
        // A fork is part of an order that is already running: it always runs,
        // even under `shutdown_now`.
        if mode == Mode::CancelOnly {
            return false;
        }
        // SAFETY: the forking baker keeps the job alive until its latch is
        // set, which is the last thing done here.
        let job = unsafe { this.as_ref() };
        let abort = AbortIfPanic;
        let func = job.func.with_mut(|func| {
            // SAFETY: this thread took the only reference from the deque.
            unsafe { (*func).take() }
        });
        let func = func.expect("a join's second half ran twice");
        let result = match unwind::halt_unwinding(func) {
            Ok(value) => JobResult::Ok(value),
            Err(payload) => JobResult::Panic(payload),
        };
        job.result.with_mut(|slot| {
            // SAFETY: as above; the owner reads the result only after the latch.
            unsafe { *slot = result }
        });
        // SAFETY: `job.latch` is valid now; `set` copies what it needs before
        // the owner can see the latch and free the job.
        unsafe { L::set(std::ptr::addr_of!(job.latch)) };
        mem::forget(abort);
        true
    }
}
