//! Configuring and starting a bakery.

use crate::bakery::Bakery;
use crate::engine::registry::staff::default_name;
use crate::engine::registry::{Hook, Namer, PanicHandler, Registry, RegistryParts};
use crate::engine::roster::MAX_BAKERS;
use crate::error::{BuildError, PanicError};
use std::fmt;
use std::time::Duration;

/// Configures a [`Bakery`] before it starts: how many bakers, their names and
/// stack size, and hooks.
///
/// # Examples
///
/// ```
/// use bakehouse::Bakery;
///
/// let bakery = Bakery::builder()
///     .bakers(3)
///     .baker_name(|index| format!("oven-{index}"))
///     .stack_size(4 * 1024 * 1024)
///     .build()?;
/// assert_eq!(bakery.bakers(), 3);
/// # Ok::<(), bakehouse::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[doc(alias = "ThreadPoolBuilder")]
pub struct BakeryBuilder {
    bakers: Option<usize>,
    max_bakers: Option<usize>,
    keep_alive: Option<Duration>,
    blocking_threshold: Option<Option<Duration>>,
    namer: Option<Namer>,
    stack_size: Option<usize>,
    panic_handler: Option<std::sync::Arc<PanicHandler>>,
    start_hook: Option<Hook>,
    stop_hook: Option<Hook>,
}

impl Default for BakeryBuilder {
    /// The same as [`BakeryBuilder::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = bakehouse::BakeryBuilder::default();
    /// assert!(builder.bakers(1).build().is_ok());
    /// ```
    fn default() -> Self {
        BakeryBuilder::new()
    }
}

impl BakeryBuilder {
    /// A builder with the defaults: one baker per available CPU, named
    /// `baker-0`, `baker-1`, …, with the platform's default stack size.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::BakeryBuilder::new().build().unwrap();
    /// assert!(bakery.bakers() >= 1);
    /// ```
    pub fn new() -> BakeryBuilder {
        BakeryBuilder {
            bakers: None,
            max_bakers: None,
            keep_alive: None,
            blocking_threshold: None,
            namer: None,
            stack_size: None,
            panic_handler: None,
            start_hook: None,
            stop_hook: None,
        }
    }

    /// How many bakers (worker threads) to start. Zero is an error at
    /// [`build`](BakeryBuilder::build).
    ///
    /// Without this call the bakery starts
    /// [`std::thread::available_parallelism`] bakers (one if that is unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder().bakers(2).build().unwrap();
    /// assert_eq!(bakery.bakers(), 2);
    /// ```
    #[doc(alias = "num_threads")]
    pub fn bakers(mut self, bakers: usize) -> BakeryBuilder {
        self.bakers = Some(bakers);
        self
    }

    /// The most bakers the bakery may hold at once: the configured ones
    /// plus those it starts to stand in for blocked bakers (see
    /// [`blocking`](crate::blocking())), and the ceiling for
    /// [`Bakery::set_bakers`]. Fewer than [`bakers`](BakeryBuilder::bakers)
    /// is an error at [`build`](BakeryBuilder::build).
    ///
    /// The default is [`DEFAULT_MAX_BAKERS`] (512), or the number of bakers
    /// if that is more: like tokio's cap on its blocking threads, enough for
    /// hundreds of slow requests in flight at once, while each baker's stack
    /// is only reserved address space until it is used.
    ///
    /// The ceiling is a real limit: once `max_bakers` bakers are blocked,
    /// queued orders wait for one of them to return. Orders that block
    /// waiting for each other, more of them than `max_bakers`, with the
    /// order that would release them still queued, wait for ever, as they
    /// would on any pool of that many threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder().bakers(2).max_bakers(8).build()?;
    /// assert_eq!(bakery.max_bakers(), 8);
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn max_bakers(mut self, max_bakers: usize) -> BakeryBuilder {
        self.max_bakers = Some(max_bakers);
        self
    }

