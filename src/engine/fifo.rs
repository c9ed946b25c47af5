//! Orders that run in the order they were submitted: a FIFO queue behind a
//! stand-in on the ordinary queues.
//!
//! A baker's own deque is LIFO for the baker (the newest first: the best for
//! caches and for fork-join), and a batch it takes from the injector lands
//! there too. An order submitted with `submit_fifo` is put at the back of a
//! [`FifoQueue`] instead, and a stand-in [`JobRef`] pointing at the queue
//! goes where the order would have gone (the baker's deque, or the
//! injector). Whoever takes a stand-in, the owner or a thief, in whatever
//! order, runs the *oldest* order of its queue: so the orders of one queue
//! are taken in the order they were submitted (rayon-core's `JobFifo` works
//! the same way).
//!
//! Why nothing is lost or run twice: every push adds one order to the queue
//! and one stand-in to the ordinary queues, and every stand-in, executed
//! once like any job, removes exactly one order, so the queue never holds
//! fewer orders than there are stand-ins still queued. A stand-in asked to
//! cancel (`shutdown_now`'s sweep) cancels the oldest order of its queue
//! that can be cancelled, wherever it sits, or, if none can, reports that
//! it consumed nothing, so the count still matches. The queue lives in the baker's record or in the
//! registry, both of which outlive every queued job.
//!
//! One queue per baker (for orders its orders submit) and one per bakery
//! (for orders from outside): orders submitted from the same place are
//! taken in submission order; orders submitted from different bakers are
//! not ordered with respect to each other.

use crate::engine::job::{Fate, Job, JobRef, Mode};
use crate::engine::sync::Mutex;
use std::collections::VecDeque;
use std::ptr::NonNull;

/// The FIFO queue behind the stand-ins of one baker, or of one bakery's
/// orders from outside.
pub(crate) struct FifoQueue {
    jobs: Mutex<VecDeque<JobRef>>,
}

impl FifoQueue {
    pub(crate) fn new() -> FifoQueue {
        FifoQueue {
            jobs: Mutex::new(VecDeque::new()),
        }
    }

    /// Puts `job` at the back of the queue and returns the stand-in to
    /// queue in its place.
    ///
    /// # Safety
    ///
    /// The queue must stay where it is until the stand-in has been executed
    /// (true of a baker's record and of a registry, which outlive every job
    /// queued in their bakery).
    pub(crate) unsafe fn push(&self, job: JobRef) -> JobRef {
        self.jobs.lock().push_back(job);
        // SAFETY: the caller keeps the queue in place until the stand-in is
        // executed; the orders it runs are `Send`, as every queued job is.
        unsafe { JobRef::new(NonNull::from(self)) }
    }
}

impl Job for FifoQueue {
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> Fate {
        // SAFETY: the pusher keeps the queue in place until every stand-in
        // pointing at it has been executed, and this is one of them.
        let queue = unsafe { this.as_ref() };
        if mode == Mode::CancelOrKeep {
            return queue.cancel_one();
        }
        let Some(job) = queue.jobs.lock().pop_front() else {
            // Impossible: one order was pushed for every stand-in, and each
            // stand-in takes one (see the module docs).
            debug_assert!(false, "a FIFO stand-in found its queue empty");
            return Fate::Untracked;
        };
        // What became of the order is what became of its stand-in.
        job.execute(mode)
    }
}

impl FifoQueue {
    /// For `shutdown_now`'s sweep through one stand-in: cancels the oldest
    /// order of the queue that can be cancelled, wherever it sits (orders
    /// that cannot, scoped ones, may be ahead of it), and says what became
    /// of it, or [`Fate::Kept`] if none could be. The others keep their
    /// places.
    fn cancel_one(&self) -> Fate {
        let mut jobs = self.jobs.lock();
        let mut kept = Vec::new();
        let mut fate = Fate::Kept;
        while let Some(job) = jobs.pop_front() {
            match job.try_cancel() {
                Ok(cancelled) => {
                    fate = cancelled;
                    break;
                }
                Err(job) => kept.push(job),
            }
        }
        for job in kept.into_iter().rev() {
            jobs.push_front(job);
        }
        fate
    }
}
