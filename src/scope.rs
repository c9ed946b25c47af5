//! Scoped orders: orders that borrow from the caller's stack, all finished
//! before [`Bakery::scope`](crate::Bakery::scope) returns.
//!
//! The lifetimes follow `std::thread::scope`: `'env` is what the orders may
//! borrow, `'scope` is the scope itself, and an order submitted to the scope
//! may live as long as `'scope` and no longer.
//!
//! # Why borrowing is sound
//!
//! Every scoped order is a task whose kind points at the scope's
//! [`ScopeData`]. A task holds one of the scope's credits from its creation
//! until its block is freed, after its closure and its value were dropped
//! or taken (see [`crate::task`]), and the scope waits until every credit
//! came back before it returns, so no scoped closure, value, or handle
//! outlives the borrows it holds. Handles cannot escape the scope (their
//! type carries `'scope`), so every credit can come back; only leaking a
//! handle with `std::mem::forget` keeps a scope waiting, forever, which is
//! safe.
//!
//! # Panics
//!
//! A panic in a scoped order that its handle reported (through `join`,
//! `try_join`, `join_timeout` or `.await`) is the caller's to handle. Every
//! other one is caught and kept; once all scoped orders finished, the scope
//! re-raises the first of them with its original payload, as
//! `std::thread::scope` does for threads that were not joined.

use crate::baker::BakerThread;
use crate::error::{JoinTimeoutError, OrderError, PanicError, TryJoinError};
use crate::latch::{self, Probe};
use crate::registry::Registry;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::task::{self, RawOrder, TaskKind};
use crate::unwind::{self, Payload};
use crate::waiter::{Waiter, WaiterSlot};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What the scope and its tasks share. It lives inside the [`Scope`], on
/// the stack of [`Bakery::scope`](crate::Bakery::scope)'s caller.
///
/// # Counting the tasks: credits
///
/// Every scoped task holds one *credit* from the moment it is created until
/// its block is freed. `live` counts every credit handed out, plus one for
/// the scope itself while its body runs. So that two bakers working on the
/// same scope do not pass one shared word back and forth for every task,
/// credits travel through per-thread *pools*, one per baker of the pool and
/// one for every other thread:
///
/// * a new task takes a credit from the creating thread's pool; an empty
///   pool first takes [`GRAB`] credits from `live` at once;
/// * a freed task puts its credit into the releasing thread's pool; a pool
///   that would hold more than [`KEEP`] gives them all back to `live`.
///
/// So `live` is always the credits in the pools, plus those held by tasks
/// not yet freed, plus those on their way between a pool and `live` (a
/// batch just grabbed, a full pool's contents being given back), plus 1
/// while the body runs; and a task costs two compare-and-swaps on a word
/// that usually only its baker touches.
///
/// # Waiting for the last task
///
/// When the body returns, the scope *closes* every pool: it swaps in
/// [`CLOSED`] and adds up what the pools held. If `live` holds more than
/// that and its own count, a task still holds a credit, and the scope
/// registers itself as the waiter. Then it gives back the pools' credits
/// together with its own count. (If `live` held no more, no task exists and
/// none can be created, so nobody else can bring `live` to zero.) From then
/// on a thread that finds its pool closed takes or gives back credits on
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
/// Every change to a pool is one compare-and-swap that checks for
/// `CLOSED`, so a credit is either in the pool when the scope closes it
/// (and the scope gives it back) or goes to `live` directly: none is
/// stranded in a closed pool. A task that puts its credit into an open
/// pool touches nothing afterwards, so it does not matter that the scope
/// may end right after. A thread that takes credits (to create a task) is
/// the body or a running task, which still holds its own credit, so `live`
/// cannot reach zero under it.
pub(crate) struct ScopeData {
    /// Credits handed out, plus one while the body runs.
    live: AtomicUsize,
    /// Spare credits, one pool per baker and a last one for other threads;
    /// [`CLOSED`] once the body returned.
    pools: Box<[CachePadded<AtomicUsize>]>,
    /// The pool whose bakers get their own pools.
    pool: usize,
    /// The scope's caller, registered before it closes the pools.
    waiter: WaiterSlot,
    /// Set by the task that gave back the last credit, as its last access.
    done: AtomicBool,
    /// The first panic nobody observed.
    panic: Mutex<Option<Payload>>,
}

/// A pool's mark once the scope closed it.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// How many credits an empty pool takes from `live` at once.
#[cfg(not(loom))]
const GRAB: usize = 32;
#[cfg(loom)]
const GRAB: usize = 2;

