//! The handle to a submitted order: join it, poll it, wait with a timeout,
//! cancel it, or drop it to detach.

use crate::engine::registry::PanicHandler;
use crate::engine::task::{RawOrder, TaskKind};
use crate::engine::unwind;
use crate::error::{JoinTimeoutError, OrderError, PanicError, TryJoinError};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The kind of a plain order: its unobserved panics go to the bakery's panic
/// handler, if one was set.
pub(crate) struct OrderKind {
    pub(crate) panic_handler: Option<Arc<PanicHandler>>,
}

impl TaskKind for OrderKind {
    const CANCELLABLE: bool = true;
    const COUNTED: bool = true;

    fn unobserved_panic(&self, panic: PanicError) {
        // A panicking panic handler has nowhere left to report to, and
        // without a handler the payload is dropped here, where its own
        // destructor must not unwind into the pool.
        match &self.panic_handler {
            Some(handler) => unwind::quietly(|| handler(panic)),
            None => unwind::quietly(|| drop(panic)),
        }
    }

    fn released(self) {}
}

/// The handle to an order submitted with [`Bakery::submit`](crate::Bakery::submit).
///
/// An order ends in exactly one outcome, which its handle reports once:
/// the closure's value, or an [`OrderError`] saying it panicked, was
/// cancelled, or was rejected.
///
/// * [`join`](Order::join) waits for it. Joining from inside a baker of the
///   same bakery never deadlocks: an order nobody started yet is run right
///   there, and while a started one finishes elsewhere the baker works on
///   other orders.
/// * [`try_join`](Order::try_join), [`join_timeout`](Order::join_timeout)
///   and [`is_finished`](Order::is_finished) look without blocking, or block
///   for a bounded time.
/// * [`cancel`](Order::cancel) stops it if it has not started.
/// * `Order<T>` is a [`Future`]: `.await` it from any async runtime.
///
/// # Dropping a handle detaches the order
///
/// The order still runs; its value is dropped when it finishes. If it
/// panics, nobody sees the panic except the bakery's
/// [`panic_handler`](crate::BakeryBuilder::panic_handler), when one is set.
///
/// # Examples
///
/// ```
/// use bakehouse::Bakery;
///
/// let bakery = Bakery::new(2);
/// let cake = bakery.submit(|| "birthday cake");
/// let cupcakes = bakery.submit(|| 12);
/// assert_eq!(cake.join()?, "birthday cake");
/// assert_eq!(cupcakes.join()?, 12);
/// # Ok::<(), bakehouse::OrderError>(())
/// ```
///
/// An `Order` can be sent to another thread only when its value can:
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// fn hand_over(order: bakehouse::Order<std::rc::Rc<u8>>) {
///     assert_send(order);
/// }
/// ```
///
/// and a closure that captures something that cannot cross threads cannot
/// be submitted at all:
///
/// ```compile_fail
/// let bakery = bakehouse::Bakery::new(1);
/// let shared = std::rc::Rc::new(5);
/// let order = bakery.submit(move || *shared + 1);
/// ```
#[must_use = "dropping an `Order` detaches it: the order still runs, but its outcome is lost"]
#[doc(alias = "JoinHandle")]
pub struct Order<T> {
    raw: RawOrder<T>,
}

impl<T> Order<T> {
    pub(crate) fn new(raw: RawOrder<T>) -> Order<T> {
        Order { raw }
    }

    /// The handle's engine half.
    pub(crate) fn into_raw(self) -> RawOrder<T> {
        self.raw
    }

    /// Waits for the order and returns its value.
    ///
    /// Called from a thread outside the bakery, it blocks (spinning briefly,
    /// then parking). Called from one of the bakery's bakers, it never
    /// deadlocks, even on a one-baker bakery: if nobody has started the
    /// order, the calling baker runs it itself; if it is running elsewhere,
    /// the baker takes other queued orders while it waits. See the
    /// [crate docs](crate#locks-across-joins) for what that means for locks
    /// held across a join.
    ///
    /// # Errors
    ///
    /// [`OrderError::Panicked`] if the closure panicked,
    /// [`OrderError::Cancelled`] if the order was cancelled before it
    /// started, [`OrderError::Rejected`] if the bakery no longer took orders.
    ///
    /// # Panics
    ///
    /// If the order runs further down the calling baker's own stack: the
    /// order (directly, or through orders it waits for) waits for the very
    /// order that now joins it, so waiting could never end. This happens
    /// only when handles are passed around so that orders wait for each
    /// other in a cycle, and one of them was picked up by a baker while it
    /// waited. Also if the order was already polled to completion as a
    /// [`Future`].
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let dough = bakery.submit(|| "dough".len());
    /// assert_eq!(dough.join().unwrap(), 5);
    /// ```
    ///
    /// Joining from inside the bakery, here on a single baker: the inner
    /// order is queued behind the outer one on the only baker, which runs it
    /// itself instead of waiting for it.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let bakery = Arc::new(bakehouse::Bakery::new(1));
    /// let inner_door = bakery.clone();
    /// let outer = bakery.submit(move || {
    ///     let inner = inner_door.submit(|| "filling");
    ///     format!("pie with {}", inner.join().unwrap())
    /// });
    /// assert_eq!(outer.join().unwrap(), "pie with filling");
    /// ```
    pub fn join(self) -> Result<T, OrderError> {
        self.raw.join()
    }

