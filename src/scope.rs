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
//! [`ScopeData`], which counts them (see [`credits`]). A task holds one of the scope's credits from its creation
//! until its block is freed, after its closure and its value were dropped
//! or taken (see [`crate::engine::task`]), and the scope waits until every credit
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

mod credits;

use crate::engine::registry::Registry;
use crate::engine::submit::{self, Fifo};
use crate::engine::task::{self, RawOrder, TaskKind};
use crate::engine::unwind;
use crate::error::{JoinTimeoutError, OrderError, PanicError, TryJoinError};
use credits::ScopeData;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The kind of a scoped order.
pub(crate) struct ScopedKind {
    data: *const ScopeData,
}

// SAFETY: `ScopeData` is `Sync` and outlives every task of its scope: the
// scope does not return before the last task's `released` set `done`.
unsafe impl Send for ScopedKind {}

impl ScopedKind {
    fn new(data: &ScopeData) -> ScopedKind {
        data.take_credit(data.own_cache());
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
        data.put_credits(data.own_cache(), 1);
    }
}

/// A scope in which orders may borrow from the caller; created by
/// [`Bakery::scope`](crate::Bakery::scope).
///
/// # Examples
///
/// ```
/// let bakery = bakehouse::Bakery::new(2);
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
/// let bakery = bakehouse::Bakery::new(1);
/// let escaped = bakery.scope(|s| s.submit(|| 1));
/// ```
///
/// nor borrow what does not outlive the scope:
///
/// ```compile_fail
/// let bakery = bakehouse::Bakery::new(1);
/// bakery.scope(|s| {
///     let local = String::from("crumbs");
///     s.submit(|| local.len());
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    data: ScopeData,
    /// Only as long as the scope: the free [`scope`](crate::scope()) opens
    /// one on a bakery it borrows for no longer than that.
    registry: &'scope Registry,
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
    /// let bakery = bakehouse::Bakery::new(2);
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
        self.submit_with(order, Fifo::No)
    }

    /// Submits an order like [`submit`](Scope::submit), to be taken in
    /// submission order relative to the other FIFO orders submitted from
    /// the same thread (rayon's `scope_fifo` spawns).
    ///
    /// Orders a baker submits with [`submit`](Scope::submit) go onto its
    /// own deque, from which it takes the newest first (the best for caches
    /// and for nested work); FIFO orders are taken oldest first, by that
    /// baker or by whoever steals them. *Taken* in order, not finished in
    /// order: several bakers may run them at once. From outside the bakery
    /// the same holds among the FIFO orders submitted from outside.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let log = Mutex::new(Vec::new());
    /// bakery.install(|| {
    ///     bakery.scope(|s| {
    ///         for tray in 0..4 {
    ///             let log = &log;
    ///             s.submit_fifo(move || log.lock().unwrap().push(tray));
    ///         }
    ///     });
    /// });
    /// // One baker: it took them oldest first.
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3]);
    /// ```
    pub fn submit_fifo<F, T>(&'scope self, order: F) -> ScopedOrder<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.submit_with(order, Fifo::Yes)
    }

    /// Submits one order per baker present now, each for that baker alone
    /// (see [`Bakery::broadcast`](crate::Bakery::broadcast)); the handles
    /// come in index order.
    pub(crate) fn submit_to_each<F, T>(
        &'scope self,
        mut order_for: impl FnMut(usize) -> F,
    ) -> Vec<ScopedOrder<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        submit::submit_to_each(self.registry, |index| {
            (order_for(index), ScopedKind::new(&self.data))
        })
        .into_iter()
        .map(|raw| ScopedOrder {
            raw,
            scope: PhantomData,
        })
        .collect()
    }

    fn submit_with<F, T>(&'scope self, order: F, fifo: Fifo) -> ScopedOrder<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let kind = || ScopedKind::new(&self.data);
        let raw = match submit::try_submit(self.registry, order, kind, fifo) {
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

    pub(crate) fn run<F, R>(registry: &Registry, body: F) -> R
    where
        F: for<'s> FnOnce(&'s Scope<'s, 'env>) -> R,
    {
        let scope = Scope {
            data: ScopeData::new(registry.indices(), registry.id()),
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
/// let bakery = bakehouse::Bakery::new(2);
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
    /// let bakery = bakehouse::Bakery::new(1);
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
    /// let bakery = bakehouse::Bakery::new(1);
    /// let n = 21;
    /// let doubled = bakery.scope(|s| {
    ///     let mut order = s.submit(|| n * 2);
    ///     loop {
    ///         match order.try_join() {
    ///             Ok(value) => break value,
    ///             Err(bakehouse::TryJoinError::NotFinished(again)) => order = again,
    ///             Err(bakehouse::TryJoinError::Failed(error)) => panic!("{error}"),
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
    /// let bakery = bakehouse::Bakery::new(1);
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
    /// // No stand-in for the busy baker, so the second order stays queued.
    /// let bakery = bakehouse::Bakery::builder().bakers(1).blocking_threshold(None).build().unwrap();
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
    /// let bakery = bakehouse::Bakery::new(1);
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
    /// let bakery = bakehouse::Bakery::new(1);
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
