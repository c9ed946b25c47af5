//! What a waiter needs from anything it waits for.

use crate::engine::waiter::Waiter;

/// Something a waiter can check and register with: the stolen half of a
/// `join`, an order, a scope, a baker's whole life.
pub(crate) trait Probe {
    /// Whether the awaited event happened. Once true, everything written
    /// before the event is visible to the caller.
    fn probe(&self) -> bool;

    /// Asks for the waiter built by `waiter` to be woken when the event
    /// happens. Returns `false` if it already happened. (A fork's latch
    /// always wakes its owning baker and ignores `waiter`.)
    fn register(&self, waiter: impl FnOnce() -> Waiter) -> bool;

    /// Forgets a registered waiter: a timed wait that gave up.
    fn unregister(&self) {}

    /// Whether a registered waiter may still go to sleep: checked under its
    /// sleep slot's lock, right before it blocks. By default, while the
    /// event has not happened, since whoever makes it happen wakes the
    /// waiter afterwards. A probe whose wake-up comes once, before the
    /// event is done, must say no from then on.
    fn may_sleep(&self) -> bool {
        !self.probe()
    }

    /// How long a waiter may sleep before it looks again on its own, if not
    /// for ever: the waits of a surplus baker, which retires when no work
    /// came for that long.
    fn sleep_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// The waiter slept for [`sleep_timeout`](Probe::sleep_timeout) and
    /// nobody woke it.
    fn timed_out(&self) {}
}
