//! One baker's record: what the other threads may touch of it.
//!
//! A baker's thread keeps its private state on its own stack
//! ([`super::baker_thread`]). Everything another thread needs to reach is
//! here, in one record per baker index, owned by the [roster](super::roster):
//!
//! * its deque: the thief's end, for colleagues that steal, and the owner's
//!   end while no thread holds the index, for the next baker to take it;
//! * its name, for [`Baker`](crate::Baker) and the thread;
//! * its sleep slot, for whoever wakes it (see [`super::sleep`]);
//! * what it is doing ([`Activity`]), written only by the baker itself at
//!   the moments it starts or stops working or blocking, never per order;
//! * a request to retire, set by `Bakery::set_bakers`;
//! * its progress: how many jobs it started, written only by itself, which
//!   the blocking monitor samples (see [`super::monitor`]), and whether the
//!   monitor found it blocked;
//! * its operating system thread id, for the monitor to ask the kernel
//!   whether it sleeps;
//! * its demand flag: colleagues out of work ask it to share a pending fork
//!   (see [`super::promotion`]).
//!
//! Per-baker counters belong here too, each written only by its own baker
//! so that counting costs no shared read-modify-write.
//!
//! None of these words takes part in a protocol that must not lose work:
//! a retire request, for one, is followed by a wake-up through the baker's
//! sleep slot, whose lock orders them. So they are left out of the loom
//! models (see [`crate::engine::sync::unmodelled`]).

use crate::engine::fifo::FifoQueue;
use crate::engine::job::JobRef;
use crate::engine::promotion::Demand;
use crate::engine::sleep::Slot;
use crate::engine::sync::unmodelled::{AtomicBool, AtomicUsize};
use crate::engine::sync::{self, Mutex, Ordering, Stealer, Worker};
use crossbeam_utils::CachePadded;
use std::sync::Arc;

/// What a baker is doing, as its record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activity {
    /// No thread holds this index yet, or any more.
    Vacant = 0,
    /// Out of work and asleep, about to sleep, or on its way home with
    /// nothing left to run: its deque is empty (only its owner pushes onto
    /// it, and it found it empty), so thieves skip it.
    Idle = 1,
    /// Running orders, or a hook.
    Working = 2,
    /// Inside `blocking` (or a wait that went past its stack budget): it
    /// does not count towards the bakers the bakery keeps runnable.
    Blocked = 3,
    /// Out of work and looking for it. Its deque may hold a batch it just
    /// took from the injector, before it says it is working again, so
    /// thieves do not skip it: skipping it could leave a woken colleague
    /// seeing work it may not take, spinning until this baker runs again.
    Searching = 4,
}

impl Activity {
    fn from_word(word: usize) -> Activity {
        match word {
            0 => Activity::Vacant,
            1 => Activity::Idle,
            2 => Activity::Working,
            3 => Activity::Blocked,
            _ => Activity::Searching,
        }
    }
}

/// What the baker writes and the others read, on a line of its own.
struct Own {
    activity: AtomicUsize,
    /// Jobs started, wrapping; written only by the baker.
    progress: AtomicUsize,
    /// Set by `set_bakers` (under the staff lock), read by the baker
    /// between jobs.
    retire: AtomicBool,
}

/// One baker's record.
pub(crate) struct BakerRecord {
    stealer: Stealer<JobRef>,
    name: Arc<str>,
    /// The owner's end of the deque while no thread holds this index. Taken
    /// and put back only in an order the staff lock sets (see
    /// [`crate::engine::registry::staff`]), so this lock is left out of the
    /// loom models too.
    worker: std::sync::Mutex<Option<Worker<JobRef>>>,
    own: CachePadded<Own>,
    /// Written by colleagues, read by the baker at every join: a line of
    /// its own.
    demand: CachePadded<Demand>,
    /// Set and cleared by the blocking monitor only.
    detected_blocked: AtomicBool,
    /// The kernel's id of the thread holding the index, or 0 if unknown.
    os_thread: AtomicUsize,
    slot: CachePadded<Slot>,
    /// The FIFO orders this baker's orders submitted (see
    /// [`crate::engine::fifo`]).
    fifo: FifoQueue,
    /// Jobs for this baker alone (a broadcast's), pushed under the staff
    /// lock while the index holds a thread; see [`BakerRecord::deliver`].
    inbox: Mutex<Vec<JobRef>>,
    /// Whether `inbox` may hold a job: the baker's cheap look.
    inbox_pending: sync::AtomicBool,
}

impl BakerRecord {
    /// The record of a baker named `name`, with a fresh deque; no thread
    /// holds it yet.
    pub(crate) fn new(name: Arc<str>) -> BakerRecord {
        let worker = Worker::new_lifo();
        BakerRecord {
            stealer: worker.stealer(),
            name,
            worker: std::sync::Mutex::new(Some(worker)),
            own: CachePadded::new(Own {
                activity: AtomicUsize::new(Activity::Vacant as usize),
                progress: AtomicUsize::new(0),
                retire: AtomicBool::new(false),
            }),
            demand: CachePadded::new(Demand::new()),
            detected_blocked: AtomicBool::new(false),
            os_thread: AtomicUsize::new(0),
            slot: CachePadded::new(Slot::new()),
            fifo: FifoQueue::new(),
            inbox: Mutex::new(Vec::new()),
            inbox_pending: sync::AtomicBool::new(false),
        }
    }

