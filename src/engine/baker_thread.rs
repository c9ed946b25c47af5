//! A baker's thread: its private state, and the one loop by which it works,
//! searches and sleeps until what it waits for happens.
//!
//! Where a baker looks for work, in order:
//!
//! 1. its own deque (LIFO: the newest local order first, the best for caches
//!    and for fork-join);
//! 2. its inbox: jobs for it alone, a broadcast's (see
//!    [`BakerRecord::deliver`]), looked at from every wait, even past the
//!    stack budget below, since nobody else may run them;
//! 3. the injector, taking up to 32 orders at once into its own deque so
//!    the next ones cost no lock (and colleagues can still steal them); every
//!    61st look it takes one order from the injector first, so a stream of
//!    local work cannot starve orders from outside;
//! 4. the other bakers' deques, starting from a random one (as rayon-core
//!    does) so thieves spread out, stealing the oldest order (FIFO end).
//!
//! A baker that finds nothing searches for a few rounds, yielding its core
//! between rounds, and then sleeps (see [`super::sleep`]).
//!
//! # One loop for every wait
//!
//! [`BakerThread::wait_until`] is the only scheduling loop: work, search,
//! sleep, until a [`Probe`] says what the baker waits for happened. A
//! baker's life is one such wait, for the probe [`Life`] ("the bakery
//! closed and every queue is empty, or this baker retires"); every wait
//! inside an order (for the
//! stolen half of a `join`, an order it joins, a scope) is another, nested
//! on the baker's stack.
//!
//! # Waiting while working
//!
//! A baker that must wait keeps taking work while it waits, so a pool never
//! deadlocks because its bakers wait on work that nobody is free to run. Each
//! such wait nests the work it takes on the baker's stack. To keep that
//! stack bounded, the bound is on the stack itself, not on how many waits
//! nest: a wait takes work from anywhere only while the baker's stack is
//! less than a quarter full ([`HELP_STACK_SHARE`]). Beyond that it takes
//! only what is on its own deque (what its own frames pushed, plus at most
//! one batch it took from the injector earlier, which nobody else is
//! obliged to run) and otherwise sleeps until its wait ends, so every order
//! it runs keeps at least three quarters of the stack for itself.
//!
//! A nested wait costs about 0.5 KiB of stack in a release build and
//! 2.5 KiB in a debug build, so on the default 2 MiB stack a baker helps
//! through about a thousand nested waits (two hundred in a debug build);
//! a fixed depth of 16 used to turn help into a wait much sooner, and hang
//! when the awaited work sat in the injector with no other baker free.

use crate::engine::baker_record::{Activity, BakerRecord};
use crate::engine::job::{Fate, JobRef, Mode};
use crate::engine::probe::Probe;
use crate::engine::promotion::PendingForks;
use crate::engine::registry::{Registry, RegistryId};
use crate::engine::sleep::SlotState;
use crate::engine::sync::{fence, local, thread, Arc, Ordering, Worker};
use crate::engine::unwind::{self, AbortIfPanic};
use crate::engine::waiter::Waiter;
use crossbeam_deque::Steal;
use std::cell::Cell;
use std::ptr::NonNull;

/// How many rounds a baker searches before it sleeps.
#[cfg(not(loom))]
const SEARCH_ROUNDS: u32 = 32;
#[cfg(loom)]
const SEARCH_ROUNDS: u32 = 0;

/// A wait takes work from anywhere only while less than this share of the
/// baker's stack (one part in this many) is used.
const HELP_STACK_SHARE: usize = 4;

/// Every how many looks for work a baker checks the injector first.
const INJECTOR_EVERY: u32 = 61;

/// Where a waiting baker looks for work.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Everywhere: its deque, the injector, its colleagues' deques. It
    /// counts as searching while it looks, and sleeps as `Idle`.
    Everywhere,
    /// Its own deque only (and, under `shutdown_now`, single jobs from the
    /// injector, where the closer may have moved its forks). It never counts
    /// as searching, and sleeps as `Waiting`.
    OwnDeque,
}

