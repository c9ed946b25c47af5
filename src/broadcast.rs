//! Running a closure once on every baker.

use crate::baker::Baker;
use crate::bakery::Bakery;
use crate::engine::unwind;
use parking_lot::Mutex;

impl Bakery {
    /// Runs `f` once on every baker of this bakery and returns the results
    /// in the bakers' index order (rayon's `broadcast`): per-thread set-up,
    /// flushing thread-local buffers, a look at each baker.
    ///
    /// *Every baker* is every thread the bakery holds when `broadcast` is
    /// called: the configured bakers, and any stand-ins running for blocked
    /// bakers at that moment (so the result may be longer than
    /// [`bakers`](Bakery::bakers)). A baker that starts later does not run
    /// `f`; a baker that goes home before getting to it runs it on its way
    /// out. Once the bakery has shut down and every baker went home, no
    /// baker is left and the result is empty.
    ///
    /// Each baker runs `f` between two orders, or from a wait inside one
    /// (a `join`, `Order::join`, a scope), before any other queued work; a
    /// baker busy with a long order runs it only once that order ends or
    /// waits. So `broadcast` waits for every baker to get there: a baker
    /// blocked for an hour in an order delays it by an hour, and an order
    /// that waits, outside the bakery's waits, for the caller of
    /// `broadcast` (a channel, a lock it holds) deadlocks it. Called from
    /// one of this bakery's bakers, the caller runs its own share while it
    /// waits for the others.
    ///
    /// # Panics
    ///
    /// If `f` panics on any baker, once every baker has run it, with the
    /// first such panic in index order.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::builder()
    ///     .bakers(3)
    ///     .baker_name(|i| format!("oven-{i}"))
    ///     .build()?;
    /// let names = bakery.broadcast(|baker| baker.name().to_string());
    /// assert_eq!(names, ["oven-0", "oven-1", "oven-2"]);
    /// # Ok::<(), bakehouse::BuildError>(())
    /// ```
    pub fn broadcast<F, R>(&self, f: F) -> Vec<R>
    where
        F: Fn(&Baker) -> R + Sync,
        R: Send,
    {
        let registry = self.registry();
        let f = &f;
        // Each share leaves its outcome here and its handle is dropped at
        // once: joining a share from a baker could run it right there, on the
        // wrong baker, while the scope's own wait only takes work that
        // anyone may run (a share sits in its baker's inbox, out of reach).
        let outcomes: Mutex<Vec<(usize, std::thread::Result<R>)>> = Mutex::new(Vec::new());
        self.scope(|s| {
            let outcomes = &outcomes;
            drop(s.submit_to_each(|index| {
                move || {
                    let outcome = unwind::halt_unwinding(|| f(&Baker::of(registry, index)));
                    outcomes.lock().push((index, outcome));
                }
            }));
        });
        let mut outcomes = outcomes.into_inner();
        outcomes.sort_unstable_by_key(|&(index, _)| index);
        let mut results = Vec::with_capacity(outcomes.len());
        let mut first_panic = None;
        for (_, outcome) in outcomes {
            match outcome {
                Ok(value) => results.push(value),
                Err(payload) if first_panic.is_none() => first_panic = Some(payload),
                Err(payload) => unwind::quietly(|| drop(payload)),
            }
        }
        if let Some(payload) = first_panic {
            unwind::quietly(|| drop(results));
            unwind::resume_unwinding(payload);
        }
        results
    }
}
