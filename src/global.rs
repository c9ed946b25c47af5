//! The global bakery: one per process, started on first use, as rayon's
//! global pool.

use crate::bakery::Bakery;
use crate::builder::BakeryBuilder;
use crate::error::BuildError;
use std::sync::OnceLock;

/// The global bakery, once started.
static GLOBAL: OnceLock<Bakery> = OnceLock::new();

impl Bakery {
    /// The global bakery, shared by the whole process: started on first
    /// use with one baker per available CPU and otherwise the defaults of
    /// [`BakeryBuilder`], unless [`BakeryBuilder::build_global`] configured
    /// it first. The free functions [`submit`](crate::submit()),
    /// [`join`](crate::join()) and [`scope`](crate::scope()) use it when
    /// called off any bakery's bakers.
    ///
    /// It lives for the rest of the process; its bakers sleep while it has
    /// no work. [`shutdown`](Bakery::shutdown) on a clone of it closes it
    /// for good: from then on it rejects orders from outside, like any
    /// bakery that shut down.
    ///
    /// # Panics
    ///
    /// On first use, if the operating system refuses to start a baker's
    /// thread (the panic carries the [`BuildError`]'s message).
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::global();
    /// assert_eq!(bakery.submit(|| 6 * 7).join().unwrap(), 42);
    /// assert!(std::ptr::eq(bakery, bakehouse::Bakery::global()), "always the same one");
    /// ```
    #[doc(alias = "global_pool")]
    pub fn global() -> &'static Bakery {
        GLOBAL.get_or_init(|| match BakeryBuilder::new().build() {
            Ok(bakery) => bakery,
            Err(error) => panic!("the global bakery could not start: {error}"),
        })
    }
}

impl BakeryBuilder {
    /// Builds the bakery and makes it the [global](Bakery::global) one
    /// (rayon's `build_global`). Only the first call that finds no global
    /// bakery wins; it must come before anything uses the global bakery.
    ///
    /// # Errors
    ///
    /// [`BuildError::GlobalAlreadyStarted`] if the global bakery exists
    /// already (an earlier `build_global`, or a use of
    /// [`Bakery::global`] or of the free functions off any bakery), and any
    /// error [`build`](BakeryBuilder::build) gives.
    ///
    /// # Examples
    ///
    /// ```
    /// use bakehouse::{Bakery, BuildError};
    ///
    /// Bakery::builder().bakers(2).baker_name(|i| format!("global-{i}")).build_global()?;
    /// assert_eq!(Bakery::global().bakers(), 2);
    ///
    /// // Only once.
    /// let again = Bakery::builder().bakers(3).build_global();
    /// assert!(matches!(again, Err(BuildError::GlobalAlreadyStarted)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn build_global(self) -> Result<(), BuildError> {
        if GLOBAL.get().is_some() {
            return Err(BuildError::GlobalAlreadyStarted);
        }
        // Two racing calls may both build; only one bakery is kept, and the
        // other shuts down again when dropped here.
        GLOBAL
            .set(self.build()?)
            .map_err(|_| BuildError::GlobalAlreadyStarted)
    }
}
