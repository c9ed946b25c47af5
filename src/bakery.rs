//! The pool handle: submit orders, fork-join, open scopes, shut down.

use crate::builder::BakeryBuilder;
use crate::engine::registry::Registry;
use crate::engine::submit::{self, Fifo};
use crate::engine::sync::{local, Arc};
use crate::engine::{join, task};
use crate::error::{SetBakersError, ShutdownTimeoutError, TrySubmitError};
use crate::order::{Order, OrderKind};
use crate::scope::Scope;
use std::fmt;
use std::time::{Duration, Instant};

/// A pool of named worker threads, its bakers, that share orders by work
/// stealing.
///
/// Every baker has its own deque; orders from outside enter a shared
/// injector, orders submitted by a baker go onto its own deque, and a baker
/// out of work takes from the injector or steals from a busy colleague
/// before it sleeps. See the [crate docs](crate) for the guide.
///
/// A `Bakery` is a cheap handle: clones share the same bakers. The bakers go
/// home when the last handle is dropped, or when any handle calls
/// [`shutdown`](Bakery::shutdown) (or one of its variants); either way every
/// accepted order still reports its outcome.
///
/// # Examples
///
/// ```
/// use bakehouse::Bakery;
///
/// let bakery = Bakery::new(3);
/// let orders: Vec<_> = ["birthday cake", "cupcakes", "wedding cake"]
///     .into_iter()
///     .map(|cake| bakery.submit(move || format!("{cake} is ready")))
///     .collect();
/// for order in orders {
///     println!("{}", order.join()?);
/// }
/// bakery.shutdown();
/// # Ok::<(), bakehouse::OrderError>(())
/// ```
///
/// `Bakery` is `Send` and `Sync`, so one handle can be shared by reference
/// across threads:
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<bakehouse::Bakery>();
/// ```
#[doc(alias = "ThreadPool")]
#[doc(alias = "thread_pool")]
pub struct Bakery {
    registry: Arc<Registry>,
    /// Set by `shutdown_timeout` when time ran out: dropping this handle must
    /// then not wait for the bakers again.
    detach_on_drop: bool,
}

impl Bakery {
    /// Starts a bakery with `bakers` bakers named `baker-0`, `baker-1`, ….
    ///
    /// # Panics
    ///
    /// With the [`BuildError`](crate::BuildError)'s message if the bakery
    /// cannot be built: zero bakers, too many, or a thread the operating
    /// system refuses to start. Use [`Bakery::builder`] to handle the error
    /// instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(4);
    /// assert_eq!(bakery.bakers(), 4);
    /// ```
    pub fn new(bakers: usize) -> Bakery {
        build_or_panic(BakeryBuilder::new().bakers(bakers))
    }

    /// A builder to configure the bakery before it starts.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder().bakers(2).build()?;
    /// assert_eq!(bakery.bakers(), 2);
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn builder() -> BakeryBuilder {
        BakeryBuilder::new()
    }

