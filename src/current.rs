//! Free functions on the bakery of the calling thread: the one whose baker
//! calls them, or the [global](crate::Bakery::global) one elsewhere (rayon's
//! `spawn`, `join`, `scope` and `yield_now`).

use crate::bakery::{self, Bakery};
use crate::engine::baker_thread::BakerThread;
use crate::engine::join;
use crate::engine::registry::Registry;
use crate::engine::submit::Fifo;
use crate::order::Order;
use crate::scope::Scope;

/// Calls `f` with the registry of the bakery whose baker runs the caller,
/// or of the global bakery.
fn with_current_registry<R>(f: impl FnOnce(&Registry) -> R) -> R {
    BakerThread::with_current(|baker| match baker {
        Some(baker) => f(baker.registry()),
        None => f(Bakery::global().registry()),
    })
}

/// Submits an order to the bakery of the calling thread:
/// [`Bakery::submit`] on the bakery whose baker calls it, or on the
/// [global](Bakery::global) bakery from any other thread.
///
/// # Panics
///
/// As [`Bakery::submit`], and as [`Bakery::global`] if this starts the
/// global bakery and it cannot start.
///
/// # Examples
///
/// ```
/// let dough = bakehouse::submit(|| "rising");
/// assert_eq!(dough.join().unwrap(), "rising");
///
/// // On a baker, the order goes to that baker's bakery.
/// let bakery = bakehouse::Bakery::builder().bakers(1).baker_name(|_| "ada".into()).build()?;
/// let who = bakery.install(|| bakehouse::submit(|| bakehouse::Baker::current().unwrap()).join());
/// assert_eq!(who.unwrap().name(), "ada");
/// # Ok::<(), bakehouse::BuildError>(())
/// ```
#[doc(alias = "spawn")]
pub fn submit<F, T>(order: F) -> Order<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    with_current_registry(|registry| bakery::submit_to(registry, order, Fifo::No))
}

/// Runs `a` and `b`, possibly in parallel, on the bakery of the calling
/// thread: [`Bakery::join`] on the bakery whose baker calls it, or on the
/// [global](Bakery::global) bakery from any other thread.
///
/// # Panics
///
/// As [`Bakery::join`], and as [`Bakery::global`] if this starts the global
/// bakery and it cannot start.
///
/// # Examples
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     let (a, b) = bakehouse::join(|| fib(n - 1), || fib(n - 2));
///     a + b
/// }
/// assert_eq!(fib(20), 6765);
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    with_current_registry(|registry| join::join(registry, a, b))
}

/// Opens a scope on the bakery of the calling thread: [`Bakery::scope`] on
/// the bakery whose baker calls it, or on the [global](Bakery::global)
/// bakery from any other thread.
///
/// # Panics
///
/// As [`Bakery::scope`], and as [`Bakery::global`] if this starts the
/// global bakery and it cannot start.
///
/// # Examples
///
/// ```
/// let mut loaves = [1, 2, 3];
/// bakehouse::scope(|s| {
///     for loaf in &mut loaves {
///         s.submit(move || *loaf *= 10);
///     }
/// });
/// assert_eq!(loaves, [10, 20, 30]);
/// ```
pub fn scope<'env, F, R>(f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    with_current_registry(|registry| Scope::run(registry, f))
}

/// What [`yield_now`] did.
///
/// # Examples
///
/// ```
/// use bakehouse::Yield;
///
/// let bakery = bakehouse::Bakery::new(1);
/// assert_eq!(bakery.install(bakehouse::yield_now), Some(Yield::Idle));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Yield {
    /// It ran one queued order (or fork) before returning.
    Executed,
    /// Nothing was queued that this baker could take.
    Idle,
}

/// From inside a long order, runs one queued order of this baker's bakery,
/// if there is one, and returns (rayon's `yield_now`): a long order can let
/// waiting work through without ending.
///
/// It looks where a waiting baker looks: its own deque, the bakery's shared
/// queue, its colleagues' deques (only its own deque once its stack is a
/// quarter full, see the guide). The order it runs may be anything queued,
/// so the caller must not hold a lock that such an order may want.
///
/// Returns `None` off a baker: there is nothing to yield to.
///
/// # Examples
///
/// ```
/// use bakehouse::Yield;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let bakery = bakehouse::Bakery::new(1);
/// let done = Arc::new(AtomicBool::new(false));
/// let flag = done.clone();
/// let did = bakery.install(|| {
///     // The only baker queues an order, then lets it through.
///     bakehouse::submit(move || flag.store(true, Ordering::SeqCst)).detach();
///     bakehouse::yield_now()
/// });
/// assert_eq!(did, Some(Yield::Executed));
/// assert!(done.load(Ordering::SeqCst));
/// assert_eq!(bakehouse::yield_now(), None, "not on a baker");
/// ```
pub fn yield_now() -> Option<Yield> {
    BakerThread::with_current(|baker| {
        baker.map(|baker| {
            if baker.yield_now() {
                Yield::Executed
            } else {
                Yield::Idle
            }
        })
    })
}