    /// How long a baker beyond the configured number (one started to stand
    /// in for a blocked baker, which came back) waits for work before its
    /// thread exits. The default is [`DEFAULT_KEEP_ALIVE`] (10 seconds, as
    /// tokio's blocking threads): a burst of blocking work that comes back
    /// within that finds its stand-ins still there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(2)
    ///     .keep_alive(Duration::from_millis(100))
    ///     .build()?;
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn keep_alive(mut self, keep_alive: Duration) -> BakeryBuilder {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// How long a baker may run one order without progress, while other
    /// orders wait for a baker, before the bakery checks whether it is
    /// blocked without having said so (see [`blocking`](crate::blocking())),
    /// and starts a stand-in if it is. `None` switches the check off.
    ///
    /// A baker *makes progress* when it starts a job: an order, a fork of a
    /// join, stolen work. One that does not, while orders wait, is asked
    /// about: on Linux the kernel says whether its thread runs (a long
    /// CPU-bound order, left alone) or sleeps (blocked in I/O, a lock, a
    /// channel, a `sleep`: compensated); elsewhere it counts as blocked. The
    /// check runs on a thread of the bakery's own, which sleeps while no
    /// order waits, and costs the orders nothing.
    ///
    /// *Waiting* orders are those in the bakery's shared queue (submitted
    /// from outside), and those on the suspect baker's own deque. Forks of a
    /// `join` do not wake the check, nor do orders a baker submits while the
    /// others are busy: a colleague takes those once it is free. For an
    /// order that waits on work it queued itself, declare the wait with
    /// [`blocking`](crate::blocking()) to have a stand-in at once.
    ///
    /// The default is [`DEFAULT_BLOCKING_THRESHOLD`] (2 ms).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A plain `sleep`, not declared with `blocking`: on one baker, the
    /// // second order still runs while the first sleeps.
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(1)
    ///     .blocking_threshold(Some(Duration::from_millis(1)))
    ///     .build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let sleeper = bakery.submit(move || rx.recv().unwrap());
    /// let sender = bakery.submit(move || tx.send("woken").unwrap());
    /// assert_eq!(sleeper.join().unwrap(), "woken");
    /// sender.join().unwrap();
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn blocking_threshold(mut self, threshold: Option<Duration>) -> BakeryBuilder {
        self.blocking_threshold = Some(threshold);
        self
    }

    /// Names each baker (and its thread) from its index. The default is
    /// `baker-{index}`.
    ///
    /// It is called once for each index, when the index is first used: at
    /// [`build`](BakeryBuilder::build) for the first
    /// [`bakers`](BakeryBuilder::bakers), where a name with a NUL byte is an
    /// error; and later for stand-ins and for
    /// [`Bakery::set_bakers`](crate::Bakery::set_bakers), with indices up to
    /// [`max_bakers`](BakeryBuilder::max_bakers). Such a later baker is
    /// named `baker-{index}` if the closure panics or gives a name with a
    /// NUL byte (a table of names shorter than `max_bakers` works that way).
    /// Those later calls happen while the bakery changes its staff, so the
    /// closure must not ask the bakery about its staff (`bakers`,
    /// `set_bakers`, `blocking`, a shutdown): such a call panics inside the
    /// closure, and the baker gets the default name.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(1)
    ///     .baker_name(|i| format!("night-shift-{i}"))
    ///     .build()
    ///     .unwrap();
    /// let name = bakery.submit(|| std::thread::current().name().map(str::to_owned));
    /// assert_eq!(name.join().unwrap().as_deref(), Some("night-shift-0"));
    /// ```
    pub fn baker_name<F>(mut self, name: F) -> BakeryBuilder
    where
        F: FnMut(usize) -> String + Send + 'static,
    {
        self.namer = Some(Box::new(name));
        self
    }

    /// The stack size of each baker's thread, in bytes. Zero is an error, and
    /// so is a size the operating system refuses, both at
    /// [`build`](BakeryBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder().bakers(1).stack_size(8 << 20).build().unwrap();
    /// let deep = bakery.submit(|| {
    ///     fn depth(n: u32) -> u32 { if n == 0 { 0 } else { 1 + depth(n - 1) } }
    ///     depth(10_000)
    /// });
    /// assert_eq!(deep.join().unwrap(), 10_000);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> BakeryBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Receives the panics that no handle reports: an order detached (its
    /// handle dropped) whose closure panicked, or a panic while dropping a
    /// detached order's value. Without a handler they are dropped (the
    /// standard panic hook has already printed them).
    ///
    /// The handler runs on whichever thread lets go of the order last,
    /// usually a baker; a panic inside the handler is discarded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(1)
    ///     .panic_handler({
    ///         let seen = seen.clone();
    ///         move |panic| seen.lock().unwrap().push(panic.message().to_owned())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// drop(bakery.submit(|| panic!("burnt croissant")));
    /// bakery.shutdown();
    /// assert_eq!(*seen.lock().unwrap(), ["burnt croissant"]);
    /// ```
    pub fn panic_handler<F>(mut self, handler: F) -> BakeryBuilder
    where
        F: Fn(PanicError) + Send + Sync + 'static,
    {
        self.panic_handler = Some(std::sync::Arc::new(handler));
        self
    }

    /// Runs on each baker's thread, with its index, before it takes any
    /// order. A panic inside the hook is discarded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(2)
    ///     .on_baker_start({
    ///         let started = started.clone();
    ///         move |_index| { started.fetch_add(1, Ordering::SeqCst); }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// bakery.shutdown();
    /// assert_eq!(started.load(Ordering::SeqCst), 2);
    /// ```
    pub fn on_baker_start<F>(mut self, hook: F) -> BakeryBuilder
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.start_hook = Some(Box::new(hook));
        self
    }

