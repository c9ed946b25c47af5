//! The second half of a `join`, living on the forking baker's stack.
//!
//! `join(a, b)` on a baker turns `b` into a [`StackJob`] in its own stack
//! frame and records a [`JobRef`] to it among its pending forks, from where
//! it may be promoted onto its deque (see [`super::promotion`]). The frame
//! does not return before the job ran or was taken back unrun, which is what
//! makes borrowing from it sound (see [`super::join`]). Whoever runs it sets
//! its latch, the last thing it touches.

use crate::engine::job::{Fate, Job, JobRef, Mode};
use crate::engine::latch::Latch;
use crate::engine::sync::UnsafeCell;
use crate::engine::unwind::{self, AbortIfPanic, Payload};
use std::mem;
use std::ptr::NonNull;

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

    /// What the deque's reference to this job is compared against.
    #[inline]
    pub(crate) fn id(&self) -> *const () {
        (self as *const Self).cast()
    }

    /// Runs the closure on the forking baker itself, after taking the
    /// reference back unexecuted (it was never promoted, or popped back).
    /// In place: moving the job first would copy it, which costs a join
    /// more than the rest of its fast path.
    #[inline(always)]
    pub(crate) fn run_inline(&self) -> R {
        let func = self
            .func
            .with_mut(|func| {
                // SAFETY: the reference was taken back by the forking baker
                // (never promoted, or popped back), so no other thread can
                // reach the job any more.
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
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> Fate {
        // A fork is part of an order that is already running: it always runs,
        // even under `shutdown_now`.
        if mode == Mode::CancelOrKeep {
            return Fate::Kept;
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
        Fate::Untracked
    }
}
