//! What the queues hold: a type-erased reference to a job, and what to do
//! with it.
//!
//! A [`JobRef`] is two words, a data pointer and the function that runs it,
//! so the deques move plain words and never allocate per job. Two kinds of
//! job sit behind it:
//!
//! * a task ([`super::task`]): one heap block that also holds the state its
//!   handle reads (an order, a scoped order, a carrier);
//! * a [`StackJob`](super::stack_job::StackJob): the second closure of a
//!   `join`, living in the forking baker's stack frame, which does not
//!   return before the job has run.

use std::ptr::NonNull;

/// What to do with a job taken from a queue. Work that belongs to work
/// already under way (a fork, a scoped order, a carried `join` or
/// `install`) cannot be cancelled: each mode says what happens to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run it.
    Run,
    /// The pool is shutting down with `shutdown_now`: cancel it if it can be
    /// cancelled, run it otherwise.
    CancelOrRun,
    /// Cancel it if it can be cancelled; otherwise leave it untouched and
    /// report that it was not consumed.
    CancelOrKeep,
    /// No baker is left to run it (the pool closed and its bakers went
    /// home): reject it if it can be cancelled, run it here otherwise.
    RejectOrRun,
}

/// What became of a job taken from a queue, for the bakery's statistics.
///
/// An order (of [`Bakery::submit`](crate::Bakery::submit)) is counted once,
/// by whoever settles it: the baker that ran it, or the thread that let go
/// of its queue entry after it was cancelled or rejected. Forks, scoped
/// orders and carriers are not orders for the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Not consumed: `Mode::CancelOrKeep` on a job that cannot be cancelled.
    Kept,
    /// Consumed, and nothing to count: not an order, or an order whose
    /// handle ran it (and counted it).
    Untracked,
    /// An order that ran here and returned.
    Completed,
    /// An order that ran here and panicked.
    Panicked,
    /// An order cancelled (here, or earlier through its handle).
    Cancelled,
    /// An order rejected (here, or earlier by its submitter).
    Rejected,
}

/// A job that can sit in a queue behind a [`JobRef`].
pub(crate) trait Job {
    /// Runs (or cancels) the job and gives up the queue's reference to it,
    /// saying what became of it. Returns [`Fate::Kept`], having done
    /// nothing, only for `Mode::CancelOrKeep` on a job that cannot be
    /// cancelled.
    ///
    /// # Safety
    ///
    /// `this` must come from the [`JobRef`] that the queue held, and that
    /// `JobRef` must be executed at most once (a call that returned `false`
    /// does not count).
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> Fate;
}

/// A type-erased, unique reference to a queued job.
pub(crate) struct JobRef {
    pointer: NonNull<()>,
    execute_fn: unsafe fn(NonNull<()>, Mode) -> Fate,
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

    /// Runs the job (`Mode::Run`), or cancels (`Mode::CancelOrRun`) or
    /// rejects (`Mode::RejectOrRun`) it if it can be cancelled and runs it
    /// otherwise. Says what became of it.
    #[inline]
    pub(crate) fn execute(self, mode: Mode) -> Fate {
        debug_assert_ne!(mode, Mode::CancelOrKeep);
        // SAFETY: `self` is consumed, so the job runs once; its creator
        // promised the pointer stays valid until then.
        unsafe { (self.execute_fn)(self.pointer, mode) }
    }

    /// Cancels the job if it can be cancelled; otherwise hands it back
    /// untouched.
    pub(crate) fn try_cancel(self) -> Result<Fate, JobRef> {
        // SAFETY: as in `execute`; `Kept` means the job was not touched,
        // and `self` is handed back to be executed later.
        match unsafe { (self.execute_fn)(self.pointer, Mode::CancelOrKeep) } {
            Fate::Kept => Err(self),
            fate => Ok(fate),
        }
    }
}

/// Restores the job's type and runs it.
///
/// # Safety
///
/// `pointer` must be the pointer a [`JobRef`] for a `J` was made from.
unsafe fn execute_erased<J: Job>(pointer: NonNull<()>, mode: Mode) -> Fate {
    // SAFETY: the caller passes the pointer stored beside this function.
    unsafe { J::execute(pointer.cast(), mode) }
}