/// The most credits a pool keeps; beyond that it gives them all back.
#[cfg(not(loom))]
const KEEP: usize = 64;
#[cfg(loom)]
const KEEP: usize = 2;

impl ScopeData {
    fn new(registry: &Registry) -> ScopeData {
        ScopeData::with_pools(registry.bakers() + 1, registry.id())
    }

    /// A scope with `pools` pools whose bakers belong to pool `pool`.
    fn with_pools(pools: usize, pool: usize) -> ScopeData {
        ScopeData {
            live: AtomicUsize::new(1),
            pools: (0..pools)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            pool,
            waiter: WaiterSlot::new(),
            done: AtomicBool::new(false),
            panic: Mutex::new(None),
        }
    }

    /// The calling thread's pool: its own if it is one of the pool's
    /// bakers, the shared last one otherwise.
    #[inline]
    fn own_pool(&self) -> usize {
        BakerThread::with_current(|baker| match baker {
            Some(baker) if baker.belongs_to(self.pool) => baker.index(),
            _ => self.pools.len() - 1,
        })
    }

    /// Takes a credit for a new task from pool `index`. The caller is the
    /// body or a running task of this scope, so `live` stays above zero
    /// throughout.
    #[inline]
    fn take_credit(&self, index: usize) {
        let pool = &self.pools[index];
        let mut spare = pool.load(Ordering::Acquire);
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
            match pool.compare_exchange_weak(spare, spare - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => spare = now,
            }
        }
    }

    /// Puts `credits` into pool `index`, or gives them back to `live` if the
    /// pool is closed or would hold more than [`KEEP`]. After a successful
    /// put this touches nothing: the credits may be given back, and the
    /// scope end, at once.
    #[inline]
    fn put_credits(&self, index: usize, credits: usize) {
        let pool = &self.pools[index];
        let mut spare = pool.load(Ordering::Acquire);
        loop {
            if spare & CLOSED != 0 {
                return self.give_back(credits);
            }
            let (new, back) = if spare + credits > KEEP {
                (0, spare + credits)
            } else {
                (spare + credits, 0)
            };
            match pool.compare_exchange_weak(spare, new, Ordering::AcqRel, Ordering::Acquire) {
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
    fn wait_for_tasks(&self) {
        let spare: usize = self
            .pools
            .iter()
            .map(|pool| pool.swap(CLOSED, Ordering::AcqRel) & !CLOSED)
            .sum();
        // More than the pools' credits and the body's own: some task holds
        // one (or credits are on their way), so the last give-back may come
        // from a task, which must find the waiter registered.
        if self.live.load(Ordering::Acquire) > spare + 1 {
            self.waiter.register(latch::current_waiter(), || false);
        }
        if self.live.fetch_sub(spare + 1, Ordering::AcqRel) == spare + 1 {
            // Every task is gone: nobody else touches the data any more.
            return;
        }
        latch::wait(&Done(&self.done));
    }

    /// About how many scoped tasks are not yet freed, for `Debug`: the
    /// pools are read one by one while credits move, so it can be off by a
    /// batch.
    fn tasks(&self) -> usize {
        let spare: usize = self
            .pools
            .iter()
            .map(|pool| pool.load(Ordering::Relaxed) & !CLOSED)
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

/// The kind of a scoped order.
pub(crate) struct ScopedKind {
    data: *const ScopeData,
}

// SAFETY: `ScopeData` is `Sync` and outlives every task of its scope: the
// scope does not return before the last task's `released` set `done`.
unsafe impl Send for ScopedKind {}

impl ScopedKind {
    fn new(data: &ScopeData) -> ScopedKind {
        data.take_credit(data.own_pool());
        ScopedKind { data }
    }

    fn data(&self) -> &ScopeData {
        // SAFETY: the task holding this kind holds a credit (see
        // `ScopeData`), so the scope is still waiting and its data is alive.
        unsafe { &*self.data }
    }
}

impl TaskKind for ScopedKind {
    /// A scoped order is part of work already in progress, like a fork:
    /// `shutdown_now` lets it run. Its handle can still cancel it.
    const CANCELLABLE: bool = false;

    fn unobserved_panic(&self, panic: PanicError) {
        let mut first = self.data().panic.lock();
        if first.is_none() {
            *first = Some(panic.into_payload());
            return;
        }
        drop(first);
        // Only the first is re-raised. This runs on a baker, where a panic
        // from the payload's own destructor must not unwind.
        unwind::quietly(|| drop(panic));
    }

    fn released(self) {
        let data = self.data();
        data.put_credits(data.own_pool(), 1);
    }
}

/// A scope in which orders may borrow from the caller; created by
/// [`Bakery::scope`](crate::Bakery::scope).
///
/// # Examples
///
/// ```
/// let bakery = bakery::Bakery::new(2);
/// let flour = vec![250, 500, 125];
/// let mut total = 0;
/// bakery.scope(|s| {
///     let weighed = s.submit(|| flour.iter().sum::<i32>());
///     total = weighed.join().unwrap();
/// });
/// assert_eq!(total, 875);
/// ```
///
/// A scoped order cannot outlive its scope:
///
/// ```compile_fail
/// let bakery = bakery::Bakery::new(1);
/// let escaped = bakery.scope(|s| s.submit(|| 1));
/// ```
///
/// nor borrow what does not outlive the scope:
///
/// ```compile_fail
/// let bakery = bakery::Bakery::new(1);
/// bakery.scope(|s| {
///     let local = String::from("crumbs");
///     s.submit(|| local.len());
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    data: ScopeData,
    registry: &'env Registry,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Submits an order that may borrow anything that outlives the scope.
    ///
    /// It runs on the bakery like any order, and finishes before the scope
    /// ends. A scoped order is never rejected: if the bakery no longer takes
    /// orders from the calling thread, it runs right here, on the caller;
    /// and `shutdown_now` lets queued scoped orders run, as part of the work
    /// in progress. Only its handle's [`cancel`](ScopedOrder::cancel) can
    /// stop it.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(2);
    /// let mut trays = vec![0; 4];
    /// bakery.scope(|s| {
    ///     for (i, tray) in trays.iter_mut().enumerate() {
    ///         s.submit(move || *tray = i * 10);
    ///     }
    /// });
    /// assert_eq!(trays, [0, 10, 20, 30]);
    /// ```
    pub fn submit<F, T>(&'scope self, order: F) -> ScopedOrder<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let raw = match self
            .registry
            .try_submit(order, || ScopedKind::new(&self.data))
        {
            Ok(raw) => raw,
            // The pool no longer takes orders from this thread: run it here,
            // so that scoped work is never lost.
            Err(order) => task::run_now(order, ScopedKind::new(&self.data), self.registry.id()),
        };
        ScopedOrder {
            raw,
            scope: PhantomData,
        }
    }

    pub(crate) fn run<F, R>(registry: &'env Registry, body: F) -> R
    where
        F: for<'s> FnOnce(&'s Scope<'s, 'env>) -> R,
    {
        let scope = Scope {
            data: ScopeData::new(registry),
            registry,
            scope: PhantomData,
            env: PhantomData,
        };
        let result = unwind::halt_unwinding(|| body(&scope));
        scope.data.wait_for_tasks();
        let unobserved = scope.data.panic.lock().take();
        // Whatever is not handed on is dropped before unwinding starts: a
        // destructor that panics while a panic unwinds would abort.
        match (result, unobserved) {
            (Err(payload), unobserved) => {
                unwind::quietly(|| drop(unobserved));
                unwind::resume_unwinding(payload)
            }
            (Ok(value), Some(payload)) => {
                unwind::quietly(|| drop(value));
                unwind::resume_unwinding(payload)
            }
            (Ok(value), None) => value,
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("live_orders", &self.data.tasks())
            .finish_non_exhaustive()
    }
}

/// The handle to a scoped order; the same operations as
/// [`Order`](crate::Order), limited to the scope's lifetime.
///
/// Dropping it detaches the order, which still finishes before the scope
/// ends; if it panics, the scope re-raises that panic when it ends. So,
/// unlike a plain [`Order`](crate::Order), a scoped order can be submitted
/// and dropped without losing anything.
///
/// Leaking it is another matter: the scope waits until every handle is
/// gone (the value it holds may borrow from the scope), so a handle passed
/// to [`std::mem::forget`] keeps its scope waiting for ever. See
/// [`Bakery::scope`](crate::Bakery::scope).
///
/// # Examples
///
/// ```
/// let bakery = bakery::Bakery::new(2);
/// let orders = ["croissant", "baguette", "brioche"];
/// let lengths: Vec<usize> = bakery.scope(|s| {
///     let handles: Vec<_> = orders.iter().map(|name| s.submit(move || name.len())).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert_eq!(lengths, [9, 8, 7]);
/// ```
pub struct ScopedOrder<'scope, T> {
    raw: RawOrder<T>,
    scope: PhantomData<&'scope ()>,
}

impl<'scope, T> ScopedOrder<'scope, T> {
    /// Waits for the order and returns its value; see
    /// [`Order::join`](crate::Order::join).
    ///
    /// A panic reported here is not re-raised by the scope.
    ///
    /// # Errors
    ///
    /// [`OrderError::Panicked`] or [`OrderError::Cancelled`], as for
    /// [`Order::join`](crate::Order::join). A scoped order is never
    /// rejected.
    ///
    /// # Panics
    ///
    /// As [`Order::join`](crate::Order::join): if the order runs further
    /// down the calling baker's own stack, or was already polled to
    /// completion.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// let recipe = String::from("scones");
    /// let shout = bakery.scope(|s| s.submit(|| recipe.to_uppercase()).join().unwrap());
    /// assert_eq!(shout, "SCONES");
    /// ```
    pub fn join(self) -> Result<T, OrderError> {
        self.raw.join()
    }

    /// Returns the outcome if the order has finished, or the handle back.
    ///
    /// # Errors
    ///
    /// [`TryJoinError::NotFinished`] with the handle, or
    /// [`TryJoinError::Failed`], as for [`Order::try_join`](crate::Order::try_join).
    ///
    /// # Panics
    ///
    /// If the order was already polled to completion.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// let n = 21;
    /// let doubled = bakery.scope(|s| {
    ///     let mut order = s.submit(|| n * 2);
    ///     loop {
    ///         match order.try_join() {
    ///             Ok(value) => break value,
    ///             Err(bakery::TryJoinError::NotFinished(again)) => order = again,
    ///             Err(bakery::TryJoinError::Failed(error)) => panic!("{error}"),
    ///         }
    ///     }
    /// });
    /// assert_eq!(doubled, 42);
    /// ```
    pub fn try_join(mut self) -> Result<T, TryJoinError<ScopedOrder<'scope, T>>> {
        match self.raw.take_outcome() {
            Some(outcome) => outcome.map_err(TryJoinError::Failed),
            None => Err(TryJoinError::NotFinished(self)),
        }
    }

    /// Waits at most `timeout`; see
    /// [`Order::join_timeout`](crate::Order::join_timeout).
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] with the handle, or
    /// [`JoinTimeoutError::Failed`], as for
    /// [`Order::join_timeout`](crate::Order::join_timeout).
    ///
    /// # Panics
    ///
    /// If the order was already polled to completion.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakery::Bakery::new(1);
    /// let icing = "vanilla";
    /// bakery.scope(|s| {
    ///     let order = s.submit(|| icing.len());
    ///     assert_eq!(order.join_timeout(Duration::from_secs(10)).unwrap(), 7);
    /// });
    /// ```
    pub fn join_timeout(
        mut self,
        timeout: Duration,
    ) -> Result<T, JoinTimeoutError<ScopedOrder<'scope, T>>> {
        match self.raw.join_timeout(timeout) {
            Some(outcome) => outcome.map_err(JoinTimeoutError::Failed),
            None => Err(JoinTimeoutError::Timeout(self)),
        }
    }

    /// Cancels the order if it has not started; see
    /// [`Order::cancel`](crate::Order::cancel).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the closure's destructor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let bakery = bakery::Bakery::new(1);
    /// let (tx, rx) = mpsc::channel::<()>();
    /// bakery.scope(|s| {
    ///     let busy = s.submit(move || rx.recv().unwrap());
    ///     let queued = s.submit(|| "pretzel");
    ///     assert!(queued.cancel());
    ///     tx.send(()).unwrap();
    ///     assert!(queued.join().unwrap_err().is_cancelled());
    ///     busy.join().unwrap();
    /// });
    /// ```
    pub fn cancel(&self) -> bool {
        self.raw.cancel()
    }

    /// Whether the order has an outcome.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// bakery.scope(|s| {
    ///     let order = s.submit(|| 5);
    ///     while !order.is_finished() {
    ///         std::thread::yield_now();
    ///     }
    ///     assert_eq!(order.join().unwrap(), 5);
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.raw.is_finished()
    }
}

// The value lives in the heap block, never inside the handle.
impl<T> Unpin for ScopedOrder<'_, T> {}

impl<T> Future for ScopedOrder<'_, T> {
    type Output = Result<T, OrderError>;

    /// Polls for the outcome; see the `Future` impl of
    /// [`Order`](crate::Order).
    ///
    /// # Panics
    ///
    /// If polled again after it returned a value.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakery::Bakery::new(1);
    /// let topping = String::from("poppy seeds");
    /// let length = bakery.scope(|s| pollster::block_on(s.submit(|| topping.len())));
    /// assert_eq!(length.unwrap(), 11);
    /// ```
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.raw.poll_outcome(cx)
    }
}

impl<T> fmt::Debug for ScopedOrder<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedOrder")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
