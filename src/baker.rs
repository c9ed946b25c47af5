//! A baker: one worker thread and its loop. Pop local work, take from the
//! injector, steal from a busy colleague, and sleep when there is nothing.
//!
//! Where a baker looks for work, in order:
//!
//! 1. its own deque (LIFO: the newest local order first, the best for caches
//!    and for fork-join);
//! 2. the injector, taking up to 32 orders at once into its own deque so
//!    the next ones cost no lock (and colleagues can still steal them); every
//!    61st look it takes one order from the injector first, so a stream of
//!    local work cannot starve orders from outside;
//! 3. the other bakers' deques, starting from a random one (as rayon-core
//!    does) so thieves spread out, stealing the oldest order (FIFO end).
//!
//! A baker that finds nothing searches for a few rounds, yielding its core
//! between rounds, and then sleeps (see [`crate::sleep`]).
//!
//! # Waiting while working
//!
//! A baker that must wait (for the stolen half of a `join`, for an order it
//! joins, for a scope) keeps taking work while it waits, so a pool never
//! deadlocks because its bakers wait on work that nobody is free to run. Each
//! such wait nests the work it takes on the baker's stack. To keep that stack
//! bounded, a baker already [`MAX_HELP_DEPTH`] waits deep stops looking at
//! the injector and at other bakers' deques: it takes only what is on its
//! own deque (what its own frames pushed, plus at most one batch it took
//! from the injector earlier, which nobody else is obliged to run) and
//! otherwise sleeps until its wait ends. Its stack then grows with the
//! program's own nesting and that finite deque, not with everything queued
//! in the pool.

use crate::job::{JobRef, Mode};
use crate::latch::Probe;
use crate::registry::Registry;
use crate::sleep::SlotState;
use crate::sync::{fence, local, thread, Arc, Ordering, Worker};
use crate::unwind::{self, AbortIfPanic};
use crate::waiter::Waiter;
use crossbeam_deque::Steal;
use std::cell::Cell;
use std::fmt;

/// How many rounds a baker searches before it sleeps.
#[cfg(not(loom))]
const SEARCH_ROUNDS: u32 = 32;
#[cfg(loom)]
const SEARCH_ROUNDS: u32 = 0;

/// How many waits a baker nests while still taking other bakers' work.
pub(crate) const MAX_HELP_DEPTH: u32 = 16;

/// Every how many looks for work a baker checks the injector first.
const INJECTOR_EVERY: u32 = 61;

/// A baker's own state, living on its thread's stack for its whole life.
pub(crate) struct BakerThread {
    worker: Worker<JobRef>,
    index: usize,
    registry: Arc<Registry>,
    rng: XorShift64Star,
    looks: Cell<u32>,
    depth: Cell<u32>,
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

    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    #[inline]
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    #[inline]
    pub(crate) fn registry_ptr(&self) -> *const Registry {
        Arc::as_ptr(&self.registry)
    }

    /// Whether this baker works for the pool whose registry has identity
    /// `pool` (see [`Registry::id`]).
    #[inline]
    pub(crate) fn belongs_to(&self, pool: usize) -> bool {
        self.registry.id() == pool
    }

