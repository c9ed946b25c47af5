//! The errors a bakery reports: why an order has no value, why a pool could
//! not be built, why a submission or a wait came back empty-handed.

use crate::engine::unwind::{self, Payload};
use std::fmt;
use std::io;
use std::sync::Mutex;
use thiserror::Error;

/// Why an order gave no value.
///
/// Every [`Order`](crate::Order) ends in exactly one outcome: its value, or
/// one of these.
///
/// # Examples
///
/// ```
/// use bakehouse::{Bakery, OrderError};
///
/// let bakery = Bakery::new(1);
/// let burnt = bakery.submit(|| -> u32 { panic!("the oven caught fire") });
/// match burnt.join() {
///     Err(OrderError::Panicked(panic)) => assert_eq!(panic.message(), "the oven caught fire"),
///     other => panic!("unexpected outcome: {other:?}"),
/// }
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The order's closure panicked. The pool caught the panic and kept
    /// serving; the payload is inside.
    #[error("order panicked: {0}")]
    Panicked(PanicError),
    /// The order was cancelled before it started, by
    /// [`Order::cancel`](crate::Order::cancel) or
    /// [`Bakery::shutdown_now`](crate::Bakery::shutdown_now).
    #[error("order was cancelled before it started")]
    Cancelled,
    /// The bakery had stopped taking orders when this one arrived.
    #[error("order was rejected because the bakery no longer takes orders")]
    Rejected,
}

impl OrderError {
    /// Whether the order panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let error = bakery.submit(|| panic!("no flour")).join().unwrap_err();
    /// assert!(error.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, OrderError::Panicked(_))
    }

    /// Whether the order was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// // No stand-in for the busy baker, so the second order stays queued.
    /// let bakery = bakehouse::Bakery::builder().bakers(1).blocking_threshold(None).build().unwrap();
    /// let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    /// let busy = bakery.submit({ let gate = gate.clone(); move || { gate.wait(); } });
    /// let queued = bakery.submit(|| "never baked");
    /// assert!(queued.cancel());
    /// gate.wait();
    /// assert!(queued.join().unwrap_err().is_cancelled());
    /// busy.join().unwrap();
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, OrderError::Cancelled)
    }

    /// Whether the order was rejected.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let other_door = bakery.clone();
    /// bakery.shutdown();
    /// assert!(other_door.submit(|| 1).join().unwrap_err().is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, OrderError::Rejected)
    }

    /// The panic, if the order panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let error = bakery.submit(|| panic!("dropped the tray")).join().unwrap_err();
    /// let panic = error.into_panic().unwrap();
    /// assert_eq!(panic.message(), "dropped the tray");
    /// ```
    pub fn into_panic(self) -> Option<PanicError> {
        match self {
            OrderError::Panicked(panic) => Some(panic),
            _ => None,
        }
    }
}

/// A panic caught in an order: its message, and the original payload for
/// [`std::panic::resume_unwind`].
///
/// The payload sits behind a lock that is never contended (it is reached only
/// through `self` by value), so the error is `Send + Sync` like any error that
/// travels through `anyhow` or `Box<dyn Error + Send + Sync>`.
///
/// # Examples
///
/// ```
/// let bakery = bakehouse::Bakery::new(1);
/// let error = bakery.submit(|| std::panic::panic_any(42_i32)).join().unwrap_err();
/// let panic = error.into_panic().unwrap();
/// assert_eq!(*panic.into_payload().downcast::<i32>().unwrap(), 42);
/// ```
pub struct PanicError {
    message: String,
    payload: Mutex<Payload>,
}

impl PanicError {
    pub(crate) fn new(payload: Payload) -> PanicError {
        PanicError {
            message: unwind::message(&*payload),
            payload: Mutex::new(payload),
        }
    }