    /// Returns the outcome if the order has finished, or the handle back.
    ///
    /// Never blocks and never runs the order on the calling thread.
    ///
    /// # Errors
    ///
    /// [`TryJoinError::NotFinished`] with the handle if there is no outcome
    /// yet; [`TryJoinError::Failed`] if the order finished without a value
    /// (see [`join`](Order::join)).
    ///
    /// # Panics
    ///
    /// If the order was already polled to completion as a [`Future`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let order = bakery.submit(move || { rx.recv().unwrap(); "bread" });
    /// let order = order.try_join().unwrap_err().into_order().unwrap();
    /// tx.send(()).unwrap();
    /// assert_eq!(order.join().unwrap(), "bread");
    /// ```
    pub fn try_join(mut self) -> Result<T, TryJoinError<Order<T>>> {
        match self.raw.take_outcome() {
            Some(outcome) => outcome.map_err(TryJoinError::Failed),
            None => Err(TryJoinError::NotFinished(self)),
        }
    }

    /// Waits at most `timeout` for the order, and gives the handle back if
    /// time runs out.
    ///
    /// Unlike [`join`](Order::join), it never runs the order or other work
    /// on the calling thread, so it returns close to the deadline even on a
    /// baker. On a baker the wait counts as [`blocking`](crate::blocking()):
    /// the bakery keeps its configured number of bakers runnable meanwhile,
    /// starting a stand-in if needed, so even an order still queued on the
    /// waiting baker's own deque can run while it waits.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] with the handle if the order has no
    /// outcome when time runs out; [`JoinTimeoutError::Failed`] if it
    /// finished without a value (see [`join`](Order::join)).
    ///
    /// # Panics
    ///
    /// If the order was already polled to completion as a [`Future`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let quick = bakery.submit(|| 1 + 1);
    /// assert_eq!(quick.join_timeout(Duration::from_secs(10)).unwrap(), 2);
    /// ```
    pub fn join_timeout(mut self, timeout: Duration) -> Result<T, JoinTimeoutError<Order<T>>> {
        match self.raw.join_timeout(timeout) {
            Some(outcome) => outcome.map_err(JoinTimeoutError::Failed),
            None => Err(JoinTimeoutError::Timeout(self)),
        }
    }

    /// Cancels the order if it has not started yet.
    ///
    /// Returns `true` if the order will never run: this call or an earlier
    /// one cancelled it, and [`join`](Order::join) reports
    /// [`OrderError::Cancelled`]. Returns `false` if it is running or
    /// finished (or was rejected). The closure is dropped right away, on the
    /// calling thread.
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the closure's destructor (after the order is
    /// marked cancelled and its waiter woken).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// // No stand-in for the busy baker, so the second order stays queued.
    /// let bakery = bakehouse::Bakery::builder().bakers(1).blocking_threshold(None).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let busy = bakery.submit(move || rx.recv().unwrap());
    /// let queued = bakery.submit(|| "wedding cake");
    /// assert!(queued.cancel());
    /// tx.send(()).unwrap();
    /// assert!(queued.join().unwrap_err().is_cancelled());
    /// busy.join().unwrap();
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.raw.cancel()
    }

    /// Lets the order run on without a handle: the same as dropping the
    /// handle, said out loud.
    ///
    /// The order still runs; its value is dropped when it finishes, and a
    /// panic goes to the bakery's
    /// [`panic_handler`](crate::BakeryBuilder::panic_handler), if one is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let swept = Arc::new(AtomicBool::new(false));
    /// let flag = swept.clone();
    /// bakery.submit(move || flag.store(true, Ordering::SeqCst)).detach();
    /// bakery.shutdown(); // runs every queued order first
    /// assert!(swept.load(Ordering::SeqCst));
    /// ```
    pub fn detach(self) {
        drop(self);
    }

    /// Whether the order has an outcome (a value, a panic, cancelled or
    /// rejected), so that [`join`](Order::join) returns without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let order = bakery.submit(|| 3);
    /// while !order.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(order.join().unwrap(), 3);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.raw.is_finished()
    }
}

// The value lives in the heap block, never inside the handle, so moving a
// handle never moves a `T`.
impl<T> Unpin for Order<T> {}

impl<T> Future for Order<T> {
    type Output = Result<T, OrderError>;

    /// Polls for the outcome without blocking; wakes the task when the order
    /// finishes. Works with any executor: the bakery needs no async runtime.
    ///
    /// # Panics
    ///
    /// If polled again after it returned a value.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let proofed = pollster::block_on(async {
    ///     let dough = bakery.submit(|| "dough");
    ///     dough.await.map(|d| format!("proofed {d}"))
    /// });
    /// assert_eq!(proofed.unwrap(), "proofed dough");
    /// ```
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.raw.poll_outcome(cx)
    }
}

impl<T> fmt::Debug for Order<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Order")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
