//! The state one bakery's handles and bakers share, behind the methods that
//! own its protocols: submitting (here), sleeping and waking (delegated to
//! [`super::sleep`]), and shutting down ([`shutdown`]).
//!
//! # Submitting
//!
//! An order from outside the pool enters the global [`Injector`] through
//! [`Registry::inject`]; an order submitted by one of the pool's own bakers
//! goes onto that baker's local deque (see
//! [`BakerThread::push`](super::baker_thread::BakerThread::push)). Either way
//! the submitter then issues a `SeqCst` fence and reads the sleep counters
//! (to wake a baker, see [`super::sleep`]); an outside submitter also reads
//! the `closed` flag then, which is what lets a shutdown lose nothing (see
//! [`shutdown`]).

mod idle;
pub(crate) mod shutdown;
pub(crate) mod staff;
pub(crate) mod tally;

use crate::engine::baker_record::{Activity, BakerRecord};
use crate::engine::fifo::FifoQueue;
use crate::engine::idle::IdleWatch;
use crate::engine::injector::Injector;
use crate::engine::job::{JobRef, Mode};
use crate::engine::monitor::Monitor;
use crate::engine::roster::Roster;
use crate::engine::sleep::{Sleep, SlotState};
use crate::engine::sync::unmodelled;
use crate::engine::sync::{fence, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, Worker};
use crate::engine::timer::Timer;
use crate::error::PanicError;
use crossbeam_deque::Steal;
use staff::Staff;
use std::sync::Arc;
use std::time::Duration;

/// The type of a panic handler: see `BakeryBuilder::panic_handler`.
pub(crate) type PanicHandler = dyn Fn(PanicError) + Send + Sync;

/// The type of a start or stop hook, called with the baker's index.
pub(crate) type Hook = Box<dyn Fn(usize) + Send + Sync>;

/// The type of a baker-naming closure: see `BakeryBuilder::baker_name`.
pub(crate) type Namer = Box<dyn FnMut(usize) -> String + Send>;

/// A bakery's identity: unique in the process and never reused, so a
/// thread that outlives its bakery can never mistake a later one for its
/// own (as a registry's address could be reused). Compared, never
/// dereferenced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RegistryId(usize);

impl RegistryId {
    /// A fresh identity.
    fn next() -> RegistryId {
        // Starts at 1: 0 means "no bakery" in a thread's home slot.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        RegistryId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    /// The identity as a thread's home slot stores it (see
    /// [`crate::engine::sync::local::home`]).
    pub(crate) fn as_home(self) -> usize {
        self.0
    }

    /// An identity no bakery has, for models that need one.
    #[cfg(all(test, loom))]
    pub(crate) fn none() -> RegistryId {
        RegistryId(0)
    }
}

/// The state shared by a bakery's handles and bakers.
pub(crate) struct Registry {
    id: RegistryId,
    injector: Injector,
    /// The FIFO orders submitted from outside (see [`super::fifo`]).
    fifo: FifoQueue,
    roster: Roster,
    sleep: Sleep,
    closed: AtomicBool,
    cancel_queued: AtomicBool,
    panic_handler: Option<Arc<PanicHandler>>,
    start_hook: Option<Hook>,
    stop_hook: Option<Hook>,
    /// Live `Bakery` handles; the last one to go shuts the pool down.
    handles: AtomicUsize,
    /// Bakers that have not left their main loop; the last one out drains
    /// the injector (see [`shutdown`]).
    present: AtomicUsize,
    /// Bakers whose thread has not finished its main loop yet.
    alive: Mutex<usize>,
    gone: Condvar,
    /// Who works here, and their threads (see [`staff`]).
    staff: Mutex<Staff>,
    /// Signalled when the bakers' threads have all been joined.
    joined: Condvar,
    /// How many bakers are beyond the configured number, as the staff last
    /// counted: read without the lock by bakers about to sleep.
    surplus: unmodelled::AtomicUsize,
    /// The configured number of bakers, as the staff last counted.
    target_hint: unmodelled::AtomicUsize,
    keep_alive: Duration,
    /// The blocking monitor, unless detection is switched off.
    monitor: Option<Monitor>,
    /// How many cores the machine has: the most bakers that search at once.
    cores: usize,
    /// Delayed orders waiting for their deadlines (see [`super::timer`]).
    timer: Timer,
    /// Who waits for the bakery to be idle (see [`idle`]).
    idle: IdleWatch,
    /// What the statistics count off the bakers (see [`tally`]).
    rare: tally::RareTally,
}

/// Everything [`Registry::start`] needs.
pub(crate) struct RegistryParts {
    /// The names of the first bakers, started at once: as many as the
    /// configured number of bakers.
    pub(crate) names: Vec<String>,
    /// The most bakers the bakery may hold.
    pub(crate) max_bakers: usize,
    /// Names the bakers started later (stand-ins, `set_bakers`).
    pub(crate) namer: Option<Namer>,
    pub(crate) stack_size: usize,
    pub(crate) keep_alive: Duration,
    /// How long a baker may make no progress while orders wait before the
    /// monitor asks whether it is blocked; `None` switches the monitor off.
    pub(crate) blocking_threshold: Option<Duration>,
    pub(crate) panic_handler: Option<Arc<PanicHandler>>,
    pub(crate) start_hook: Option<Hook>,
    pub(crate) stop_hook: Option<Hook>,
}

impl Registry {
    /// The registry of a bakery with no baker started yet.
    fn new(mut parts: RegistryParts) -> Registry {
        let staff = Staff::new(&mut parts);
        Registry {
            id: RegistryId::next(),
            injector: Injector::new(),
            fifo: FifoQueue::new(),
            roster: Roster::new(parts.max_bakers),
            sleep: Sleep::new(),
            closed: AtomicBool::new(false),
            cancel_queued: AtomicBool::new(false),
            panic_handler: parts.panic_handler,
            start_hook: parts.start_hook,
            stop_hook: parts.stop_hook,
            handles: AtomicUsize::new(1),
            present: AtomicUsize::new(0),
            alive: Mutex::new(0),
            gone: Condvar::new(),
            staff: Mutex::new(staff),
            joined: Condvar::new(),
            surplus: unmodelled::AtomicUsize::new(0),
            target_hint: unmodelled::AtomicUsize::new(0),
            keep_alive: parts.keep_alive,
            monitor: parts.blocking_threshold.map(Monitor::new),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            timer: Timer::new(),
            idle: IdleWatch::new(),
            rare: tally::RareTally::default(),
        }
    }