    /// Pushes a job on the local deque.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.worker.push(job);
    }

    /// Pushes the second half of a `join`. No fence: if nobody takes it, this
    /// baker runs it itself, so a missed wake-up costs parallelism, never the
    /// job.
    #[inline]
    pub(crate) fn push_fork(&self, job: JobRef) {
        self.worker.push(job);
        self.registry.sleep.new_work(|| self.worker.len() <= 1);
    }

    /// Pops the newest job from the local deque.
    #[inline]
    pub(crate) fn take_local(&self) -> Option<JobRef> {
        self.worker.pop()
    }

    /// Runs a job taken from a queue.
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        job.execute(self.registry.mode());
    }

    /// Takes a job from the injector, with a batch more into the local
    /// deque, announced like a push so that no sleeping colleague misses it
    /// (see [`crate::injector`]).
    #[inline]
    fn take_injected(&self) -> Option<JobRef> {
        let (job, moved) = self.registry.injector.pop_batch(&self.worker)?;
        if moved > 0 {
            fence(Ordering::SeqCst);
            self.registry.sleep.new_work(|| self.worker.len() <= moved);
        }
        Some(job)
    }

    fn steal(&self) -> Option<JobRef> {
        let stealers = &self.registry.stealers;
        let bakers = stealers.len();
        if bakers <= 1 {
            return None;
        }
        loop {
            let mut retry = false;
            let start = self.rng.next_below(bakers);
            let victims = (start..bakers).chain(0..start).filter(|&i| i != self.index);
            for victim in victims {
                match stealers[victim].steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Empty => {}
                    Steal::Retry => retry = true,
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// One look for work anywhere.
    #[inline]
    fn find_work(&self) -> Option<JobRef> {
        let looks = self.looks.get().wrapping_add(1);
        self.looks.set(looks);
        if looks % INJECTOR_EVERY == 0 {
            // One order only: a batch on top of local work would only grow
            // the deque.
            if let Some(job) = self.registry.injector.pop() {
                return Some(job);
            }
        }
        self.take_local()
            .or_else(|| self.take_injected())
            .or_else(|| self.steal())
    }

    /// The main loop: work until the pool closes and every queue is empty.
    fn main_loop(&self) {
        let sleep = &self.registry.sleep;
        'work: loop {
            if let Some(job) = self.find_work() {
                self.execute(job);
                continue;
            }
            sleep.start_searching();
            let mut rounds = 0;
            loop {
                if let Some(job) = self.find_work() {
                    sleep.stop_searching(|| self.registry.has_work());
                    self.execute(job);
                    continue 'work;
                }
                if rounds < SEARCH_ROUNDS {
                    rounds += 1;
                    thread::yield_now();
                    continue;
                }
                if self.registry.is_closed() {
                    crate::sync::fence(crate::sync::Ordering::SeqCst);
                    if !self.registry.has_work() {
                        sleep.stop_searching(|| false);
                        break 'work;
                    }
                    continue;
                }
                sleep.sleep(
                    self.index,
                    SlotState::Idle,
                    || !self.registry.is_closed(),
                    || self.registry.has_work(),
                );
                rounds = 0;
            }
        }
    }

    /// Waits until `probe` is done, working for the pool meanwhile (see the
    /// module docs for the depth bound).
    pub(crate) fn wait_until(&self, probe: &impl Probe) {
        if probe.probe() {
            return;
        }
        let depth = self.depth.get();
        self.depth.set(depth + 1);
        // Jobs never unwind (they catch their panics), so no guard is needed
        // to restore the depth.
        if depth < MAX_HELP_DEPTH {
            self.wait_helping(probe);
        } else {
            self.wait_own_work_only(probe);
        }
        self.depth.set(depth);
    }

    pub(crate) fn waiter(&self) -> Waiter {
        Waiter::Baker {
            registry: self.registry.clone(),
            index: self.index,
        }
    }

    fn wait_helping(&self, probe: &impl Probe) {
        let sleep = &self.registry.sleep;
        'work: while !probe.probe() {
            if let Some(job) = self.take_local() {
                self.execute(job);
                continue;
            }
            sleep.start_searching();
            let mut rounds = 0;
            loop {
                if probe.probe() {
                    sleep.stop_searching(|| self.registry.has_work());
                    break 'work;
                }
                if let Some(job) = self.find_work() {
                    sleep.stop_searching(|| self.registry.has_work());
                    self.execute(job);
                    continue 'work;
                }
                if rounds < SEARCH_ROUNDS {
                    rounds += 1;
                    thread::yield_now();
                    continue;
                }
                if !probe.register(|| self.waiter()) {
                    sleep.stop_searching(|| self.registry.has_work());
                    break 'work;
                }
                sleep.sleep(
                    self.index,
                    SlotState::Idle,
                    || !probe.probe(),
                    || self.registry.has_work(),
                );
                rounds = 0;
            }
        }
    }

    fn wait_own_work_only(&self, probe: &impl Probe) {
        let sleep = &self.registry.sleep;
        let mut rounds = 0;
        while !probe.probe() {
            if let Some(job) = self.take_local() {
                self.execute(job);
                rounds = 0;
                continue;
            }
            // Under `shutdown_now` the injector may hold this baker's own
            // forks, moved there by `Registry::cancel_queued_now`. Orders
            // taken from it now are cancelled, not run; only work already
            // under way (forks, scoped orders, carried `join`s and `install`s)
            // still runs. One at a time, not a batch: a batch could carry
            // other waiting bakers' forks into this deque, where they would
            // stay once this baker's own wait ends.
            if self.registry.mode() == Mode::Cancel {
                if let Some(job) = self.registry.injector.pop() {
                    self.execute(job);
                    rounds = 0;
                    continue;
                }
            }
            if rounds < SEARCH_ROUNDS {
                rounds += 1;
                thread::yield_now();
                continue;
            }
            if !probe.register(|| self.waiter()) {
                break;
            }
            // Checked under the slot's lock, which `cancel_queued_now` takes
            // after moving forks to the injector.
            let keep_sleeping = || {
                !probe.probe()
                    && (self.registry.mode() != Mode::Cancel || self.registry.injector.is_empty())
            };
            sleep.sleep(self.index, SlotState::Waiting, keep_sleeping, || false);
            rounds = 0;
        }
    }
}

