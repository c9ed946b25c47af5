//! Waiting until a bakery has nothing queued and nothing running.

use crate::bakery::Bakery;
use crate::engine::baker_thread::BakerThread;
use std::time::{Duration, Instant};

impl Bakery {
    /// Waits until no order is queued or running, then returns; the bakery
    /// stays open for more (threadpool's `join`, Java's
    /// `awaitQuiescence`).
    ///
    /// It returns at a moment when nothing was queued and no baker was
    /// running anything: every order submitted before the call, and every
    /// order those submitted, has finished. Orders submitted meanwhile from
    /// other threads may keep it waiting, or may already be running again
    /// by the time it returns. It sleeps until a baker runs out of work and
    /// wakes it: no polling, and while nobody waits, the bakers pay one
    /// load each time they run out of work.
    ///
    /// A bakery that was shut down and whose bakers went home is idle.
    /// Delayed orders ([`submit_after`](Bakery::submit_after) and the like)
    /// whose time has not come are not queued yet: they do not keep it
    /// waiting, and join the queue when they are due.
    ///
    /// # Panics
    ///
    /// If called from one of this bakery's own bakers: the order making the
    /// call is running, so the bakery could never be idle while it waits.
    /// (Join the orders you need instead, or use a
    /// [`scope`](Bakery::scope) or an [`OrderSet`](crate::OrderSet).) From
    /// a baker of another bakery it is a blocking wait, declared as one
    /// (see [`blocking`](crate::blocking())).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let bakery = bakehouse::Bakery::new(2);
    /// let loaves = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let loaves = loaves.clone();
    ///     bakery.submit(move || loaves.fetch_add(1, Ordering::Relaxed)).detach();
    /// }
    /// bakery.wait_idle();
    /// assert_eq!(loaves.load(Ordering::Relaxed), 10);
    /// // Still open.
    /// assert_eq!(bakery.submit(|| 1).join().unwrap(), 1);
    /// ```
    pub fn wait_idle(&self) {
        self.wait_idle_until(None);
    }

    /// Waits at most `timeout` until no order is queued or running, as
    /// [`wait_idle`](Bakery::wait_idle) does. Returns `true` if the bakery
    /// was idle, `false` if time ran out first.
    ///
    /// # Panics
    ///
    /// If called from one of this bakery's own bakers, as
    /// [`wait_idle`](Bakery::wait_idle).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let bakery = bakehouse::Bakery::new(1);
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let proofing = bakery.submit(move || rx.recv().unwrap());
    /// assert!(!bakery.wait_idle_timeout(Duration::from_millis(10)));
    /// tx.send(()).unwrap();
    /// assert!(bakery.wait_idle_timeout(Duration::from_secs(60)));
    /// proofing.join().unwrap();
    /// ```
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        // A timeout too large for `Instant` waits as long as it takes.
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_idle_until(Some(deadline)),
            None => self.wait_idle_until(None),
        }
    }

    fn wait_idle_until(&self, deadline: Option<Instant>) -> bool {
        let registry = self.registry();
        BakerThread::with_current(|baker| match baker {
            Some(baker) if baker.registry().id() == registry.id() => panic!(
                "`wait_idle` called from one of the bakery's own bakers: the order \
                 calling it is running, so the bakery would never be idle"
            ),
            Some(baker) => baker.blocking(|| registry.wait_idle(deadline)),
            None => registry.wait_idle(deadline),
        })
    }
}
