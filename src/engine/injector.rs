//! The injector: the one queue that work from outside the pool enters.
//!
//! It is a FIFO ring buffer behind a lock, with its length mirrored in an
//! atomic so that the many looks that find it empty (a baker searching, the
//! sleep protocol's re-check, `has_work`) read one word and take no lock.
//! A baker takes up to [`MAX_BATCH`] orders at a time into its own deque, so
//! the lock is taken about once per batch by the bakers, once per order by
//! submitters.
//!
//! # Why not a lock-free queue
//!
//! crossbeam-deque's `Injector` is lock-free, but it allocates a 1.5 KB
//! block for every 63 entries, on the submitting thread, and frees it on a
//! baker. With a stream of small orders from one thread, that allocation
//! pattern was a fifth of the submitter's time under glibc (a large request
//! consolidates the allocator's small free lists, and the cross-thread free
//! contends on the arena lock), and it broke the promise of one heap
//! allocation per order. The ring keeps the capacity of its busiest moment,
//! like a reused `Vec` (16 bytes per order queued at once), so a steady
//! stream of orders allocates nothing here. The lock is held for a push or a
//! short batch move, never across user code.
//!
//! # The length word
//!
//! `len` is written only under the lock, after each change, so it is exact
//! whenever the lock is free. Lock-free readers may see it late; the
//! protocols that must not miss an entry pair the read with `SeqCst` fences
//! (a submitter pushes, then fences; a baker about to sleep fences, then
//! reads), as they did with any other queue (see [`super::sleep`] and
//! [`super::registry`]). A reader that sees zero skips the lock; a reader
//! that sees more takes the lock and finds the truth there.
//!
//! A batch moves into the baker's own deque after the lock is released, so
//! that submitters never wait for it: the lock covers only the move out of
//! the ring. While the batch is in flight it is in neither queue, and a
//! colleague about to sleep may find nothing anywhere. So a baker that
//! moved a batch announces it as new work in its deque, with the same
//! `SeqCst` fence and look at the sleep counters as a submitter (see
//! `Registry::take_injected`): either the colleague's last look sees the
//! batch, or the baker sees the colleague asleep and wakes it. (Moving the
//! batch under the lock closes the gap too, but made a stream of tiny
//! orders from one thread about half again as slow on 2 cores.) A
//! `shutdown_now` that drains the queues while a batch is in flight misses
//! it; the baker that holds it cancels those orders as it takes them, or a
//! colleague steals and cancels them.
//!
//! # The submitted count
//!
//! The orders submitted from outside the bakery are counted here, for the
//! statistics: under the lock that the push takes anyway, so the count
//! costs a submitter no extra read-modify-write.

use crate::engine::job::JobRef;
use crate::engine::sync::{AtomicUsize, Mutex, Ordering, Worker};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::fmt;

/// The most entries a baker moves into its own deque at once, besides the
/// one it runs.
const MAX_BATCH: usize = 32;

/// The shared queue for jobs from outside the pool.
pub(crate) struct Injector {
    /// How many jobs `queue` holds (see the module docs).
    len: CachePadded<AtomicUsize>,
    queue: CachePadded<Mutex<Ring>>,
}

/// What the lock guards.
struct Ring {
    jobs: VecDeque<JobRef>,
    /// Orders pushed with [`Injector::push_order`], ever.
    submitted: u64,
}

impl Injector {
    /// An empty injector.
    pub(crate) fn new() -> Injector {
        Injector {
            len: CachePadded::new(AtomicUsize::new(0)),
            queue: CachePadded::new(Mutex::new(Ring {
                jobs: VecDeque::new(),
                submitted: 0,
            })),
        }
    }

