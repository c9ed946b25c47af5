//! Latches: one-shot signals set once and probed by their owner.
//!
//! Setting a latch can let its owner return and free the memory the latch
//! lives in, so [`Latch::set`] takes a raw pointer and the setter reads
//! everything it needs before the store that publishes "set".

use crate::engine::baker_thread::BakerThread;
use crate::engine::probe::Probe;
use crate::engine::registry::Registry;
use crate::engine::sync::{Arc, AtomicUsize, Ordering};
use crate::engine::waiter::Waiter;

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
            registry: Arc::as_ptr(owner.registry()),
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
            unsafe { (*registry).wake_baker(owner) };
        }
    }
}