    /// The shared state behind this handle.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn from_registry(registry: Arc<Registry>) -> Bakery {
        Bakery {
            registry,
            detach_on_drop: false,
        }
    }

    /// How many bakers this bakery is configured to keep runnable: the
    /// number it was built with, or last given to
    /// [`set_bakers`](Bakery::set_bakers).
    ///
    /// While bakers are blocked (in [`blocking`](crate::blocking()), or found
    /// blocked), the bakery starts others to stand in for them, up to
    /// [`max_bakers`](Bakery::max_bakers), so more threads than this may be
    /// at work for a while; this number does not count them.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(bakehouse::Bakery::new(3).bakers(), 3);
    /// ```
    #[doc(alias = "num_threads")]
    #[doc(alias = "current_num_threads")]
    pub fn bakers(&self) -> usize {
        self.registry.target()
    }

    /// The most bakers this bakery may hold at once, stand-ins for blocked
    /// bakers included (see [`BakeryBuilder::max_bakers`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder().bakers(2).max_bakers(16).build()?;
    /// assert_eq!(bakery.max_bakers(), 16);
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn max_bakers(&self) -> usize {
        self.registry.max_bakers()
    }

    /// Changes the number of bakers of a live bakery (threadpool's
    /// `set_num_threads`).
    ///
    /// Growing starts the new bakers at once. Shrinking asks bakers to go
    /// home after their current order: idle ones first, and never a blocked
    /// one. What a leaving baker had queued on its own deque moves to the
    /// bakery's shared queue, where the others take it: nothing is lost or
    /// stranded. Each leaving baker runs the
    /// [`on_baker_stop`](BakeryBuilder::on_baker_stop) hook.
    ///
    /// # Errors
    ///
    /// [`SetBakersError::NoBakers`] for zero,
    /// [`SetBakersError::TooManyBakers`] for more than
    /// [`max_bakers`](Bakery::max_bakers), [`SetBakersError::Closed`] once a
    /// shutdown began, and [`SetBakersError::Spawn`] if the operating system
    /// refuses a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// bakery.set_bakers(4)?;
    /// assert_eq!(bakery.bakers(), 4);
    /// let orders: Vec<_> = (0..100).map(|i| bakery.submit(move || i)).collect();
    /// bakery.set_bakers(1)?;
    /// let total: u32 = orders.into_iter().map(|order| order.join().unwrap()).sum();
    /// assert_eq!(total, 4950, "every order still ran");
    /// # Ok::<(), bakehouse::SetBakersError>(())
    /// ```
    #[doc(alias = "set_num_threads")]
    pub fn set_bakers(&self, bakers: usize) -> Result<(), SetBakersError> {
        Registry::set_bakers(&self.registry, bakers)
    }

    /// Whether the bakery stopped taking orders (a shutdown began).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let front_door = bakery.clone();
    /// assert!(!front_door.is_closed());
    /// bakery.shutdown();
    /// assert!(front_door.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.registry.is_closed()
    }

    /// Submits an order and returns its handle.
    ///
    /// The order runs on some baker; from outside the bakery it enters the
    /// shared injector, from one of this bakery's bakers it goes onto that
    /// baker's own deque (where idle bakers can steal it).
    ///
    /// Once a shutdown has begun, an order from outside is refused: the
    /// closure is dropped unrun and the handle reports
    /// [`OrderError::Rejected`](crate::OrderError::Rejected) (use
    /// [`try_submit`](Bakery::try_submit) to get the closure back instead).
    /// An order submitted by one of this bakery's own bakers is still
    /// accepted then: it is work in progress making more work, and its
    /// baker runs it before going home.
    ///
    /// Exactly one allocation is made: the closure, its state and the slot
    /// for its value share one block with the handle's state.
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the closure's destructor when the order is
    /// refused (the closure is dropped on the calling thread).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// let bread = bakery.submit(|| "sourdough".to_uppercase());
    /// assert_eq!(bread.join().unwrap(), "SOURDOUGH");
    /// ```
    #[doc(alias = "spawn")]
    #[doc(alias = "execute")]
    pub fn submit<F, T>(&self, order: F) -> Order<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit_to(&self.registry, order, Fifo::No)
    }

    /// Submits an order like [`submit`](Bakery::submit), to be taken in
    /// submission order relative to the other FIFO orders submitted from
    /// the same thread (rayon's `spawn_fifo`).
    ///
    /// What `submit` guarantees about order: from a baker, orders go onto
    /// its own deque, which it takes newest first; from outside, orders
    /// enter a shared queue in submission order and a baker takes them in
    /// batches, oldest first, but a colleague steals from the other end of
    /// its batch, and a baker runs what its own orders queued before the
    /// next order from outside, so nothing is promised. FIFO orders are
    /// taken oldest first instead: those submitted by one baker's orders by
    /// that baker or whoever steals them, those submitted from outside by
    /// whichever baker. *Taken* in order, not finished in order: with more
    /// than one baker, several run at once. FIFO orders and plain ones are
    /// not ordered with respect to each other, nor FIFO orders submitted
    /// from different bakers.
    ///
    /// An ordinary [`Order`] in every other respect: one allocation (the
    /// queue it waits in keeps its capacity), join, cancel, `.await`.
    ///
    /// # Panics
    ///
    /// As [`submit`](Bakery::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let inner = bakery.clone();
    /// let log2 = log.clone();
    /// bakery
    ///     .submit(move || {
    ///         // Submitted from the only baker: taken oldest first once
    ///         // this order is done.
    ///         for loaf in 0..4 {
    ///             let log = log2.clone();
    ///             inner.submit_fifo(move || log.lock().unwrap().push(loaf)).detach();
    ///         }
    ///     })
    ///     .join()?;
    /// bakery.shutdown();
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3]);
    /// # Ok::<(), bakehouse::OrderError>(())
    /// ```
    #[doc(alias = "spawn_fifo")]
    pub fn submit_fifo<F, T>(&self, order: F) -> Order<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit_to(&self.registry, order, Fifo::Yes)
    }

    /// Submits an order, or hands the closure back if the bakery no longer
    /// takes orders.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError`] holding the closure, once a shutdown has begun
    /// (unless called from one of this bakery's own bakers, see
    /// [`submit`](Bakery::submit)).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let order = bakery.try_submit(|| 7).expect("the bakery is open");
    /// assert_eq!(order.join().unwrap(), 7);
    /// ```
    pub fn try_submit<F, T>(&self, order: F) -> Result<Order<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit::try_submit(&self.registry, order, || self.order_kind(), Fifo::No)
            .map(Order::new)
            .map_err(TrySubmitError)
    }

    /// Runs `a` and `b`, possibly in parallel, and returns both results.
    ///
    /// Both closures may borrow from the caller, as with `rayon::join`. On
    /// one of this bakery's bakers, `b` may be taken by an idle baker while
    /// the caller runs `a`, and is run by the caller itself if nobody took
    /// it; no allocation is made. `b` is offered only when a baker runs out
    /// of work and asks (the outermost `join` on a baker offers it at once),
    /// so a `join` nobody needs costs about a function call; an `a` that
    /// blocks until `b` has run must wrap that wait in
    /// [`blocking`](crate::blocking()). From any other thread the fork-join
    /// moves into the bakery (one allocation) and the caller waits for it.
    /// If the bakery is shutting down, both closures may run on the caller.
    ///
    /// # Panics
    ///
    /// If `a` or `b` panics, `join` re-raises that panic once both are done
    /// (or once `b` is known not to run). If both panic, `a`'s panic wins.
    ///
    /// # Examples
    ///
    /// ```
    /// fn fib(bakery: &bakehouse::Bakery, n: u64) -> u64 {
    ///     if n < 2 {
    ///         return n;
    ///     }
    ///     let (a, b) = bakery.join(|| fib(bakery, n - 1), || fib(bakery, n - 2));
    ///     a + b
    /// }
    ///
    /// let bakery = bakehouse::Bakery::new(2);
    /// assert_eq!(fib(&bakery, 20), 6765);
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        join::join(&self.registry, a, b)
    }

    /// Runs `op` on one of the bakers and returns its result, like
    /// `rayon::ThreadPool::install`.
    ///
    /// `op` may borrow from the caller, which waits for it. Inside `op`,
    /// [`join`](Bakery::join) and [`scope`](Bakery::scope) run on the baker
    /// and allocate nothing for their forks. Called from one of this
    /// bakery's bakers, `op` simply runs right there; if the bakery is
    /// shutting down, it may run on the caller.
    ///
    /// # Panics
    ///
    /// Re-raises a panic from `op`.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// let mut loaves = vec![5, 3, 8, 1];
    /// let who = bakery.install(|| {
    ///     loaves.sort();
    ///     bakehouse::Baker::current().map(|baker| baker.index())
    /// });
    /// assert_eq!(loaves, [1, 3, 5, 8]);
    /// assert!(who.is_some(), "it ran on a baker");
    /// ```
    pub fn install<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        join::install(&self.registry, op)
    }

    /// Opens a scope whose orders may borrow from the caller's stack.
    ///
    /// `f` runs on the calling thread and may submit orders through the
    /// [`Scope`]; `scope` returns only after every one of them finished. A
    /// baker calling `scope` keeps working for its bakery while it waits.
    ///
    /// # Leaking a handle keeps the scope waiting
    ///
    /// A scoped order's value may borrow what the scope borrows, so `scope`
    /// waits until every [`ScopedOrder`](crate::ScopedOrder) is gone, not
    /// only until every order ran. A handle leaked with [`std::mem::forget`]
    /// (or kept in a reference cycle) is never gone: `scope` then waits for
    /// ever. That is safe, since nothing borrowed is used after the scope, but
    /// it hangs the caller; join or drop every handle instead.
    ///
    /// # Panics
    ///
    /// If `f` panics, once every scoped order finished, with `f`'s panic.
    /// Otherwise, if a scoped order panicked and its handle did not report
    /// it, once every scoped order finished, with the first such panic.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// let mut batches = vec![vec![1, 2], vec![3, 4, 5]];
    /// let counts = vec![0; 2];
    /// bakery.scope(|s| {
    ///     for batch in &mut batches {
    ///         s.submit(move || batch.iter_mut().for_each(|cookie| *cookie *= 2));
    ///     }
    ///     assert_eq!(counts.len(), 2, "the body may borrow too");
    /// });
    /// assert_eq!(batches, [vec![2, 4], vec![6, 8, 10]]);
    /// ```
    pub fn scope<'env, F, R>(&'env self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        Scope::run(&self.registry, f)
    }

    /// Stops taking orders, lets the bakers finish every queued order, and
    /// waits until they all went home.
    ///
    /// Affects every clone of this handle: later submissions through them
    /// from outside the bakery are rejected (orders the bakers submit while
    /// finishing their work are still taken). Called from one of this
    /// bakery's own bakers, it cannot wait for them (one of them is the
    /// caller): it closes the bakery and returns, and the bakers still finish
    /// every queued order.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// let loaves: Vec<_> = (0..10).map(|i| bakery.submit(move || i * 2)).collect();
    /// bakery.shutdown();
    /// let total: i32 = loaves.into_iter().map(|l| l.join().unwrap()).sum();
    /// assert_eq!(total, 90);
    /// ```
    pub fn shutdown(self) {
        self.registry.close(false);
        self.wait_for_bakers(None);
    }

    /// Stops taking orders, cancels every queued order right away (each
    /// handle reports [`OrderError::Cancelled`](crate::OrderError::Cancelled),
    /// even while every baker is busy), and waits for the orders already
    /// running.
    ///
    /// Work that belongs to work already under way still runs: the forks of
    /// a [`join`](Bakery::join), scoped orders (their scope is running), and
    /// a `join` or [`install`](Bakery::install) carried in from outside (its
    /// caller is waiting for it). Called from one of this bakery's bakers,
    /// it closes the bakery and returns without waiting, as
    /// [`shutdown`](Bakery::shutdown) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// // No stand-in for the busy baker, so the second order stays queued.
    /// let bakery = bakehouse::Bakery::builder().bakers(1).blocking_threshold(None).build().unwrap();
    /// let (started_tx, started) = mpsc::channel();
    /// let (go_tx, go) = mpsc::channel::<()>();
    /// let running = bakery.submit(move || {
    ///     started_tx.send(()).unwrap();
    ///     go.recv().unwrap();
    ///     "done"
    /// });
    /// let queued = bakery.submit(|| "never baked");
    /// started.recv().unwrap();
    /// let closer = std::thread::spawn(move || bakery.shutdown_now());
    /// assert!(queued.join().unwrap_err().is_cancelled());
    /// go_tx.send(()).unwrap();
    /// assert_eq!(running.join().unwrap(), "done");
    /// closer.join().unwrap();
    /// ```
    pub fn shutdown_now(self) {
        self.registry.close(true);
        self.registry.cancel_queued_now();
        self.wait_for_bakers(None);
    }

    /// Like [`shutdown`](Bakery::shutdown), but waits at most `timeout` for
    /// the bakers' work.
    ///
    /// When time runs out with no baker at work and no order queued, the
    /// bakers still there are on their way out with nothing to run, and it
    /// waits for them: shutting down an idle bakery succeeds even with
    /// [`Duration::ZERO`]. Joining the bakers' threads waits for their
    /// thread-local destructors, which the timeout does not bound.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeoutError::TimedOut`] if some bakers were still at work
    /// when time ran out, with how many, and how many orders were still
    /// queued. [`ShutdownTimeoutError::OnOwnBaker`] at once, without
    /// waiting, when called on one of this bakery's own threads, which
    /// cannot wait for the bakers since it is one of them. Either way the
    /// bakery is closed, the bakers keep going and every order still reports
    /// its outcome; only the wait is given up.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(2);
    /// let order = bakery.submit(|| "quick bun");
    /// assert!(bakery.shutdown_timeout(Duration::from_secs(10)).is_ok());
    /// assert_eq!(order.join().unwrap(), "quick bun");
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Result<(), ShutdownTimeoutError> {
        self.registry.close(false);
        if self.on_own_baker() {
            self.detach_on_drop = true;
            return Err(ShutdownTimeoutError::OnOwnBaker {
                busy_bakers: self.registry.busy_bakers(),
                queued_orders: self.registry.queued(),
            });
        }
        match self
            .registry
            .wait_for_bakers(Instant::now().checked_add(timeout))
        {
            Ok(()) => Ok(()),
            Err(busy_bakers) => {
                self.detach_on_drop = true;
                Err(ShutdownTimeoutError::TimedOut {
                    busy_bakers,
                    queued_orders: self.registry.queued(),
                })
            }
        }
    }

    /// The kind of this bakery's plain orders.
    pub(crate) fn order_kind(&self) -> OrderKind {
        order_kind(&self.registry)
    }

    /// Whether the calling thread is one of this bakery's bakers' threads,
    /// at any moment of its life: in its loop, in a hook, or in a
    /// thread-local destructor after its loop ended. Such a thread must not
    /// wait for the bakers, which would mean waiting for itself.
    fn on_own_baker(&self) -> bool {
        local::home() == self.registry.id().as_home()
    }

    fn wait_for_bakers(&self, deadline: Option<Instant>) {
        if !self.on_own_baker() {
            let _ = self.registry.wait_for_bakers(deadline);
        }
    }
}

