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
//! * its counters for the statistics ([`Tally`]): orders submitted from
//!   it, orders it ran, that panicked, that it found cancelled or rejected,
//!   jobs it stole, and the time it spent busy.
//!
//! # Counters without a shared read-modify-write
//!
//! Every counter is written only by the thread holding the index, with a
//! load and a store on the record's own line (the line it already writes
//! for `progress`, so counting dirties no other line), never a
//! read-modify-write. Readers (`Bakery::stats`) load each word on its own;
//! a word only ever grows, so no reader sees one go backwards, though two
//! words read one after the other are not one instant's picture.
//!
//! A baker that leaves (it retires, or the bakery closes) leaves its
//! counters in the record, and the next baker to take the index counts on
//! from there: the roster never frees a record, so nothing counted is ever
//! lost from the totals, and a record's row in the statistics is its
//! index's whole history. The next baker's first load sees the last store
//! of the one before: the index passes between them under the staff lock
//! (see [`super::registry::staff`]), which orders the two threads.
//!
//! Busy time is the time a baker is awake, as tokio counts its workers'
//! busy time: running jobs, or looking for work between them, but not
//! asleep. It is kept as stretches: a baker stamps the start of a stretch
//! when it starts or wakes up and adds the stretch to its total right
//! before it falls asleep, so it reads the clock twice per sleep (which
//! costs a lock and a park anyway), never per order or per steal. A reader
//! adds the stretch in progress, and reads the start stamp before and after
//! the total to be sure the two belong together (see
//! [`BakerRecord::busy`]).
//!
//! None of these words takes part in a protocol that must not lose work:
//! a retire request, for one, is followed by a wake-up through the baker's
//! sleep slot, whose lock orders them. So they are left out of the loom
//! models (see [`crate::engine::sync::unmodelled`]).

use crate::engine::fifo::FifoQueue;
use crate::engine::job::Fate;
use crate::engine::job::JobRef;
use crate::engine::promotion::Demand;
use crate::engine::sleep::Slot;
use crate::engine::sync::unmodelled::{AtomicBool, AtomicU64, AtomicUsize};
use crate::engine::sync::{self, Mutex, Ordering, Stealer, Worker};
use crossbeam_utils::CachePadded;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The statistics' counters; written only by the baker.
    tally: Tally,
}

/// One baker's counters for the statistics, each written only by the
/// baker holding the index (see the module docs).
#[derive(Default)]
struct Tally {
    submitted: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    rejected: AtomicU64,
    steals: AtomicU64,
    /// Nanoseconds busy, in finished stretches.
    busy: AtomicU64,
    /// When the stretch in progress started, in nanoseconds since the
    /// record's epoch plus [`STAMP_BASE`]; [`NOT_BUSY`] while not busy,
    /// [`ENDING`] while the stretch is being added to `busy`.
    busy_since: AtomicU64,
}

/// What a record's counters said when read (see [`BakerRecord::tally`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TallySnapshot {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) rejected: u64,
    pub(crate) steals: u64,
    pub(crate) busy: Duration,
}

/// The busy stamp of a baker not in a stretch of work.
const NOT_BUSY: u64 = 0;
/// The busy stamp while a stretch is being added to the total.
const ENDING: u64 = 1;
/// What a busy stamp adds to the nanoseconds it stands for.
const STAMP_BASE: u64 = 2;