    /// This pool's identity, compared against an order's and against a
    /// thread's home.
    #[inline]
    pub(crate) fn id(&self) -> RegistryId {
        self.id
    }

    /// How many baker indices were ever used: every baker's index is below.
    #[inline]
    pub(crate) fn indices(&self) -> usize {
        self.roster.len()
    }

    /// Baker `index`'s record.
    #[inline]
    pub(crate) fn record(&self, index: usize) -> &BakerRecord {
        self.roster.record(index)
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How a baker should treat the jobs it takes now.
    #[inline]
    pub(crate) fn mode(&self) -> Mode {
        if self.cancel_queued.load(Ordering::Relaxed) {
            Mode::CancelOrRun
        } else {
            Mode::Run
        }
    }

    /// The timer, where delayed orders wait.
    pub(crate) fn timer(&self) -> &Timer {
        &self.timer
    }

    /// The handler for panics that no handle reports.
    pub(crate) fn panic_handler(&self) -> Option<&Arc<PanicHandler>> {
        self.panic_handler.as_ref()
    }

    /// The start hook, if any.
    pub(crate) fn start_hook(&self) -> Option<&Hook> {
        self.start_hook.as_ref()
    }

    /// The stop hook, if any.
    pub(crate) fn stop_hook(&self) -> Option<&Hook> {
        self.stop_hook.as_ref()
    }

    /// A new `Bakery` handle exists.
    pub(crate) fn add_handle(&self) {
        self.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// A `Bakery` handle is gone; returns whether it was the last.
    pub(crate) fn drop_handle(&self) -> bool {
        self.handles.fetch_sub(1, Ordering::AcqRel) == 1
    }

    // -----------------------------------------------------------------
    // Submitting
    // -----------------------------------------------------------------

    /// The submit protocol for a job from outside the pool: push it into
    /// the injector, fence, and look at `closed` again. If the pool closed
    /// meanwhile, `if_closed` settles the job's outcome (rejects it, or runs
    /// it on the caller), the injector is drained if no baker is left to do
    /// it, and its result is returned; otherwise a baker is woken if needed
    /// and `None` is returned. The caller checked `closed` before building
    /// the job (see [`shutdown`] for why both looks are needed).
    #[inline]
    pub(crate) fn inject<R>(&self, job: JobRef, if_closed: impl FnOnce() -> R) -> Option<R> {
        self.injector.push(job);
        self.after_inject(if_closed)
    }

    /// [`inject`](Self::inject) for a newly submitted order, which the
    /// injector counts (see [`tally`]).
    #[inline]
    pub(crate) fn inject_order<R>(&self, job: JobRef, if_closed: impl FnOnce() -> R) -> Option<R> {
        self.injector.push_order(job);
        self.after_inject(if_closed)
    }

    #[inline]
    fn after_inject<R>(&self, if_closed: impl FnOnce() -> R) -> Option<R> {
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            let settled = if_closed();
            self.drain_if_deserted();
            return Some(settled);
        }
        // Every baker busy: the order waits, and the blocking monitor
        // watches whether they are blocked (one load when it already does).
        let all_busy = self.sleep.new_work(&self.roster);
        self.poke_monitor_if(all_busy);
        None
    }

    /// The queue of the FIFO orders submitted from outside.
    #[inline]
    pub(crate) fn fifo(&self) -> &FifoQueue {
        &self.fifo
    }

    /// A fork became visible on a baker's own deque (no fence: the forking
    /// baker runs it itself if nobody takes it). Wakes a sleeper as for any
    /// work, but does not poke the blocking monitor: the forking baker is
    /// busy with the other half, and a fork-join makes and takes forks far
    /// too often to tell the monitor each time.
    #[inline]
    pub(crate) fn new_fork(&self) {
        self.sleep.new_work(&self.roster);
    }

    /// New work found every baker busy: the blocking monitor watches (see
    /// [`super::monitor`]).
    #[inline]
    fn poke_monitor_if(&self, all_busy: bool) {
        if all_busy {
            if let Some(monitor) = &self.monitor {
                monitor.poke();
            }
        }
    }

    /// The blocking monitor's state, if this bakery has one.
    pub(crate) fn monitor(&self) -> Option<&Monitor> {
        self.monitor.as_ref()
    }

    /// Whether every baker is busy: none searching, none asleep.
    pub(crate) fn all_busy(&self) -> bool {
        self.sleep.all_busy()
    }

    /// Whether orders from outside wait in the injector for a baker.
    pub(crate) fn injector_has_work(&self) -> bool {
        !self.injector.is_empty()
    }

    // -----------------------------------------------------------------
    // Taking work
    // -----------------------------------------------------------------

    /// Takes the oldest job from the injector, with a batch more moved into
    /// `dest` (the caller's own deque) and announced like a push, so that no
    /// sleeping colleague misses it (see [`super::injector`]).
    #[inline]
    pub(crate) fn take_injected(&self, dest: &Worker<JobRef>) -> Option<JobRef> {
        let (job, moved) = self.injector.pop_batch(dest)?;
        if moved > 0 {
            fence(Ordering::SeqCst);
            let all_busy = self.sleep.new_work(&self.roster);
            self.poke_monitor_if(all_busy);
        }
        Some(job)
    }

    /// Takes the oldest job from the injector, and only that one.
    #[inline]
    pub(crate) fn pop_injected(&self) -> Option<JobRef> {
        self.injector.pop()
    }

    /// Whether the injector looked empty.
    #[inline]
    pub(crate) fn injector_is_empty(&self) -> bool {
        self.injector.is_empty()
    }

    /// Tries to steal the oldest job of baker `victim`'s deque. An idle
    /// baker's deque is empty (it went idle for want of work, and only its
    /// owner pushes onto it), so it is skipped without a look: with many
    /// bakers, that saves touching every idle deque on every round. Only a
    /// hint: whoever must not miss work uses [`has_work`](Self::has_work).
    #[inline]
    pub(crate) fn steal(&self, victim: usize) -> Steal<JobRef> {
        let record = self.roster.record(victim);
        if matches!(record.activity(), Activity::Idle | Activity::Vacant) {
            return Steal::Empty;
        }
        record.stealer().steal()
    }

    /// Whether any queue holds a job.
    pub(crate) fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.roster.records().any(|r| !r.stealer().is_empty())
    }