    /// The panic's message: the text it was raised with, or `Box<dyn Any>`
    /// when the payload was neither `&str` nor `String`.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let error = bakery.submit(|| panic!("{} eggs short", 3)).join().unwrap_err();
    /// assert_eq!(error.into_panic().unwrap().message(), "3 eggs short");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original payload, as `catch_unwind` would have returned it.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let error = bakery.submit(|| panic!("sugar")).join().unwrap_err();
    /// let payload = error.into_panic().unwrap().into_payload();
    /// assert_eq!(*payload.downcast::<&str>().unwrap(), "sugar");
    /// ```
    pub fn into_payload(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.payload
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-raises the panic on the current thread with its original payload.
    ///
    /// # Panics
    ///
    /// Always: that is its purpose.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let error = bakery.submit(|| panic!("raised again")).join().unwrap_err();
    /// let caught = std::panic::catch_unwind(move || error.into_panic().unwrap().resume());
    /// assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "raised again");
    /// ```
    pub fn resume(self) -> ! {
        unwind::resume_unwinding(self.into_payload())
    }
}

impl fmt::Debug for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicError")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PanicError {}

/// Why a [`BakeryBuilder`](crate::BakeryBuilder) could not build a bakery.
///
/// # Examples
///
/// ```
/// use bakehouse::{Bakery, BuildError};
///
/// let error = Bakery::builder().bakers(0).build().unwrap_err();
/// assert!(matches!(error, BuildError::NoBakers));
/// assert_eq!(error.to_string(), "a bakery needs at least one baker");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Zero bakers were asked for.
    #[error("a bakery needs at least one baker")]
    NoBakers,
    /// More bakers were asked for than the bakery may hold: more than its
    /// [`max_bakers`](crate::BakeryBuilder::max_bakers), or a ceiling above
    /// the most any bakery can count.
    #[error("{requested} bakers requested but a bakery holds at most {max}")]
    TooManyBakers {
        /// How many were asked for.
        requested: usize,
        /// The most this bakery (or any bakery) can hold.
        max: usize,
    },
    /// A baker's name contains a NUL byte, which no OS thread name can hold.
    #[error("the name of baker {index} contains a NUL byte: {name:?}")]
    NameContainsNul {
        /// The baker's index.
        index: usize,
        /// The name the naming closure returned.
        name: String,
    },
    /// A stack size of zero bytes was asked for.
    #[error("a baker's stack size must be greater than zero")]
    ZeroStackSize,
    /// The operating system refused to start a baker's thread (a stack size
    /// it cannot provide, or no more threads).
    #[error("failed to start baker {index}")]
    Spawn {
        /// The index of the baker that could not start.
        index: usize,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// [`BakeryBuilder::build_global`](crate::BakeryBuilder::build_global)
    /// was called when the global bakery already existed: configured by an
    /// earlier `build_global`, or started with the defaults by a first use
    /// of [`Bakery::global`](crate::Bakery::global).
    #[error("the global bakery was already started")]
    GlobalAlreadyStarted,
}

/// Why [`Bakery::set_bakers`](crate::Bakery::set_bakers) could not change
/// the number of bakers.
///
/// # Examples
///
/// ```
/// use bakehouse::{Bakery, SetBakersError};
///
/// let bakery = Bakery::builder().bakers(2).max_bakers(4).build()?;
/// assert!(matches!(bakery.set_bakers(0), Err(SetBakersError::NoBakers)));
/// let error = bakery.set_bakers(5).unwrap_err();
/// assert_eq!(error.to_string(), "5 bakers requested but this bakery holds at most 4");
/// # Ok::<(), bakehouse::BuildError>(())
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetBakersError {
    /// Zero bakers were asked for.
    #[error("a bakery needs at least one baker")]
    NoBakers,
    /// More bakers were asked for than the bakery's
    /// [`max_bakers`](crate::BakeryBuilder::max_bakers).
    #[error("{requested} bakers requested but this bakery holds at most {max}")]
    TooManyBakers {
        /// How many were asked for.
        requested: usize,
        /// The bakery's ceiling.
        max: usize,
    },
    /// The bakery is shutting down.
    #[error("the bakery is shutting down")]
    Closed,
    /// The operating system refused to start a baker's thread. The bakers
    /// started before it keep working, and the new number still stands:
    /// the bakery starts more bakers when others block.
    #[error("failed to start baker {index}")]
    Spawn {
        /// The index of the baker that could not start.
        index: usize,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// The bakery no longer takes orders; the order's closure is handed back.
///
/// Returned by [`Bakery::try_submit`](crate::Bakery::try_submit) once a
/// shutdown has begun, like crossbeam's `SendError` hands back its message.
///
/// # Examples
///
/// ```
/// let bakery = bakehouse::Bakery::new(1);
/// let side_door = bakery.clone();
/// bakery.shutdown();
/// let refused = side_door.try_submit(|| 2 + 2).unwrap_err();
/// let recipe = refused.into_inner();
/// assert_eq!(recipe(), 4);
/// ```
#[derive(Error, Clone, Copy, PartialEq, Eq)]
#[error("the bakery no longer takes orders")]
pub struct TrySubmitError<F>(pub F);

impl<F> TrySubmitError<F> {
    /// The closure that was not accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// let refused = bakehouse::TrySubmitError(|| "bread");
    /// assert_eq!(refused.into_inner()(), "bread");
    /// ```
    pub fn into_inner(self) -> F {
        self.0
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("TrySubmitError(..)")
    }
}

/// An order that has not finished yet, or finished without a value.
///
/// Returned by `try_join` on [`Order`](crate::Order) and
/// [`ScopedOrder`](crate::ScopedOrder); `H` is the handle type, handed back
/// when the order is still on its way.
///
/// # Examples
///
/// ```
/// use bakehouse::{Bakery, TryJoinError};
///
/// let bakery = Bakery::new(1);
/// let mut order = bakery.submit(|| 6 * 7);
/// let value = loop {
///     match order.try_join() {
///         Ok(value) => break value,
///         Err(TryJoinError::NotFinished(pending)) => order = pending,
///         Err(TryJoinError::Failed(error)) => panic!("{error}"),
///     }
/// };
/// assert_eq!(value, 42);
/// ```
#[derive(Error)]
pub enum TryJoinError<H> {
    /// The order has not finished; here is its handle back.
    #[error("the order has not finished yet")]
    NotFinished(H),
    /// The order finished without a value.
    #[error(transparent)]
    Failed(OrderError),
}

impl<H> TryJoinError<H> {
    /// The handle, if the order has not finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    /// let order = bakery.submit({ let gate = gate.clone(); move || { gate.wait(); 5 } });
    /// let order = order.try_join().unwrap_err().into_order().unwrap();
    /// gate.wait();
    /// assert_eq!(order.join().unwrap(), 5);
    /// ```
    pub fn into_order(self) -> Option<H> {
        match self {
            TryJoinError::NotFinished(order) => Some(order),
            TryJoinError::Failed(_) => None,
        }
    }
}

impl<H> fmt::Debug for TryJoinError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryJoinError::NotFinished(_) => f.pad("NotFinished(..)"),
            TryJoinError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

/// A bounded wait that ran out of time, or an order that finished without a
/// value.
///
/// Returned by `join_timeout` on [`Order`](crate::Order) and
/// [`ScopedOrder`](crate::ScopedOrder); `H` is the handle type, handed back
/// on timeout so the caller can wait again, cancel, or detach.
///
/// # Examples
///
/// ```
/// use bakehouse::{Bakery, JoinTimeoutError};
/// use std::time::Duration;
///
/// let bakery = Bakery::new(1);
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let slow = bakery.submit(move || rx.recv().is_ok());
/// let slow = match slow.join_timeout(Duration::from_millis(10)) {
///     Err(JoinTimeoutError::Timeout(order)) => order,
///     other => panic!("unexpected: {other:?}"),
/// };
/// tx.send(()).unwrap();
/// assert!(slow.join().unwrap());
/// ```
#[derive(Error)]
pub enum JoinTimeoutError<H> {
    /// Time ran out; here is the handle back.
    #[error("timed out waiting for the order")]
    Timeout(H),
    /// The order finished without a value.
    #[error(transparent)]
    Failed(OrderError),
}

impl<H> JoinTimeoutError<H> {
    /// The handle, if time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (tx, rx) = std::sync::mpsc::channel::<u8>();
    /// let order = bakery.submit(move || rx.recv().unwrap());
    /// let order = order.join_timeout(Duration::ZERO).unwrap_err().into_order().unwrap();
    /// tx.send(9).unwrap();
    /// assert_eq!(order.join().unwrap(), 9);
    /// ```
    pub fn into_order(self) -> Option<H> {
        match self {
            JoinTimeoutError::Timeout(order) => Some(order),
            JoinTimeoutError::Failed(_) => None,
        }
    }
}

impl<H> fmt::Debug for JoinTimeoutError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(_) => f.pad("Timeout(..)"),
            JoinTimeoutError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

/// Why [`Bakery::shutdown_timeout`](crate::Bakery::shutdown_timeout)
/// returned before every baker went home.
///
/// The bakers still at work are not killed (no thread can be): they finish
/// what they hold and the queued orders, every one of which still reports its
/// outcome to its handle, and then exit on their own. Only the wait is given
/// up.
///
/// # Examples
///
/// ```
/// use bakehouse::ShutdownTimeoutError;
/// use std::time::Duration;
///
/// let bakery = bakehouse::Bakery::new(1);
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let long = bakery.submit(move || rx.recv().is_ok());
/// let report = bakery.shutdown_timeout(Duration::from_millis(20)).unwrap_err();
/// assert!(matches!(report, ShutdownTimeoutError::TimedOut { busy_bakers: 1, .. }));
/// tx.send(()).unwrap();
/// assert!(long.join().unwrap());
/// ```
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownTimeoutError {
    /// Time ran out while bakers were still at work.
    #[error(
        "shutdown timed out with {} still at work and {} queued",
        Count(*busy_bakers, "baker"),
        Count(*queued_orders, "order")
    )]
    #[non_exhaustive]
    TimedOut {
        /// How many bakers were running an order (or a hook) when time ran
        /// out.
        busy_bakers: usize,
        /// How many entries were still queued (see
        /// [`queued_orders`](ShutdownTimeoutError::queued_orders)).
        queued_orders: usize,
    },
    /// Called on one of the bakery's own bakers, which cannot wait for the
    /// bakers (it is one of them): the bakery is closed, and nothing was
    /// waited for.
    #[error(
        "shutdown cannot wait for the bakers from one of them: {} still at work",
        Count(*busy_bakers, "baker")
    )]
    #[non_exhaustive]
    OnOwnBaker {
        /// How many bakers were at work, the caller's own included.
        busy_bakers: usize,
        /// How many entries were still queued.
        queued_orders: usize,
    },
}

