//! A baker, as seen by the code it runs.

use crate::engine::baker_thread::BakerThread;
use crate::engine::registry::Registry;
use crate::engine::sync::Arc;
use std::fmt;

/// A baker, as seen by the code it runs: its index and name.
///
/// # Examples
///
/// ```
/// use bakehouse::{Baker, Bakery};
///
/// let bakery = Bakery::builder()
///     .bakers(2)
///     .baker_name(|index| format!("pastry-chef-{index}"))
///     .build()?;
/// let who = bakery.submit(|| Baker::current().unwrap()).join()?;
/// assert!(who.index() < 2);
/// assert_eq!(who.name(), format!("pastry-chef-{}", who.index()));
/// assert!(Baker::current().is_none(), "the main thread is no baker");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Baker {
    index: usize,
    name: std::sync::Arc<str>,
    registry: Arc<Registry>,
}

impl Baker {
    /// Baker `index` of the bakery `registry`.
    pub(crate) fn of(registry: &Arc<Registry>, index: usize) -> Baker {
        Baker {
            index,
            name: registry.record(index).name().clone(),
            registry: registry.clone(),
        }
    }

    /// The baker running the calling code, or `None` outside any bakery.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(3);
    /// let index = bakery.submit(|| bakehouse::Baker::current().map(|b| b.index())).join().unwrap();
    /// assert!(index.unwrap() < 3);
    /// ```
    pub fn current() -> Option<Baker> {
        BakerThread::with_current(|baker| {
            baker.map(|baker| Baker {
                index: baker.index(),
                name: baker.registry().record(baker.index()).name().clone(),
                registry: baker.registry().clone(),
            })
        })
    }

    /// The baker's index: below the bakery's configured number of bakers
    /// for the bakers it started with, and below its
    /// [`max_bakers`](crate::Bakery::max_bakers) for the ones it started
    /// later. A baker that goes home gives its index back, and the next one
    /// to start takes the lowest free index.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// assert_eq!(bakery.submit(|| bakehouse::Baker::current().unwrap().index()).join().unwrap(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The baker's name, which is also its thread's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let name = bakery.submit(|| bakehouse::Baker::current().unwrap().name().to_owned());
    /// assert_eq!(name.join().unwrap(), "baker-0");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many bakers this baker's bakery is configured to keep runnable
    /// (see [`Bakery::bakers`](crate::Bakery::bakers)).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// assert_eq!(bakery.submit(|| bakehouse::Baker::current().unwrap().bakers()).join().unwrap(), 2);
    /// ```
    pub fn bakers(&self) -> usize {
        self.registry.target()
    }

    /// Whether this baker's bakery is shutting down: it takes no new
    /// orders, and its bakers go home once the queues are empty.
    ///
    /// A long-running order (a periodic check, a server loop) polls it to
    /// end on its own, without holding a [`Bakery`](crate::Bakery) handle
    /// that would keep the bakery open.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let watcher = bakery.submit(move || {
    ///     let me = bakehouse::Baker::current().unwrap();
    ///     started_tx.send(()).unwrap();
    ///     let mut rounds = 0;
    ///     while !me.is_closing() {
    ///         rounds += 1;
    ///         std::thread::sleep(Duration::from_millis(1));
    ///     }
    ///     rounds
    /// });
    /// started.recv().unwrap();
    /// drop(bakery); // the last handle: the bakery closes, and waits for the watcher
    /// let rounds = watcher.join().unwrap();
    /// println!("checked {rounds} times");
    /// ```
    pub fn is_closing(&self) -> bool {
        self.registry.is_closed()
    }
}

impl PartialEq for Baker {
    /// Two `Baker`s are equal when they describe the same baker of the same
    /// bakery.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// let first = bakery.submit(|| bakehouse::Baker::current().unwrap()).join().unwrap();
    /// let second = bakery.submit(|| bakehouse::Baker::current().unwrap()).join().unwrap();
    /// assert_eq!(first, second, "the same one baker");
    /// ```
    fn eq(&self, other: &Baker) -> bool {
        self.index == other.index && Arc::ptr_eq(&self.registry, &other.registry)
    }
}

impl Eq for Baker {}

impl fmt::Debug for Baker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Baker")
            .field("index", &self.index)
            .field("name", &&*self.name)
            .finish()
    }
}