    /// How many jobs the queues hold (a snapshot).
    pub(crate) fn queued(&self) -> usize {
        self.injector.len()
            + self
                .roster
                .records()
                .map(|record| record.stealer().len())
                .sum::<usize>()
    }

    // -----------------------------------------------------------------
    // Sleeping and waking (the protocol is in `sleep`)
    // -----------------------------------------------------------------

    /// A baker ran out of work and starts searching. Returns whether it
    /// should search for a while before it sleeps: not when as many bakers
    /// as there are cores search already, where one more would only take a
    /// core from a baker with work.
    #[inline]
    pub(crate) fn start_searching(&self) -> bool {
        self.sleep.start_searching() < self.cores
    }

    /// A baker stops searching; see [`Sleep::stop_searching`]. If every
    /// baker is busy now while orders wait, the blocking monitor watches:
    /// orders wait in the injector, or on the caller's own deque, as
    /// `own_work` says (a batch it just took lands there; forks on the other
    /// bakers' deques do not count, see `super::monitor`).
    #[inline]
    pub(crate) fn stop_searching(
        &self,
        has_work: impl Fn() -> bool,
        own_work: impl FnOnce() -> bool,
    ) {
        if self.sleep.stop_searching(&self.roster, &has_work) && self.monitor.is_some() {
            fence(Ordering::SeqCst);
            self.poke_monitor_if(!self.injector.is_empty() || own_work());
        }
    }

    /// Puts baker `index` to sleep; see [`Sleep::sleep`]. Returns whether
    /// `timeout` passed with nobody waking it.
    pub(crate) fn sleep(
        &self,
        index: usize,
        mode: SlotState,
        keep_sleeping: impl Fn() -> bool,
        has_work: impl FnOnce() -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        self.sleep.sleep(
            self.roster.record(index).slot(),
            mode,
            keep_sleeping,
            has_work,
            timeout,
        )
    }

    /// Wakes a sleeping baker if any queue holds work: for work that was
    /// queued before, whose baker cannot take it now (it blocks, or retires).
    pub(crate) fn wake_for_queued_work(&self) {
        fence(Ordering::SeqCst);
        if self.has_work() {
            let all_busy = self.sleep.new_work(&self.roster);
            self.poke_monitor_if(all_busy);
        }
    }

    /// Wakes baker `index` whatever it sleeps for: what it waits for
    /// happened.
    pub(crate) fn wake_baker(&self, index: usize) {
        self.sleep.wake_specific(self.roster.record(index).slot());
    }
}