/// The body of a baker's thread.
pub(crate) fn run(registry: Arc<Registry>, index: usize, worker: Worker<JobRef>) {
    let baker = BakerThread {
        worker,
        index,
        rng: XorShift64Star::new(index),
        registry,
        looks: Cell::new(0),
        depth: Cell::new(0),
    };
    local::set((&baker as *const BakerThread).cast());
    // For the thread's whole life, thread-local destructors included: a
    // shutdown started on this thread must not wait for it.
    local::set_home(baker.registry.id());
    // Orders catch their own panics; anything escaping here is a bug in the
    // pool, which must not keep running half-broken.
    let abort = AbortIfPanic;
    if let Some(hook) = &baker.registry.start_hook {
        unwind::quietly(|| hook(index));
    }
    baker.main_loop();
    if let Some(hook) = &baker.registry.stop_hook {
        unwind::quietly(|| hook(index));
        // The hook runs on a baker, so what it submits went onto this
        // baker's own deque, and what its waits took from the injector may
        // be there too: finish it all before going home, as for any work
        // submitted while the bakery closes.
        baker.main_loop();
    }
    std::mem::forget(abort);
    // Work drained from here on runs as outside work: it cannot push onto
    // this baker's deque, which nobody would empty any more.
    local::set(std::ptr::null());
    baker.registry.baker_leaving();
    baker.registry.baker_left();
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

/// A baker, as seen by the code it runs: its index and name.
///
/// # Examples
///
/// ```
/// use bakery::{Baker, Bakery};
///
/// let bakery = Bakery::builder()
///     .bakers(2)
///     .baker_name(|index| format!("pastry-chef-{index}"))
///     .build()?;
/// let who = bakery.submit(|| Baker::current().unwrap()).join()?;
/// assert!(who.index() < 2);
/// assert_eq!(who.name(), format!("pastry-chef-{}", who.index()));
/// assert!(Baker::current().is_none(), "the main thread is no baker");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Baker {
    index: usize,
    name: std::sync::Arc<str>,
    registry: Arc<Registry>,
}

impl Baker {
    /// The baker running the calling code, or `None` outside any bakery.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(3);
    /// let index = bakery.submit(|| bakery::Baker::current().map(|b| b.index())).join().unwrap();
    /// assert!(index.unwrap() < 3);
    /// ```
    pub fn current() -> Option<Baker> {
        BakerThread::with_current(|baker| {
            baker.map(|baker| Baker {
                index: baker.index,
                name: baker.registry.name(baker.index).clone(),
                registry: baker.registry.clone(),
            })
        })
    }

    /// The baker's index, from `0` to one less than the bakery's bakers.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// assert_eq!(bakery.submit(|| bakery::Baker::current().unwrap().index()).join().unwrap(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The baker's name, which is also its thread's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// let name = bakery.submit(|| bakery::Baker::current().unwrap().name().to_owned());
    /// assert_eq!(name.join().unwrap(), "baker-0");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many bakers work in this baker's bakery.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(2);
    /// assert_eq!(bakery.submit(|| bakery::Baker::current().unwrap().bakers()).join().unwrap(), 2);
    /// ```
    pub fn bakers(&self) -> usize {
        self.registry.bakers()
    }

    /// Whether this baker's bakery is shutting down: it takes no new
    /// orders, and its bakers go home once the queues are empty.
    ///
    /// A long-running order (a periodic check, a server loop) polls it to
    /// end on its own, without holding a [`Bakery`](crate::Bakery) handle
    /// that would keep the bakery open.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakery::Bakery::new(1);
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let watcher = bakery.submit(move || {
    ///     let me = bakery::Baker::current().unwrap();
    ///     started_tx.send(()).unwrap();
    ///     let mut rounds = 0;
    ///     while !me.is_closing() {
    ///         rounds += 1;
    ///         std::thread::sleep(Duration::from_millis(1));
    ///     }
    ///     rounds
    /// });
    /// started.recv().unwrap();
    /// drop(bakery); // the last handle: the bakery closes, and waits for the watcher
    /// let rounds = watcher.join().unwrap();
    /// println!("checked {rounds} times");
    /// ```
    pub fn is_closing(&self) -> bool {
        self.registry.is_closed()
    }
}

impl PartialEq for Baker {
    /// Two `Baker`s are equal when they describe the same baker of the same
    /// bakery.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// let first = bakery.submit(|| bakery::Baker::current().unwrap()).join().unwrap();
    /// let second = bakery.submit(|| bakery::Baker::current().unwrap()).join().unwrap();
    /// assert_eq!(first, second, "the same one baker");
    /// ```
    fn eq(&self, other: &Baker) -> bool {
        self.index == other.index && Arc::ptr_eq(&self.registry, &other.registry)
    }
}

impl Eq for Baker {}

impl fmt::Debug for Baker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Baker")
            .field("index", &self.index)
            .field("name", &&*self.name)
            .finish()
    }
}
