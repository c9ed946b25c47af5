//! A set of orders collected as they finish: `OrderSet`.

use crate::bakery::Bakery;
use crate::engine::ready_list::ReadyList;
use crate::engine::sync::Arc;
use crate::engine::task::RawOrder;
use crate::engine::unwind;
use crate::error::OrderError;
use std::fmt;
use std::future::Future;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Orders whose outcomes come back in the order they finish (tokio's
/// `JoinSet`, Java's `ExecutorCompletionService`).
///
/// [`submit`](OrderSet::submit) orders into the set, then take their
/// outcomes with [`join_next`](OrderSet::join_next) (waits),
/// [`join_next_timeout`](OrderSet::join_next_timeout) (waits at most so
/// long), [`try_join_next`](OrderSet::try_join_next) (never waits), or
/// [`poll_join_next`](OrderSet::poll_join_next) from async code, with no
/// runtime needed. Each order's outcome comes back exactly once: its value,
/// or an [`OrderError`] saying it panicked, was cancelled or was rejected,
/// in its place among the others.
///
/// An order that finishes puts itself on the set's ready list (its handle's
/// wake-up does it), so taking the next outcome never looks at the orders
/// still running, however many there are. The set allocates nothing per
/// order beyond the order's own block: its list of places and its ready
/// list are buffers it owns, which grow (amortized, like a `Vec`) to the
/// most orders it held at once and are reused.
///
/// # Dropping the set cancels what has not started
///
/// As with tokio's `JoinSet`, dropping a set (or calling
/// [`cancel_all`](OrderSet::cancel_all)) cancels every order of it that
/// has not started. Orders already running cannot be stopped: they run on,
/// detached, and their values are dropped when they finish, with any panic
/// going to the bakery's
/// [`panic_handler`](crate::BakeryBuilder::panic_handler). Use
/// [`detach_all`](OrderSet::detach_all) to let every order run on instead.
///
/// # Examples
///
/// ```
/// use bakehouse::{Bakery, OrderSet};
/// use std::time::Duration;
///
/// let bakery = Bakery::new(3);
/// let mut set = OrderSet::new();
/// for (cake, minutes) in [("fruit cake", 30), ("cupcake", 1), ("sponge", 10)] {
///     set.submit(&bakery, move || {
///         std::thread::sleep(Duration::from_millis(minutes));
///         cake
///     });
/// }
/// let mut baked = Vec::new();
/// while let Some(outcome) = set.join_next() {
///     baked.push(outcome.unwrap());
/// }
/// baked.sort();
/// assert_eq!(baked, ["cupcake", "fruit cake", "sponge"]);
/// ```
///
/// A set can be sent to another thread when its values can:
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<bakehouse::OrderSet<String>>();
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<bakehouse::OrderSet<std::rc::Rc<u8>>>();
/// ```
pub struct OrderSet<T> {
    /// Where finished orders put their places.
    ready: Arc<ReadyList>,
    /// The orders, by place; `None` for a free place.
    places: Vec<Option<RawOrder<T>>>,
    /// Free places, reused before the list grows.
    free: Vec<usize>,
    /// Orders in the set: submitted, outcome not yet taken.
    len: usize,
}

impl<T> OrderSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = bakehouse::OrderSet::<u32>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> OrderSet<T> {
        OrderSet {
            ready: ReadyList::new(),
            places: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// How many orders are in the set: submitted, their outcome not yet
    /// taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || 1);
    /// set.submit(&bakery, || 2);
    /// assert_eq!(set.len(), 2);
    /// set.join_next();
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no order.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || "rye");
    /// assert!(!set.is_empty());
    /// assert_eq!(set.join_next().unwrap().unwrap(), "rye");
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the outcome of the order at `place`, which the ready list
    /// gave back: the order has one.
    fn take(&mut self, place: usize) -> Result<T, OrderError> {
        let order = self.places[place]
            .take()
            .expect("a ready place holds an order");
        self.free.push(place);
        self.len -= 1;
        order.into_finished()
    }

    /// Waits for the next order to finish and returns its outcome;
    /// `None` once the set is empty.
    ///
    /// Whichever order finished first comes first. On a baker, it keeps
    /// working for its bakery while it waits, as [`Order::join`] does
    /// (so it may run some of the set's own orders).
    ///
    /// [`Order::join`]: crate::Order::join
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || 2 + 2);
    /// set.submit(&bakery, || -> i32 { panic!("burnt") });
    /// let (mut values, mut panics) = (0, 0);
    /// while let Some(outcome) = set.join_next() {
    ///     match outcome {
    ///         Ok(value) => values += value,
    ///         Err(error) => {
    ///             assert!(error.is_panic());
    ///             panics += 1;
    ///         }
    ///     }
    /// }
    /// assert_eq!((values, panics), (4, 1));
    /// ```
    pub fn join_next(&mut self) -> Option<Result<T, OrderError>> {
        if self.is_empty() {
            return None;
        }
        loop {
            if let Some(place) = self.ready.pop() {
                return Some(self.take(place));
            }
            let _ = self.ready.wait(None);
        }
    }

    /// Waits at most `timeout` for the next order to finish and returns
    /// its outcome; `None` if the set is empty or no order finished in
    /// time ([`is_empty`](OrderSet::is_empty) tells which).
    ///
    /// It never runs orders on the calling thread; on a baker the wait
    /// counts as [`blocking`](crate::blocking()), as
    /// [`Order::join_timeout`](crate::Order::join_timeout)'s does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || "scone");
    /// let outcome = set.join_next_timeout(Duration::from_secs(60));
    /// assert_eq!(outcome.unwrap().unwrap(), "scone");
    /// assert!(set.join_next_timeout(Duration::from_millis(1)).is_none());
    /// ```
    pub fn join_next_timeout(&mut self, timeout: Duration) -> Option<Result<T, OrderError>> {
        if self.is_empty() {
            return None;
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(place) = self.ready.pop() {
                return Some(self.take(place));
            }
            if !self.ready.wait(deadline) {
                return None;
            }
        }
    }

    /// The outcome of an order that has finished, if any; never waits.
    /// `None` if no order finished yet or the set is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || "bun");
    /// let outcome = loop {
    ///     if let Some(outcome) = set.try_join_next() {
    ///         break outcome;
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(outcome.unwrap(), "bun");
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, OrderError>> {
        let place = self.ready.pop()?;
        Some(self.take(place))
    }

    /// Polls for the next finished order, for async code: `Ready(None)` once
    /// the set is empty, `Pending` (with `cx`'s waker registered) while no
    /// order has finished. Works with any executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// let bakery = bakehouse::Bakery::new(2);
    /// let mut set = bakehouse::OrderSet::new();
    /// for i in 1..=3 {
    ///     set.submit(&bakery, move || i);
    /// }
    /// let total = pollster::block_on(async {
    ///     let mut total = 0;
    ///     while let Some(outcome) = poll_fn(|cx| set.poll_join_next(cx)).await {
    ///         total += outcome.unwrap();
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 6);
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, OrderError>>> {
        if self.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(place) = self.ready.pop() {
            return Poll::Ready(Some(self.take(place)));
        }
        if self.ready.register_waker(cx.waker()) {
            return Poll::Pending;
        }
        let place = self.ready.pop().expect("a place was queued");
        Poll::Ready(Some(self.take(place)))
    }

    /// [`join_next`](OrderSet::join_next) as a future, for async code:
    /// resolves to the next finished order's outcome, or `None` once the set
    /// is empty. Works with any executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || "croissant");
    /// let outcome = pollster::block_on(set.join_next_async());
    /// assert_eq!(outcome.unwrap().unwrap(), "croissant");
    /// ```
    pub fn join_next_async(&mut self) -> impl Future<Output = Option<Result<T, OrderError>>> + '_ {
        std::future::poll_fn(move |cx| self.poll_join_next(cx))
    }

    /// Cancels every order of the set that has not started. They stay in
    /// the set, and [`join_next`](OrderSet::join_next) reports each as
    /// [`OrderError::Cancelled`] in its turn; orders already running or
    /// finished are left alone. Returns how many it cancelled.
    ///
    /// # Panics
    ///
    /// Re-raises the first panic from a cancelled closure's destructor,
    /// after cancelling all the others.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// // No stand-in for the busy baker, so the other orders stay queued.
    /// let bakery = bakehouse::Bakery::builder().bakers(1).blocking_threshold(None).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let busy = bakery.submit(move || rx.recv().unwrap());
    /// let mut set = bakehouse::OrderSet::new();
    /// for i in 0..3 {
    ///     set.submit(&bakery, move || i);
    /// }
    /// assert_eq!(set.cancel_all(), 3);
    /// tx.send(()).unwrap();
    /// while let Some(outcome) = set.join_next() {
    ///     assert!(outcome.unwrap_err().is_cancelled());
    /// }
    /// busy.join().unwrap();
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn cancel_all(&mut self) -> usize {
        let mut cancelled = 0;
        let mut first_panic = None;
        for order in self.places.iter().flatten() {
            match unwind::halt_unwinding(|| order.is_pending() && order.cancel()) {
                Ok(true) => cancelled += 1,
                Ok(false) => {}
                Err(payload) => {
                    cancelled += 1;
                    first_panic.get_or_insert(payload);
                }
            }
        }
        if let Some(payload) = first_panic {
            unwind::resume_unwinding(payload);
        }
        cancelled
    }

    /// Empties the set without cancelling anything: every order runs on,
    /// detached, as if its [`Order`](crate::Order) handle were dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || println!("baked anyway"));
    /// set.detach_all();
    /// assert!(set.is_empty());
    /// bakery.wait_idle();
    /// assert_eq!(bakery.stats().completed, 1);
    /// ```
    pub fn detach_all(&mut self) {
        self.places.clear();
        self.free.clear();
        self.len = 0;
        // Places of orders that finished already: forget them, since the
        // places are renumbered from zero. Orders still running push their
        // old places later, onto a list this set no longer reads.
        self.ready = ReadyList::new();
    }
}

