//! The one place that picks the synchronization primitives.
//!
//! Every atomic, lock, condition variable, thread and cell the crate uses is
//! imported from here. A normal build gets `std`'s atomics and threads,
//! `parking_lot`'s locks and `crossbeam-deque`'s deques. A build with
//! `RUSTFLAGS="--cfg loom"` gets [loom]'s instrumented stand-ins instead, so
//! the loom models in `tests/loom.rs` and in the modules' `loom_tests` explore
//! every interleaving of the real code.
//!
//! `parking_lot` and `crossbeam-deque` are not loom-aware. Under loom the
//! locks are loom's own, wrapped to keep `parking_lot`'s API (no poisoning,
//! `Condvar::wait(&mut guard)`), and the deques are a small lock-based
//! stand-in with the same interface, in `sync/deque.rs`. Loom checks the crate's own
//! protocols; crossbeam-deque is checked by its own authors.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_deque::{Stealer, Worker};
    pub(crate) use crossbeam_utils::Backoff;
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;

    /// Threads: spawning, parking and identity.
    pub(crate) mod thread {
        pub(crate) use std::thread::{
            current, park, park_timeout, yield_now, Builder, JoinHandle, Thread,
        };
    }

    /// An `UnsafeCell` with loom's closure-based access API, so the same code
    /// compiles against loom's access-tracking cell.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(core::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// The thread-local slots that tell a thread which baker it is.
    pub(crate) mod local {
        use std::cell::Cell;

        std::thread_local! {
            static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
            // No destructor: readable to the thread's very end, including
            // from other thread-locals' destructors.
            static HOME: Cell<usize> = const { Cell::new(0) };
        }

        #[inline]
        pub(crate) fn get() -> *const () {
            CURRENT.with(Cell::get)
        }

        pub(crate) fn set(value: *const ()) {
            CURRENT.with(|cell| cell.set(value));
        }

        /// The identity of the bakery whose baker this thread was started
        /// as, or 0: kept for the thread's whole life.
        #[inline]
        pub(crate) fn home() -> usize {
            HOME.with(Cell::get)
        }

        pub(crate) fn set_home(value: usize) {
            HOME.with(|cell| cell.set(value));
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use super::deque::{Stealer, Worker};
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// Threads: spawning, parking and identity.
    pub(crate) mod thread {
        pub(crate) use loom::thread::{current, park, yield_now, Builder, JoinHandle, Thread};

        /// Loom has no clock: a timed park is a yield (a spurious wake-up,
        /// which every caller already tolerates).
        pub(crate) fn park_timeout(_timeout: std::time::Duration) {
            yield_now();
        }
    }

    /// A `parking_lot`-shaped mutex over loom's.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; the `Option` lets [`Condvar::wait`] move the
    /// inner guard out and back.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap()))
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().unwrap()
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().unwrap()
        }
    }

    /// The result of a timed wait.
    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    /// A `parking_lot`-shaped condition variable over loom's.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().unwrap();
            guard.0 = Some(self.0.wait(inner).unwrap());
        }

        /// Loom has no clock: waits until notified.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// A backoff that yields to loom's scheduler at every step, so spin loops
    /// stay finite in the model.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff {
        step: std::cell::Cell<u32>,
    }

    impl Backoff {
        pub(crate) fn new() -> Backoff {
            Backoff::default()
        }

        pub(crate) fn snooze(&self) {
            self.step.set(self.step.get() + 1);
            loom::thread::yield_now();
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.step.get() > 1
        }
    }

    /// The thread-local slots that tell a thread which baker it is.
    pub(crate) mod local {
        use std::cell::Cell;

        loom::thread_local! {
            static CURRENT: Cell<*const ()> = Cell::new(std::ptr::null());
            static HOME: Cell<usize> = Cell::new(0);
        }

        pub(crate) fn get() -> *const () {
            CURRENT.with(Cell::get)
        }

        pub(crate) fn set(value: *const ()) {
            CURRENT.with(|cell| cell.set(value));
        }

        pub(crate) fn home() -> usize {
            HOME.with(Cell::get)
        }

        pub(crate) fn set_home(value: usize) {
            HOME.with(|cell| cell.set(value));
        }
    }
}

#[cfg(loom)]
mod deque;

pub(crate) use imp::*;

/// Atomics that no protocol under test depends on: counters and hints (what
/// a baker is doing, how many jobs it started, how many bakers are surplus)
/// and the roster's write-once places. They are `std`'s even under loom,
/// which leaves them out of its models so that they add no interleavings to
/// explore.
pub(crate) mod unmodelled {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
}
