//! A scope's count of its tasks: credits, kept in per-baker caches so that
//! bakers working in the same scope do not share one counter per order.

use crate::engine::baker_thread::BakerThread;
use crate::engine::probe::Probe;
use crate::engine::registry::RegistryId;
use crate::engine::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::engine::unwind::Payload;
use crate::engine::wait;
use crate::engine::waiter::{Waiter, WaiterSlot};
use crossbeam_utils::CachePadded;

/// What the scope and its tasks share. It lives inside the
/// [`Scope`](crate::Scope), on the stack of
/// [`Bakery::scope`](crate::Bakery::scope)'s caller.
///
/// # Counting the tasks: credits
///
/// Every scoped task holds one *credit* from the moment it is created until
/// its block is freed. `live` counts every credit handed out, plus one for
/// the scope itself while its body runs. So that two bakers working on the
/// same scope do not pass one shared word back and forth for every task,
/// credits travel through *caches*: one per baker (bakers beyond the
/// first [`MAX_CACHES`] share them, by index), and one for every other
/// thread:
///
/// * a new task takes a credit from the creating thread's cache; an empty
///   cache first takes [`GRAB`] credits from `live` at once;
/// * a freed task puts its credit into the releasing thread's cache; a cache
///   that would hold more than [`KEEP`] gives them all back to `live`.
///
/// So `live` is always the credits in the caches, plus those held by tasks
/// not yet freed, plus those on their way between a cache and `live` (a
/// batch just grabbed, a full cache's contents being given back), plus 1
/// while the body runs; and a task costs two compare-and-swaps on a word
/// that usually only its baker touches.
///
/// # Waiting for the last task
///
/// When the body returns, the scope *closes* every cache: it swaps in
/// [`CLOSED`] and adds up what the caches held. If `live` holds more than
/// that and its own count, a task still holds a credit, and the scope
/// registers itself as the waiter. Then it gives back the caches' credits
/// together with its own count. (If `live` held no more, no task exists and
/// none can be created, so nobody else can bring `live` to zero.) From then
/// on a thread that finds its cache closed takes or gives back credits on
/// `live` directly. Whoever brings `live` to zero is the last one to touch
/// the data:
///
/// * if that is the scope itself, every task is gone and it returns;
/// * if that is a task, it takes the registered waiter (the scope's
///   registration happened before the scope's own give-back, which came
///   before this one), stores `done`, which is its last access to the data,
///   and only then wakes the waiter it owns.
///
/// The scope waits for `done`, not for `live`, so it cannot return (and
/// free the data with its stack frame) while that task still reads the
/// waiter slot.
///
/// # Why no credit is lost and nothing is touched too late
///
/// Every change to a cache is one compare-and-swap that checks for
/// `CLOSED`, so a credit is either in the cache when the scope closes it
/// (and the scope gives it back) or goes to `live` directly: none is
/// stranded in a closed cache. A task that puts its credit into an open
/// cache touches nothing afterwards, so it does not matter that the scope
/// may end right after. A thread that takes credits (to create a task) is
/// the body or a running task, which still holds its own credit, so `live`
/// cannot reach zero under it.
pub(crate) struct ScopeData {
    /// Credits handed out, plus one while the body runs.
    live: AtomicUsize,
    /// Spare credits, one cache per baker and a last one for other threads;
    /// [`CLOSED`] once the body returned.
    caches: Box<[CachePadded<AtomicUsize>]>,
    /// The bakery whose bakers get their own caches.
    pool: RegistryId,
    /// The scope's caller, registered before it closes the caches.
    waiter: WaiterSlot,
    /// Set by the task that gave back the last credit, as its last access.
    done: AtomicBool,
    /// The first panic nobody observed.
    pub(crate) panic: Mutex<Option<Payload>>,
}

/// The most caches a scope has for bakers; bakers beyond share them.
const MAX_CACHES: usize = 16;

/// A cache's mark once the scope closed it.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// How many credits an empty cache takes from `live` at once.
#[cfg(not(loom))]
const GRAB: usize = 32;
#[cfg(loom)]
const GRAB: usize = 2;

/// The most credits a cache keeps; beyond that it gives them all back.
#[cfg(not(loom))]
const KEEP: usize = 64;
#[cfg(loom)]
const KEEP: usize = 2;

impl ScopeData {
    /// The data of a scope opened on a bakery of `bakers` bakers.
    pub(crate) fn new(bakers: usize, pool: RegistryId) -> ScopeData {
        ScopeData::with_caches(bakers.clamp(1, MAX_CACHES) + 1, pool)
    }