    /// The thief's end of the baker's deque.
    #[inline]
    pub(crate) fn stealer(&self) -> &Stealer<JobRef> {
        &self.stealer
    }

    /// The baker's name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Puts a job in this baker's inbox, for it alone to run.
    ///
    /// The protocol: jobs are delivered under the staff lock, only while
    /// the index holds a thread (its activity is not `Vacant`), and a
    /// thread gives its index up under the staff lock too, taking whatever
    /// its inbox holds to run before it exits ([`take_inbox`]); so no job
    /// is delivered to an index nobody will look at. Between orders the
    /// baker looks at `inbox_pending`, and it looks again under its sleep
    /// slot's lock before sleeping, while the deliverer wakes it through
    /// that same lock after delivering: either the baker sees the job, or
    /// the wake-up finds it asleep.
    ///
    /// [`take_inbox`]: BakerRecord::take_inbox
    pub(crate) fn deliver(&self, job: JobRef) {
        self.inbox.lock().push(job);
        self.inbox_pending.store(true, Ordering::SeqCst);
    }

    /// Whether the inbox may hold a job.
    #[inline]
    pub(crate) fn has_inbox(&self) -> bool {
        self.inbox_pending.load(Ordering::Relaxed)
    }

    /// Takes the oldest job in the inbox, if any.
    pub(crate) fn take_from_inbox(&self) -> Option<JobRef> {
        let mut inbox = self.inbox.lock();
        let job = (!inbox.is_empty()).then(|| inbox.remove(0));
        if inbox.is_empty() {
            self.inbox_pending.store(false, Ordering::Relaxed);
        }
        job
    }

    /// Takes every job in the inbox, for a thread giving up the index.
    pub(crate) fn take_inbox(&self) -> Vec<JobRef> {
        let mut inbox = self.inbox.lock();
        self.inbox_pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut *inbox)
    }

    /// The queue of the FIFO orders submitted on this baker.
    #[inline]
    pub(crate) fn fifo(&self) -> &FifoQueue {
        &self.fifo
    }

    /// The baker's demand flag (see [`super::promotion`]).
    #[inline]
    pub(crate) fn demand(&self) -> &Demand {
        &self.demand
    }

    /// The baker's sleep slot.
    #[inline]
    pub(crate) fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Takes the owner's end of the deque, for the thread that takes the
    /// index. `None` if a thread holds it already.
    pub(crate) fn take_worker(&self) -> Option<Worker<JobRef>> {
        self.worker_slot().take()
    }

    /// Gives the owner's end back, as the thread holding the index leaves.
    /// Whatever it still holds stays stealable, and goes to the next baker.
    pub(crate) fn put_worker(&self, worker: Worker<JobRef>) {
        *self.worker_slot() = Some(worker);
    }

    fn worker_slot(&self) -> std::sync::MutexGuard<'_, Option<Worker<JobRef>>> {
        // Nothing panics while holding it, so it is never poisoned; and if
        // it were, its contents would still be whole.
        self.worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the baker was doing when it last said so.
    pub(crate) fn activity(&self) -> Activity {
        Activity::from_word(self.own.activity.load(Ordering::Acquire))
    }

    /// Says what the baker is doing now. Only the baker itself calls this.
    #[inline]
    pub(crate) fn set_activity(&self, activity: Activity) {
        self.own
            .activity
            .store(activity as usize, Ordering::Release);
    }

    /// Counts a job started. Only the baker itself calls this: a load and a
    /// store on its own line, no read-modify-write.
    #[inline]
    pub(crate) fn count_progress(&self) {
        let progress = &self.own.progress;
        progress.store(
            progress.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// How many jobs the baker started, wrapping.
    pub(crate) fn progress(&self) -> usize {
        self.own.progress.load(Ordering::Relaxed)
    }

    /// Whether the baker was asked to retire after its current order.
    #[inline]
    pub(crate) fn retire_requested(&self) -> bool {
        self.own.retire.load(Ordering::Relaxed)
    }

    /// Asks the baker to retire (`true`), or clears the request as a new
    /// thread takes the index.
    pub(crate) fn set_retire(&self, retire: bool) {
        self.own.retire.store(retire, Ordering::Relaxed);
    }

    /// Whether the monitor found the baker blocked.
    pub(crate) fn detected_blocked(&self) -> bool {
        self.detected_blocked.load(Ordering::Relaxed)
    }

    /// The monitor's verdict.
    pub(crate) fn set_detected_blocked(&self, blocked: bool) {
        self.detected_blocked.store(blocked, Ordering::Relaxed);
    }

    /// The kernel's id of the thread holding the index, if known.
    pub(crate) fn os_thread(&self) -> Option<usize> {
        match self.os_thread.load(Ordering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }

    /// Records the kernel's id of the thread taking the index.
    pub(crate) fn set_os_thread(&self, id: Option<usize>) {
        self.os_thread.store(id.unwrap_or(0), Ordering::Relaxed);
    }
}