    /// Runs on each baker's thread, with its index, after its last order,
    /// as it goes home. A panic inside the hook is discarded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(3)
    ///     .on_baker_stop({
    ///         let stopped = stopped.clone();
    ///         move |_index| { stopped.fetch_add(1, Ordering::SeqCst); }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// bakery.shutdown();
    /// assert_eq!(stopped.load(Ordering::SeqCst), 3);
    /// ```
    pub fn on_baker_stop<F>(mut self, hook: F) -> BakeryBuilder
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.stop_hook = Some(Box::new(hook));
        self
    }

    /// Starts the bakers.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoBakers`] for zero bakers,
    /// [`BuildError::TooManyBakers`] for more bakers than
    /// [`max_bakers`](BakeryBuilder::max_bakers) or a ceiling above what a
    /// bakery can count ([`MAX_BAKERS`]),
    /// [`BuildError::NameContainsNul`] for a name with a NUL byte,
    /// [`BuildError::ZeroStackSize`] for a zero stack size, and
    /// [`BuildError::Spawn`] when the operating system refuses a thread (for
    /// example a stack size it cannot provide). On error, the bakers already
    /// started are stopped and joined before this returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use bakehouse::{Bakery, BuildError};
    ///
    /// let error = Bakery::builder().baker_name(|_| "bad\0name".into()).build().unwrap_err();
    /// assert!(matches!(error, BuildError::NameContainsNul { index: 0, .. }));
    ///
    /// let error = Bakery::builder().bakers(4).max_bakers(2).build().unwrap_err();
    /// assert!(matches!(error, BuildError::TooManyBakers { requested: 4, max: 2 }));
    ///
    /// let error = Bakery::builder().bakers(1).stack_size(1 << 62).build().unwrap_err();
    /// assert!(matches!(error, BuildError::Spawn { index: 0, .. }));
    /// ```
    pub fn build(mut self) -> Result<Bakery, BuildError> {
        let bakers = self.bakers.unwrap_or_else(default_bakers);
        if bakers == 0 {
            return Err(BuildError::NoBakers);
        }
        // Loom tracks every atomic of every place in the roster: its models
        // get a small ceiling unless they ask for more.
        let default_max = if cfg!(loom) { 4 } else { DEFAULT_MAX_BAKERS };
        let max_bakers = self.max_bakers.unwrap_or_else(|| bakers.max(default_max));
        for requested in [bakers, max_bakers] {
            if requested > MAX_BAKERS {
                return Err(BuildError::TooManyBakers {
                    requested,
                    max: MAX_BAKERS,
                });
            }
        }
        if bakers > max_bakers {
            return Err(BuildError::TooManyBakers {
                requested: bakers,
                max: max_bakers,
            });
        }
        if self.stack_size == Some(0) {
            return Err(BuildError::ZeroStackSize);
        }
        let mut names = Vec::with_capacity(bakers);
        for index in 0..bakers {
            let name = match &mut self.namer {
                Some(namer) => namer(index),
                None => default_name(index),
            };
            if name.contains('\0') {
                return Err(BuildError::NameContainsNul { index, name });
            }
            names.push(name);
        }
        let registry = Registry::start(RegistryParts {
            names,
            max_bakers,
            namer: self.namer,
            // Always set, so that a baker knows its stack's size (see
            // `baker_thread`): the builder's, or what `std` would choose.
            stack_size: self.stack_size.unwrap_or_else(default_stack_size),
            keep_alive: self.keep_alive.unwrap_or(DEFAULT_KEEP_ALIVE),
            // The monitor works by the clock, which loom does not have: its
            // models leave it out unless they ask for it.
            blocking_threshold: self
                .blocking_threshold
                .unwrap_or((!cfg!(loom)).then_some(DEFAULT_BLOCKING_THRESHOLD)),
            panic_handler: self.panic_handler,
            start_hook: self.start_hook,
            stop_hook: self.stop_hook,
        })?;
        Ok(Bakery::from_registry(registry))
    }
}

/// The default [`max_bakers`](BakeryBuilder::max_bakers): 512.
pub const DEFAULT_MAX_BAKERS: usize = 512;

/// The default [`keep_alive`](BakeryBuilder::keep_alive): 10 seconds.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The default [`blocking_threshold`](BakeryBuilder::blocking_threshold):
/// 2 ms.
pub const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(2);

fn default_bakers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The stack size `std` gives a spawned thread: `RUST_MIN_STACK` if set,
/// else 2 MiB.
fn default_stack_size() -> usize {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or(2 << 20)
}

impl fmt::Debug for BakeryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn closure<T>(option: &Option<T>) -> Option<&'static str> {
            option.as_ref().map(|_| "<closure>")
        }
        f.debug_struct("BakeryBuilder")
            .field("bakers", &self.bakers)
            .field("max_bakers", &self.max_bakers)
            .field("keep_alive", &self.keep_alive)
            .field("blocking_threshold", &self.blocking_threshold)
            .field("baker_name", &closure(&self.namer))
            .field("stack_size", &self.stack_size)
            .field("panic_handler", &closure(&self.panic_handler))
            .field("on_baker_start", &closure(&self.start_hook))
            .field("on_baker_stop", &closure(&self.stop_hook))
            .finish()
    }
}