    /// A scope with `caches` caches (the last for outside threads) whose
    /// bakers belong to bakery `pool`.
    fn with_caches(caches: usize, pool: RegistryId) -> ScopeData {
        ScopeData {
            live: AtomicUsize::new(1),
            caches: (0..caches)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            pool,
            waiter: WaiterSlot::new(),
            done: AtomicBool::new(false),
            panic: Mutex::new(None),
        }
    }

    /// The calling thread's cache: its baker's own if it is one of the
    /// bakery's bakers (shared by index beyond [`MAX_CACHES`]), the shared
    /// last one otherwise.
    #[inline]
    pub(crate) fn own_cache(&self) -> usize {
        let outside = self.caches.len() - 1;
        BakerThread::with_own(self.pool, |baker| match baker {
            Some(baker) => baker.index() % outside,
            None => outside,
        })
    }

    /// Takes a credit for a new task from cache `index`. The caller is the
    /// body or a running task of this scope, so `live` stays above zero
    /// throughout.
    #[inline]
    pub(crate) fn take_credit(&self, index: usize) {
        let cache = &self.caches[index];
        let mut spare = cache.load(Ordering::Acquire);
        loop {
            if spare & CLOSED != 0 {
                self.live.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if spare == 0 {
                self.live.fetch_add(GRAB, Ordering::Relaxed);
                self.put_credits(index, GRAB - 1);
                return;
            }
            match cache.compare_exchange_weak(spare, spare - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => spare = now,
            }
        }
    }

    /// Puts `credits` into cache `index`, or gives them back to `live` if the
    /// cache is closed or would hold more than [`KEEP`]. After a successful
    /// put this touches nothing: the credits may be given back, and the
    /// scope end, at once.
    #[inline]
    pub(crate) fn put_credits(&self, index: usize, credits: usize) {
        let cache = &self.caches[index];
        let mut spare = cache.load(Ordering::Acquire);
        loop {
            if spare & CLOSED != 0 {
                return self.give_back(credits);
            }
            let (new, back) = if spare + credits > KEEP {
                (0, spare + credits)
            } else {
                (spare + credits, 0)
            };
            match cache.compare_exchange_weak(spare, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if back > 0 => return self.give_back(back),
                Ok(_) => return,
                Err(now) => spare = now,
            }
        }
    }

    /// Gives `credits` back to `live`; whoever gives back the last one
    /// hands the end of the scope over to its waiter.
    fn give_back(&self, credits: usize) {
        if self.live.fetch_sub(credits, Ordering::AcqRel) == credits {
            let waiter = self.waiter.take();
            // The last access to the data: the scope may return right after.
            self.done.store(true, Ordering::Release);
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
    }

    /// Waits until every task of the scope was freed.
    pub(crate) fn wait_for_tasks(&self) {
        let spare: usize = self
            .caches
            .iter()
            .map(|cache| cache.swap(CLOSED, Ordering::AcqRel) & !CLOSED)
            .sum();
        // More than the caches' credits and the body's own: some task holds
        // one (or credits are on their way), so the last give-back may come
        // from a task, which must find the waiter registered.
        if self.live.load(Ordering::Acquire) > spare + 1 {
            self.waiter.register(wait::current_waiter(), || false);
        }
        if self.live.fetch_sub(spare + 1, Ordering::AcqRel) == spare + 1 {
            // Every task is gone: nobody else touches the data any more.
            return;
        }
        wait::wait(&Done(&self.done));
    }

    /// About how many scoped tasks are not yet freed, for `Debug`: the
    /// caches are read one by one while credits move, so it can be off by a
    /// batch.
    pub(crate) fn tasks(&self) -> usize {
        let spare: usize = self
            .caches
            .iter()
            .map(|cache| cache.load(Ordering::Relaxed) & !CLOSED)
            .sum();
        self.live.load(Ordering::Relaxed).saturating_sub(spare + 1)
    }
}

/// The flag the last task sets; the scope's caller is already registered.
struct Done<'a>(&'a AtomicBool);

impl Probe for Done<'_> {
    #[inline]
    fn probe(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn register(&self, _waiter: impl FnOnce() -> Waiter) -> bool {
        // Registered once, before the scope gave back its count; the last
        // task sets `done` before it wakes that waiter. A parked thread keeps
        // an unpark that comes early; a baker checks `done` again under its
        // slot's lock before it sleeps, and the wake-up takes that lock.
        !self.probe()
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