/// A baker's own state, living on its thread's stack for its whole life.
pub(crate) struct BakerThread {
    worker: Worker<JobRef>,
    index: usize,
    registry: Arc<Registry>,
    /// This baker's record, in `registry`'s roster.
    record: NonNull<BakerRecord>,
    rng: XorShift64Star,
    looks: Cell<u32>,
    /// How many waits are nested on this baker's stack now.
    waits: Cell<u32>,
    /// The address of the bottom frame of the thread's stack, about.
    stack_base: usize,
    /// How many bytes of stack the waits may fill while taking work from
    /// anywhere.
    help_stack: usize,
    /// How many `blocking` calls are nested on this baker's stack now.
    blocking: Cell<u32>,
    /// Whether a start or stop hook runs now (see [`BakerThread::blocking`]).
    in_hook: Cell<bool>,
    /// The forks of the joins on this baker's stack, until promoted (see
    /// [`super::promotion`]).
    pending: PendingForks,
}

impl BakerThread {
    /// Calls `f` with the baker running on this thread, if any.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&BakerThread>) -> R) -> R {
        let current = local::get().cast::<BakerThread>();
        // SAFETY: the pointer is set by `run` to a `BakerThread` on this
        // thread's stack before any job runs here, and reset to null before
        // that frame ends; so while it is non-null, the baker it points to
        // outlives every call made on this thread, including `f`.
        f(unsafe { current.as_ref() })
    }

    /// Calls `f` with the baker running on this thread if it is one of
    /// bakery `pool`'s bakers, and with `None` otherwise (no baker, or
    /// another bakery's).
    #[inline]
    pub(crate) fn with_own<R>(pool: RegistryId, f: impl FnOnce(Option<&BakerThread>) -> R) -> R {
        BakerThread::with_current(|baker| f(baker.filter(|baker| baker.registry.id() == pool)))
    }

    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    #[inline]
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// This baker's record.
    #[inline]
    pub(crate) fn record(&self) -> &BakerRecord {
        // SAFETY: the roster keeps every record at the same address until
        // the registry drops, and `self.registry` keeps the registry alive
        // for as long as `self` lives.
        unsafe { self.record.as_ref() }
    }

    /// How jobs taken now are to be treated (see [`Registry::mode`]).
    #[inline]
    pub(crate) fn mode(&self) -> Mode {
        self.registry.mode()
    }

    /// Pushes an order onto the local deque and announces it: a `SeqCst`
    /// fence, then a look at the sleep counters (see [`super::sleep`]).
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.worker.push(job);
        fence(Ordering::SeqCst);
        // As a fork: this baker is busy, and the monitor looks at the deque
        // of a baker it suspects (see `super::monitor`).
        self.registry.new_fork();
    }

    /// The forks of the joins on this baker's stack (see
    /// [`super::promotion`]).
    #[inline(always)]
    pub(crate) fn pending(&self) -> &PendingForks {
        &self.pending
    }

    /// A random baker index below `n`.
    #[inline]
    pub(crate) fn random_below(&self, n: usize) -> usize {
        self.rng.next_below(n)
    }

    /// Pops the newest job from the local deque.
    #[inline]
    pub(crate) fn take_local(&self) -> Option<JobRef> {
        self.worker.pop()
    }

    /// Runs a job taken from a queue, and counts it as progress (see
    /// [`super::monitor`]) and in the statistics.
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        self.count_progress();
        let fate = job.execute(self.registry.mode());
        self.count_fate(fate);
    }

    /// Counts what became of a job this baker settled, in its record.
    #[inline]
    pub(crate) fn count_fate(&self, fate: Fate) {
        self.record().count_fate(fate);
    }

    /// Counts a job started here some other way (an order a join popped
    /// back and ran itself).
    #[inline]
    pub(crate) fn count_progress(&self) {
        self.record().count_progress();
    }

    /// Runs `f`, which is about to block, with this baker counted as
    /// blocked: the bakery starts or wakes another baker so that its
    /// configured number stay runnable, and this baker's deque stays
    /// stealable meanwhile. Nested calls count once.
    pub(crate) fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        /// Counts the baker runnable again, even if `f` panics.
        struct Unblock<'a> {
            baker: &'a BakerThread,
            outermost: bool,
            counted: bool,
            was: Activity,
        }

        impl Drop for Unblock<'_> {
            fn drop(&mut self) {
                let baker = self.baker;
                baker.blocking.set(baker.blocking.get() - 1);
                if self.outermost {
                    if self.counted {
                        baker.registry.baker_unblocks(baker.index);
                    }
                    baker.record().set_activity(self.was);
                }
            }
        }

        // A hook runs outside the baker's work: a start hook that blocks
        // would otherwise start a stand-in whose own start hook blocks, and
        // so on up to `max_bakers`.
        // Whoever runs while this baker blocks may take its forks.
        self.promote_all();
        if self.in_hook.get() {
            return f();
        }
        let outermost = self.blocking.get() == 0;
        self.blocking.set(self.blocking.get() + 1);
        let record = self.record();
        let was = record.activity();
        let mut counted = false;
        if outermost {
            record.set_activity(Activity::Blocked);
            counted = Registry::baker_blocks(&self.registry, self.index);
            if !counted {
                // On its way home: not a baker the bakery counts on.
                record.set_activity(was);
            }
        }
        let _unblock = Unblock {
            baker: self,
            outermost,
            counted,
            was,
        };
        f()
    }

    /// Moves whatever is left on this baker's deque into the injector, for
    /// a baker that retires: each entry is announced like an outside submit
    /// (see [`Registry::inject`]), so a sleeping colleague takes it.
    fn hand_over_deque(&self) {
        while let Some(job) = self.worker.pop() {
            // Closed meanwhile: the entry stays in the injector, which the
            // last baker to leave drains; this one is still present.
            self.registry.inject(job, || ());
        }
    }

    fn steal(&self) -> Option<JobRef> {
        let bakers = self.registry.indices();
        if bakers <= 1 {
            return None;
        }
        loop {
            let mut retry = false;
            let start = self.rng.next_below(bakers);
            let victims = (start..bakers).chain(0..start).filter(|&i| i != self.index);
            for victim in victims {
                match self.registry.steal(victim) {
                    Steal::Success(job) => {
                        self.record().count_steal();
                        return Some(job);
                    }
                    Steal::Empty => {}
                    Steal::Retry => retry = true,
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// A job for this baker alone (a broadcast's), from any wait: nobody
    /// else may run it. Looked for once the baker's own deque is empty, so
    /// what its orders queued runs first, as rayon-core's broadcasts do.
    #[inline]
    fn take_from_inbox(&self) -> Option<JobRef> {
        let record = self.record();
        if record.has_inbox() {
            record.take_from_inbox()
        } else {
            None
        }
    }

    /// One look for work, as far as `reach` allows.
    #[inline]
    fn find_work(&self, reach: Reach) -> Option<JobRef> {
        match reach {
            Reach::Everywhere => {
                let looks = self.looks.get().wrapping_add(1);
                self.looks.set(looks);
                if looks % INJECTOR_EVERY == 0 {
                    // One order only: a batch on top of local work would only
                    // grow the deque.
                    if let Some(job) = self.registry.pop_injected() {
                        return Some(job);
                    }
                }
                self.take_local()
                    .or_else(|| self.take_from_inbox())
                    .or_else(|| self.registry.take_injected(&self.worker))
                    .or_else(|| self.steal())
            }
            Reach::OwnDeque => self
                .take_local()
                .or_else(|| self.take_from_inbox())
                .or_else(|| {
                    // Under `shutdown_now` the injector may hold this baker's own
                    // forks, moved there by `Registry::cancel_queued_now`. Orders
                    // taken from it now are cancelled, not run; only work already
                    // under way still runs. One at a time, not a batch: a batch
                    // could carry other waiting bakers' forks into this deque,
                    // where they would stay once this baker's own wait ends.
                    if self.registry.mode() == Mode::CancelOrRun {
                        self.registry.pop_injected()
                    } else {
                        None
                    }
                }),
        }
    }

    /// Runs one job from the queues if there is one, as far as the stack
    /// budget lets a wait reach (see the module docs). Returns whether it
    /// ran one.
    pub(crate) fn yield_now(&self) -> bool {
        let reach = if stack_address().abs_diff(self.stack_base) < self.help_stack {
            Reach::Everywhere
        } else {
            Reach::OwnDeque
        };
        match self.find_work(reach) {
            Some(job) => {
                self.execute(job);
                true
            }
            None => false,
        }
    }

    /// Waits until `probe` is done, working for the pool meanwhile: the one
    /// scheduling loop (see the module docs for how far it reaches).
    pub(crate) fn wait_until(&self, probe: &impl Probe) {
        if probe.probe() {
            return;
        }
        let reach = if stack_address().abs_diff(self.stack_base) < self.help_stack {
            Reach::Everywhere
        } else {
            Reach::OwnDeque
        };
        let waits = self.waits.get();
        self.waits.set(waits + 1);
        // Jobs never unwind (they catch their panics), so no guard is needed
        // to restore the count.
        match reach {
            Reach::Everywhere => self.work_until(probe, reach),
            // Past its stack budget, a waiting baker takes no unrelated work:
            // it is as good as blocked, and the bakery starts another to take
            // the work it leaves, which may be the very work it waits for.
            Reach::OwnDeque => self.blocking(|| self.work_until(probe, reach)),
        }
        self.waits.set(waits);
    }

    /// Works, searches and sleeps until `probe` is done.
    fn work_until(&self, probe: &impl Probe, reach: Reach) {
        // Only the baker's life-long wait says when it is idle: a wait inside
        // an order is still that order's work.
        let record = (self.waits.get() == 0).then(|| self.record());
        let set_activity = |activity| {
            if let Some(record) = record {
                record.set_activity(activity);
            }
        };
        let counted = reach == Reach::Everywhere;
        let has_work = || counted && self.registry.has_work();
        let stop_searching = || {
            if counted {
                self.registry
                    .stop_searching(has_work, || !self.worker.is_empty());
            }
        };
        'work: while !probe.probe() {
            self.promote_if_asked();
            if let Some(job) = self.find_work(reach) {
                self.execute(job);
                continue;
            }
            set_activity(Activity::Searching);
            let search_rounds = if counted && self.registry.start_searching() {
                SEARCH_ROUNDS
            } else {
                0
            };
            let mut rounds = 0;
            loop {
                if probe.probe() {
                    stop_searching();
                    break 'work;
                }
                if let Some(job) = self.find_work(reach) {
                    // Working before anyone is woken: a batch it just moved
                    // onto its deque is stealable now (see `Registry::steal`).
                    set_activity(Activity::Working);
                    stop_searching();
                    self.execute(job);
                    continue 'work;
                }
                if counted {
                    self.ask_for_work();
                }
                if rounds < search_rounds {
                    rounds += 1;
                    thread::yield_now();
                    continue;
                }
                if !probe.register(|| self.waiter()) {
                    stop_searching();
                    break 'work;
                }
                // Checked under the slot's lock. A baker reaching its own
                // deque only must also wake for a fork that `shutdown_now`
                // moved to the injector: that sweep wakes every baker after
                // the move, and takes the slot's lock to do it.
                let keep_sleeping = || {
                    probe.may_sleep()
                        && !self.record().has_inbox()
                        && (counted
                            || self.registry.mode() != Mode::CancelOrRun
                            || self.registry.injector_is_empty())
                };
                let mode = if counted {
                    SlotState::Idle
                } else {
                    SlotState::Waiting
                };
                // Idle only while it sleeps: its deque is empty now. Idle
                // before the keep-alive is read, with a fence between: a
                // surplus that appears meanwhile wakes this baker (see
                // `Registry::update_surplus`), or this read sees it.
                // Awake time ends here (see `super::baker_record`).
                if let Some(record) = record {
                    record.busy_until_now();
                }
                set_activity(Activity::Idle);
                fence(Ordering::SeqCst);
                if record.is_some() {
                    // After the fence: pairs with a waiter for an idle
                    // bakery (see `super::idle`).
                    self.registry.baker_stopped();
                }
                let timeout = probe.sleep_timeout();
                let timed_out =
                    self.registry
                        .sleep(self.index, mode, keep_sleeping, has_work, timeout);
                set_activity(Activity::Searching);
                if let Some(record) = record {
                    record.busy_from_now();
                }
                if timed_out {
                    probe.timed_out();
                }
                rounds = 0;
            }
        }
    }

    /// What to register to be woken: this baker's sleep slot.
    pub(crate) fn waiter(&self) -> Waiter {
        Waiter::Baker {
            registry: self.registry.clone(),
            index: self.index,
        }
    }
}

/// What a baker's life waits for: the bakery closed and every queue empty,
/// or its own retirement (see [`crate::engine::registry::staff`]).
/// Shutdown wakes every baker, and `set_bakers` the bakers it asks to
/// retire, so there is nothing to register.
struct Life<'a> {
    registry: &'a Registry,
    record: &'a BakerRecord,
    index: usize,
    retiring: Cell<bool>,
}

impl Life<'_> {
    /// Whether the bakery closed and every queue is empty. A baker leaves
    /// for good only after it has seen `closed` and then, past its own
    /// fence, every queue empty (see `registry::shutdown`).
    #[inline]
    fn closing(&self) -> bool {
        self.registry.is_closed() && {
            fence(Ordering::SeqCst);
            !self.registry.has_work()
        }
    }
}