impl<T: Send + 'static> OrderSet<T> {
    /// Submits an order to `bakery` into the set, as
    /// [`Bakery::submit`] would; its outcome comes back from
    /// [`join_next`](OrderSet::join_next) and the like once it finishes.
    ///
    /// One set may hold orders of several bakeries. An order the bakery
    /// refuses (it is shutting down) is in the set all the same, and comes
    /// back as [`OrderError::Rejected`].
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the closure's destructor when the order is
    /// refused, as [`Bakery::submit`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// let mut set = bakehouse::OrderSet::new();
    /// set.submit(&bakery, || "baguette".len());
    /// assert_eq!(set.join_next().unwrap().unwrap(), 8);
    /// ```
    pub fn submit<F>(&mut self, bakery: &Bakery, order: F)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let order = bakery.submit(order).into_raw();
        let place = match self.free.pop() {
            Some(place) => place,
            None => {
                self.places.push(None);
                self.places.len() - 1
            }
        };
        if !order.register_ready(&self.ready, place) {
            // Finished before its waiter was registered: nobody else will
            // queue its place.
            self.ready.push(place);
        }
        self.places[place] = Some(order);
        self.len += 1;
    }
}

impl<T> Default for OrderSet<T> {
    fn default() -> OrderSet<T> {
        OrderSet::new()
    }
}

impl<T> Drop for OrderSet<T> {
    /// Cancels the orders that have not started; the others run on,
    /// detached (see [the type's docs](OrderSet)).
    fn drop(&mut self) {
        for order in self.places.iter().flatten() {
            // A panic from a closure's destructor has nobody to go to here.
            unwind::quietly(|| {
                if order.is_pending() {
                    order.cancel();
                }
            });
        }
    }
}

impl<T> fmt::Debug for OrderSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderSet")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