impl ShutdownTimeoutError {
    /// How many bakers were still at work when the shutdown stopped
    /// waiting: running an order or a hook, the caller's own baker included
    /// for [`OnOwnBaker`](ShutdownTimeoutError::OnOwnBaker).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let long = bakery.submit(move || rx.recv().is_ok());
    /// let report = bakery.shutdown_timeout(Duration::from_millis(20)).unwrap_err();
    /// assert_eq!(report.busy_bakers(), 1);
    /// tx.send(()).unwrap();
    /// assert!(long.join().unwrap());
    /// ```
    pub fn busy_bakers(&self) -> usize {
        match *self {
            ShutdownTimeoutError::TimedOut { busy_bakers, .. }
            | ShutdownTimeoutError::OnOwnBaker { busy_bakers, .. } => busy_bakers,
        }
    }

    /// How many entries were still waiting in the queues when the shutdown
    /// stopped waiting: a snapshot (the bakers keep working through them),
    /// which can also count entries of orders already cancelled or run
    /// elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // No stand-in for the busy baker, so the orders stay queued.
    /// let bakery = bakehouse::Bakery::builder().bakers(1).blocking_threshold(None).build().unwrap();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let long = bakery.submit(move || {
    ///     started_tx.send(()).unwrap();
    ///     rx.recv().is_ok()
    /// });
    /// started.recv().unwrap();
    /// let queued: Vec<_> = (0..3).map(|i| bakery.submit(move || i)).collect();
    /// let report = bakery.shutdown_timeout(Duration::from_millis(20)).unwrap_err();
    /// assert_eq!(report.queued_orders(), 3);
    /// tx.send(()).unwrap();
    /// assert!(long.join().unwrap());
    /// for (i, order) in queued.into_iter().enumerate() {
    ///     assert_eq!(order.join().unwrap(), i);
    /// }
    /// ```
    pub fn queued_orders(&self) -> usize {
        match *self {
            ShutdownTimeoutError::TimedOut { queued_orders, .. }
            | ShutdownTimeoutError::OnOwnBaker { queued_orders, .. } => queued_orders,
        }
    }
}

/// A count with its noun, singular for one: "1 baker", "3 orders".
struct Count(usize, &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, noun) = *self;
        write!(f, "{n} {noun}{}", if n == 1 { "" } else { "s" })
    }
}
