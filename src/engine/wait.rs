//! How a thread waits for a [`Probe`]: the right way for the calling
//! thread. A baker keeps working for its pool while it waits (see
//! [`BakerThread::wait_until`]); any other thread spins briefly, then parks.

use crate::engine::baker_thread::BakerThread;
use crate::engine::probe::Probe;
use crate::engine::sync::{thread, Backoff};
use crate::engine::waiter::Waiter;
use std::time::{Duration, Instant};

/// Waits until `probe` is done. A baker (of any pool) keeps working for its
/// own pool meanwhile; any other thread spins briefly, then parks.
pub(crate) fn wait(probe: &impl Probe) {
    if probe.probe() {
        return;
    }
    BakerThread::with_current(|baker| match baker {
        Some(baker) => baker.wait_until(probe),
        None => {
            park_until(probe, None);
        }
    });
}

/// The waiter to register for the calling thread: its slot in the pool's
/// sleep module if it is a baker, else the thread itself.
pub(crate) fn current_waiter() -> Waiter {
    BakerThread::with_current(|baker| match baker {
        Some(baker) => baker.waiter(),
        None => Waiter::Thread(thread::current()),
    })
}

/// How long a waiting thread keeps checking, yielding its core, before it
/// parks: about what an asleep baker needs to wake up and run a short order,
/// so a quick round trip costs the waiter no wake-up of its own.
#[cfg(not(loom))]
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);
/// Loom has no clock: park at once.
#[cfg(loom)]
const SPIN_BEFORE_PARK: Duration = Duration::ZERO;

/// Parks the calling thread until `probe` is done or `deadline` passes,
/// without doing any other work. Returns whether `probe` is done.
pub(crate) fn park_until(probe: &impl Probe, deadline: Option<Instant>) -> bool {
    let backoff = Backoff::new();
    let mut spin_until = None;
    while !probe.probe() {
        if !backoff.is_completed() {
            backoff.snooze();
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            probe.unregister();
            return probe.probe();
        }
        if now < *spin_until.get_or_insert(now + SPIN_BEFORE_PARK) {
            thread::yield_now();
            continue;
        }
        if probe.register(|| Waiter::Thread(thread::current())) {
            match deadline {
                Some(deadline) => thread::park_timeout(deadline.saturating_duration_since(now)),
                None => thread::park(),
            }
        }
    }
    true
}
