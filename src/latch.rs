//! Latches and waiting: one-shot signals, and how a thread waits for one.
//!
//! A latch starts unset; someone sets it once; its owner probes it. Setting
//! a latch can let its owner return and free the memory the latch lives in,
//! so [`Latch::set`] takes a raw pointer and the setter reads everything it
//! needs before the store that publishes "set".
//!
//! [`Probe`] is what a waiter needs from anything it waits for (the stolen
//! half of a `join`, an order, a scope): a cheap check, and a way to register
//! for a wake-up. [`wait`] then waits the right way for the calling thread: a
//! baker keeps working for its pool while it waits, any other thread parks.

use crate::baker::BakerThread;
use crate::registry::Registry;
use crate::sync::{thread, AtomicUsize, Backoff, Ordering};
use crate::waiter::Waiter;
use std::time::{Duration, Instant};

/// Something a waiter can check and register with.
pub(crate) trait Probe {
    /// Whether the awaited event happened. Once true, everything written
    /// before the event is visible to the caller.
    fn probe(&self) -> bool;

    /// Asks for the waiter built by `waiter` to be woken when the event
    /// happens. Returns `false` if it already happened. (A [`BakerLatch`]
    /// always wakes its owning baker and ignores `waiter`.)
    fn register(&self, waiter: impl FnOnce() -> Waiter) -> bool;

    /// Forgets a registered waiter: a timed wait that gave up.
    fn unregister(&self) {}
}

/// A latch that can be set through a raw pointer.
pub(crate) trait Latch {
    /// Sets the latch and wakes its owner if it sleeps.
    ///
    /// # Safety
    ///
    /// `this` must be valid on entry. It may dangle as soon as the latch is
    /// observed set, so implementations must not touch it after publishing.
    unsafe fn set(this: *const Self);
}

/// Waits until `probe` is done. A baker (of any pool) keeps working for its
/// own pool meanwhile; any other thread spins briefly, then parks.
pub(crate) fn wait(probe: &impl Probe) {
    if probe.probe() {
        return;
    }
    BakerThread::with_current(|baker| match baker {
        Some(baker) => baker.wait_until(probe),
        None => {
            park_until(probe, None);
        }
    });
}

/// The waiter to register for the calling thread: its slot in the pool's
/// sleep module if it is a baker, else the thread itself.
pub(crate) fn current_waiter() -> Waiter {
    BakerThread::with_current(|baker| match baker {
        Some(baker) => baker.waiter(),
        None => Waiter::Thread(thread::current()),
    })
}

/// How long a waiting thread keeps checking, yielding its core, before it
/// parks: about what an asleep baker needs to wake up and run a short order,
/// so a quick round trip costs the waiter no wake-up of its own.
#[cfg(not(loom))]
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);
/// Loom has no clock: park at once.
#[cfg(loom)]
const SPIN_BEFORE_PARK: Duration = Duration::ZERO;

/// Parks the calling thread until `probe` is done or `deadline` passes,
/// without doing any other work. Returns whether `probe` is done.
pub(crate) fn park_until(probe: &impl Probe, deadline: Option<Instant>) -> bool {
    let backoff = Backoff::new();
    let mut spin_until = None;
    while !probe.probe() {
        if !backoff.is_completed() {
            backoff.snooze();
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            probe.unregister();
            return probe.probe();
        }
        if now < *spin_until.get_or_insert(now + SPIN_BEFORE_PARK) {
            thread::yield_now();
            continue;
        }
        if probe.register(|| Waiter::Thread(thread::current())) {
            match deadline {
                Some(deadline) => thread::park_timeout(deadline.saturating_duration_since(now)),
                None => thread::park(),
            }
        }
    }
    true
}

const UNSET: usize = 0;
const SLEEPING: usize = 1;
const SET: usize = 2;

/// The latch of a fork: set by the thief that ran a `join`'s second half,
/// probed by the baker that forked it.
pub(crate) struct BakerLatch {
    state: AtomicUsize,
    owner: usize,
    registry: *const Registry,
}

impl BakerLatch {
    /// A latch owned by `owner`.
    pub(crate) fn new(owner: &BakerThread) -> BakerLatch {
        BakerLatch {
            state: AtomicUsize::new(UNSET),
            owner: owner.index(),
            registry: owner.registry_ptr(),
        }
    }
}

impl Probe for BakerLatch {
    #[inline]
    fn probe(&self) -> bool {
        self.state.load(Ordering::Acquire) == SET
    }

    fn register(&self, _waiter: impl FnOnce() -> Waiter) -> bool {
        match self
            .state
            .compare_exchange(UNSET, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(current) => current == SLEEPING,
        }
    }
}

impl Latch for BakerLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: `this` is valid until the swap below publishes SET; the
        // fields are copied first and the swap is the last access.
        let (owner, registry, state) = unsafe { ((*this).owner, (*this).registry, &(*this).state) };
        if state.swap(SET, Ordering::AcqRel) == SLEEPING {
            // SAFETY: only a baker of the owner's pool runs a fork (forks are
            // pushed on the owner's deque and stolen only within its pool),
            // and that baker keeps the pool's registry alive.
            unsafe { (*registry).sleep.wake_specific(owner) };
        }
    }
}