/// Adds one to a counter only its owner writes: a load and a store.
#[inline(always)]
fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
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
    /// Set by the baker while it runs a start or stop hook, which the
    /// monitor leaves alone (see `BakerThread::blocking`).
    in_hook: AtomicBool,
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
    /// What the busy stamps count from.
    epoch: Instant,
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
                tally: Tally::default(),
            }),
            demand: CachePadded::new(Demand::new()),
            detected_blocked: AtomicBool::new(false),
            in_hook: AtomicBool::new(false),
            os_thread: AtomicUsize::new(0),
            slot: CachePadded::new(Slot::new()),
            fifo: FifoQueue::new(),
            inbox: Mutex::new(Vec::new()),
            inbox_pending: sync::AtomicBool::new(false),
            epoch: Instant::now(),
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
    /// thread says it is `Vacant` under the staff lock too, and only with an
    /// empty inbox (`Registry::leave_if_inbox_empty`; otherwise it runs the
    /// jobs, as itself, and tries again); so no job is delivered to an
    /// index nobody will look at, and every job runs on its baker. Between orders the
    /// baker looks at `inbox_pending`, and it looks again under its sleep
    /// slot's lock before sleeping, while the deliverer wakes it through
    /// that same lock after delivering: either the baker sees the job, or
    /// the wake-up finds it asleep.
    pub(crate) fn deliver(&self, job: JobRef) {
        let mut inbox = self.inbox.lock();
        inbox.push(job);
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

    /// Whether the baker runs a start or stop hook now.
    pub(crate) fn in_hook(&self) -> bool {
        self.in_hook.load(Ordering::Relaxed)
    }

    /// Says whether the baker runs a start or stop hook. Only the baker
    /// itself calls this.
    pub(crate) fn set_in_hook(&self, in_hook: bool) {
        self.in_hook.store(in_hook, Ordering::Relaxed);
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

    // -----------------------------------------------------------------
    // The statistics' counters: written only by the baker itself
    // -----------------------------------------------------------------

    /// Counts an order submitted from this baker onto its own deque.
    #[inline]
    pub(crate) fn count_submitted(&self) {
        bump(&self.own.tally.submitted);
    }

    /// Counts what became of a job this baker settled.
    #[inline]
    pub(crate) fn count_fate(&self, fate: Fate) {
        let tally = &self.own.tally;
        match fate {
            Fate::Kept | Fate::Untracked => {}
            Fate::Completed => bump(&tally.completed),
            Fate::Panicked => bump(&tally.panicked),
            Fate::Cancelled => bump(&tally.cancelled),
            Fate::Rejected => bump(&tally.rejected),
        }
    }

    /// Counts a job stolen from a colleague.
    #[inline]
    pub(crate) fn count_steal(&self) {
        bump(&self.own.tally.steals);
    }

    /// The baker starts, or wakes up: a stretch of awake time begins.
    #[inline]
    pub(crate) fn busy_from_now(&self) {
        let since = self.nanos_since_epoch(Instant::now()) + STAMP_BASE;
        self.own.tally.busy_since.store(since, Ordering::Release);
    }

    /// The baker is about to fall asleep: the stretch in progress, if any,
    /// joins the total. It marks the stamp [`ENDING`] before it reads the clock,
    /// and stores the total before clearing the stamp (see
    /// [`busy`](Self::busy) for why).
    #[inline]
    pub(crate) fn busy_until_now(&self) {
        let tally = &self.own.tally;
        let since = tally.busy_since.load(Ordering::Relaxed);
        if since == NOT_BUSY {
            return;
        }
        tally.busy_since.store(ENDING, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        let now = self.nanos_since_epoch(Instant::now()) + STAMP_BASE;
        let total = tally.busy.load(Ordering::Relaxed) + now.saturating_sub(since);
        tally.busy.store(total, Ordering::Release);
        tally.busy_since.store(NOT_BUSY, Ordering::Release);
    }

    fn nanos_since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long the bakers holding this index were busy, up to `now`,
    /// including the stretch in progress. `now` must have been read before
    /// this call.
    ///
    /// A stamp read unchanged before and after the total belongs with it
    /// (the baker stores the total before clearing the stamp, and stamps a
    /// new stretch only after that); a stamp that changed or is
    /// [`ENDING`] is read again. And the value never goes backwards between
    /// two reads: a reader that saw the stamp still set read its clock
    /// before the baker marked it ending, so before the baker read the
    /// clock that ends the stretch, and the part of the stretch it added is
    /// no longer than the part the total gets.
    pub(crate) fn busy(&self, now: Instant) -> Duration {
        let tally = &self.own.tally;
        loop {
            let before = tally.busy_since.load(Ordering::SeqCst);
            let total = tally.busy.load(Ordering::SeqCst);
            let after = tally.busy_since.load(Ordering::SeqCst);
            if before != after || before == ENDING {
                std::hint::spin_loop();
                continue;
            }
            let running = match before {
                NOT_BUSY => 0,
                since => (self.nanos_since_epoch(now) + STAMP_BASE).saturating_sub(since),
            };
            return Duration::from_nanos(total.saturating_add(running));
        }
    }

    /// What the counters say now (each word read on its own).
    pub(crate) fn tally(&self, now: Instant) -> TallySnapshot {
        let tally = &self.own.tally;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TallySnapshot {
            submitted: load(&tally.submitted),
            completed: load(&tally.completed),
            panicked: load(&tally.panicked),
            cancelled: load(&tally.cancelled),
            rejected: load(&tally.rejected),
            steals: load(&tally.steals),
            busy: self.busy(now),
        }
    }
}