impl Probe for Life<'_> {
    #[inline]
    fn probe(&self) -> bool {
        if self.retiring.get() || self.record.retire_requested() {
            self.retiring.set(true);
            return true;
        }
        self.closing()
    }

    fn register(&self, _waiter: impl FnOnce() -> Waiter) -> bool {
        true
    }

    /// Only until the bakery closes: the shutdown's one wake-up comes right
    /// after it closes, and a baker that saw it closed keeps looking until
    /// the queues are empty instead of sleeping through the work left. Nor
    /// once asked to retire, which `set_bakers` does before its wake-up.
    fn may_sleep(&self) -> bool {
        !self.registry.is_closed() && !self.record.retire_requested()
    }

    /// A surplus baker waits `keep_alive` for work, then retires (see
    /// `Registry::may_retire` for which bakers do).
    fn sleep_timeout(&self) -> Option<std::time::Duration> {
        self.registry
            .may_retire(self.index)
            .then(|| self.registry.keep_alive())
    }

    fn timed_out(&self) {
        if !self.registry.has_work() && self.registry.try_retire_surplus(self.index) {
            self.retiring.set(true);
        }
    }
}

/// The kernel's id of the calling thread, where the system says it (Linux),
/// so the blocking monitor can ask whether the thread sleeps.
fn os_thread_id() -> Option<usize> {
    if cfg!(loom) {
        return None;
    }
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The address of a local in the caller's frame: where the stack is now.
#[inline(always)]
fn stack_address() -> usize {
    let marker = 0_u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The body of baker `index`'s thread, whose stack is `stack_size` bytes:
/// it takes the owner's end of the index's deque, works until the bakery
/// closes or it retires, and gives the index back.
pub(crate) fn run(registry: Arc<Registry>, index: usize, stack_size: usize) {
    let record = NonNull::from(registry.record(index));
    let worker = registry
        .record(index)
        .take_worker()
        .expect("a starting baker finds its deque in its record");
    let baker = BakerThread {
        worker,
        index,
        record,
        rng: XorShift64Star::new(index),
        registry,
        looks: Cell::new(0),
        waits: Cell::new(0),
        stack_base: stack_address(),
        // Loom's threads have stacks of their own size; its models never
        // nest deep, so they take work from anywhere at every depth.
        help_stack: if cfg!(loom) {
            usize::MAX
        } else {
            stack_size / HELP_STACK_SHARE
        },
        blocking: Cell::new(0),
        in_hook: Cell::new(false),
        pending: PendingForks::new(),
    };
    let record = baker.record();
    record.set_os_thread(os_thread_id());
    record.set_activity(Activity::Working);
    local::set((&baker as *const BakerThread).cast());
    // For the thread's whole life, thread-local destructors included: a
    // shutdown started on this thread must not wait for it.
    local::set_home(baker.registry.id().as_home());
    // Orders catch their own panics; anything escaping here is a bug in the
    // pool, which must not keep running half-broken.
    let abort = AbortIfPanic;
    if let Some(hook) = baker.registry.start_hook() {
        baker.in_hook.set(true);
        record.set_in_hook(true);
        unwind::quietly(|| hook(index));
        baker.in_hook.set(false);
        record.set_in_hook(false);
    }
    let life = Life {
        registry: &baker.registry,
        record,
        index,
        retiring: Cell::new(false),
    };
    record.busy_from_now();
    baker.work_until(&life, Reach::Everywhere);
    let retiring = life.retiring.get();
    if let Some(hook) = baker.registry.stop_hook() {
        record.set_activity(Activity::Working);
        baker.in_hook.set(true);
        record.set_in_hook(true);
        unwind::quietly(|| hook(index));
        baker.in_hook.set(false);
        record.set_in_hook(false);
        // The hook runs on a baker, so what it submits went onto this
        // baker's own deque, and what its waits took from the injector may
        // be there too: it is finished below before going home, as any work
        // submitted while the bakery closes (a retiring baker hands it over
        // instead).
    }
    // The index is given up under the staff lock, and only with an empty
    // inbox: jobs for this baker alone (a broadcast's share), which it runs
    // as itself, still a baker, before trying again (see
    // `BakerRecord::deliver`). What they queue is drained or handed over
    // like any work before the next try.
    loop {
        if retiring {
            baker.hand_over_deque();
        } else {
            baker.work_until(&life, Reach::Everywhere);
        }
        if baker.registry.leave_if_inbox_empty(index) {
            break;
        }
        while let Some(job) = record.take_from_inbox() {
            baker.execute(job);
        }
    }
    // Going home: its awake time ends.
    record.busy_until_now();
    // Vacant (said above, under the staff lock), then the fence the idle
    // waiters pair with (see `crate::engine::idle`).
    fence(Ordering::SeqCst);
    baker.registry.baker_stopped();
    std::mem::forget(abort);
    // Work drained from here on runs as outside work: it cannot push onto
    // this baker's deque, which nobody would empty any more.
    local::set(std::ptr::null());
    let BakerThread {
        worker, registry, ..
    } = baker;
    if retiring {
        Registry::retired(&registry, index, worker);
    }
    registry.baker_leaving();
    registry.baker_left();
}

/// A small, fast random number generator for picking steal victims
/// (xorshift64*, as in rayon-core).
struct XorShift64Star {
    state: Cell<u64>,
}

impl XorShift64Star {
    fn new(index: usize) -> XorShift64Star {
        // Any odd-ish nonzero seed works; mix the index so bakers differ.
        let seed = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        XorShift64Star {
            state: Cell::new(seed),
        }
    }

    fn next(&self) -> u64 {
        let mut x = self.state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_below(&self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