/// The kind of `registry`'s plain orders.
fn order_kind(registry: &Registry) -> OrderKind {
    OrderKind {
        panic_handler: registry.panic_handler().cloned(),
    }
}

/// `Bakery::submit` (or `submit_fifo`) on `registry`'s bakery: a rejected
/// order once it no longer takes orders from the calling thread.
pub(crate) fn submit_to<F, T>(registry: &Registry, order: F, fifo: Fifo) -> Order<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match submit::try_submit(registry, order, || order_kind(registry), fifo) {
        Ok(raw) => Order::new(raw),
        Err(order) => {
            drop(order);
            Order::new(task::rejected(order_kind(registry), registry.id()))
        }
    }
}

/// Builds, or panics with the build error's message.
fn build_or_panic(builder: BakeryBuilder) -> Bakery {
    match builder.build() {
        Ok(bakery) => bakery,
        Err(error) => panic!("{error}"),
    }
}

impl Clone for Bakery {
    /// Another handle to the same bakers.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let counter = bakery.clone();
    /// assert_eq!(counter.submit(|| 1).join().unwrap(), 1);
    /// drop(bakery);
    /// assert_eq!(counter.submit(|| 2).join().unwrap(), 2, "still open: one handle is left");
    /// ```
    fn clone(&self) -> Self {
        self.registry.add_handle();
        Bakery::from_registry(self.registry.clone())
    }
}

impl Drop for Bakery {
    /// Dropping the last handle shuts the bakery down like
    /// [`shutdown`](Bakery::shutdown): every queued order still runs, and
    /// the drop waits for the bakers, unless it happens on one of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let baked = Arc::new(AtomicUsize::new(0));
    /// let bakery = bakehouse::Bakery::new(2);
    /// for _ in 0..10 {
    ///     let baked = baked.clone();
    ///     bakery.submit(move || baked.fetch_add(1, Ordering::SeqCst)).detach();
    /// }
    /// drop(bakery); // the last handle: waits for every queued order
    /// assert_eq!(baked.load(Ordering::SeqCst), 10);
    /// ```
    fn drop(&mut self) {
        if self.registry.drop_handle() {
            self.registry.close(false);
            if !self.detach_on_drop {
                self.wait_for_bakers(None);
            }
        }
    }
}

impl Default for Bakery {
    /// A bakery with one baker per available CPU.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a baker's thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::default();
    /// assert!(bakery.bakers() >= 1);
    /// ```
    fn default() -> Self {
        build_or_panic(BakeryBuilder::new())
    }
}

impl fmt::Debug for Bakery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bakery")
            .field("bakers", &self.bakers())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