    /// Appends `job` at the back.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        let mut ring = self.queue.lock();
        ring.jobs.push_back(job);
        self.len.store(ring.jobs.len(), Ordering::Release);
    }

    /// Appends `job`, a newly submitted order, at the back, and counts it.
    #[inline]
    pub(crate) fn push_order(&self, job: JobRef) {
        let mut ring = self.queue.lock();
        ring.jobs.push_back(job);
        ring.submitted += 1;
        self.len.store(ring.jobs.len(), Ordering::Release);
    }

    /// How many orders were pushed with [`push_order`](Self::push_order).
    pub(crate) fn submitted(&self) -> u64 {
        self.queue.lock().submitted
    }

    /// Takes the oldest job.
    pub(crate) fn pop(&self) -> Option<JobRef> {
        if self.is_empty() {
            return None;
        }
        let mut ring = self.queue.lock();
        let job = ring.jobs.pop_front();
        self.len.store(ring.jobs.len(), Ordering::Release);
        job
    }

    /// Takes the oldest job for the caller and moves up to [`MAX_BATCH`] of
    /// the next ones into `dest`, the caller's own deque, where the other
    /// bakers can still steal them. Taking a whole batch rather than a fair
    /// share keeps the bakers off the lock while a stream of orders comes
    /// in; stealing evens the load out. Returns the job and how many were
    /// moved: the caller must then announce them (see the module docs).
    #[inline]
    pub(crate) fn pop_batch(&self, dest: &Worker<JobRef>) -> Option<(JobRef, usize)> {
        if self.is_empty() {
            return None;
        }
        let mut batch: [Option<JobRef>; MAX_BATCH] = [const { None }; MAX_BATCH];
        let (job, moved) = {
            let mut ring = self.queue.lock();
            let queue = &mut ring.jobs;
            let job = queue.pop_front()?;
            let moved = queue.len().min(MAX_BATCH);
            for (slot, entry) in batch.iter_mut().zip(queue.drain(..moved)) {
                *slot = Some(entry);
            }
            self.len.store(queue.len(), Ordering::Release);
            (job, moved)
        };
        // The owner pops its deque from the back: push the batch newest
        // first, so the oldest comes out first.
        for entry in batch.into_iter().take(moved).rev().flatten() {
            dest.push(entry);
        }
        Some((job, moved))
    }

    /// Whether the queue looked empty (see the module docs).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many jobs the queue held (a snapshot).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Injector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Injector, MAX_BATCH};
    use crate::engine::job::{Fate, Job, JobRef, Mode};
    use crate::engine::sync::Worker;
    use std::cell::Cell;
    use std::ptr::NonNull;

    /// A job that counts how often it ran.
    struct Counted(Cell<u32>);

    impl Job for Counted {
        unsafe fn execute(this: NonNull<Self>, _mode: Mode) -> Fate {
            // SAFETY: the jobs outlive their `JobRef`s in these tests.
            let job = unsafe { this.as_ref() };
            job.0.set(job.0.get() + 1);
            Fate::Untracked
        }
    }

    fn job_ref(job: &Counted) -> JobRef {
        // SAFETY: every job outlives its reference, which the test executes
        // at most once, on this thread.
        unsafe { JobRef::new(NonNull::from(job)) }
    }

    fn index_of(jobs: &[Counted], job: &JobRef) -> usize {
        jobs.iter()
            .position(|candidate| std::ptr::eq(candidate as *const Counted as *const (), job.id()))
            .expect("a job of this test")
    }

    #[test]
    fn a_batch_keeps_the_order_of_arrival() {
        let jobs: Vec<Counted> = (0..MAX_BATCH + 8).map(|_| Counted(Cell::new(0))).collect();
        let injector = Injector::new();
        assert!(injector.is_empty());
        assert!(injector.pop().is_none());
        for job in &jobs {
            injector.push(job_ref(job));
        }
        assert_eq!(injector.len(), jobs.len());

        let worker = Worker::new_lifo();
        let (first, moved) = injector.pop_batch(&worker).expect("a job");
        assert_eq!(moved, MAX_BATCH);
        assert_eq!(index_of(&jobs, &first), 0);
        assert_eq!(worker.len(), MAX_BATCH);
        assert_eq!(injector.len(), jobs.len() - 1 - MAX_BATCH);
        first.execute(Mode::Run);

        // The owner pops the batch oldest first.
        for expected in 1..=MAX_BATCH {
            let job = worker.pop().expect("a batched job");
            assert_eq!(index_of(&jobs, &job), expected);
            job.execute(Mode::Run);
        }
        // A short queue is taken whole.
        let (next, moved) = injector.pop_batch(&worker).expect("a job");
        assert_eq!(moved, 6);
        assert_eq!(index_of(&jobs, &next), MAX_BATCH + 1);
        next.execute(Mode::Run);
        assert!(injector.is_empty());
        while let Some(job) = worker.pop() {
            job.execute(Mode::Run);
        }
        assert!(injector.pop_batch(&worker).is_none());
        assert!(
            jobs.iter().all(|job| job.0.get() == 1),
            "every job ran once"
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
