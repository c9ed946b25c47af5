//! Who to wake when something awaited happens, and the slot that holds it.
//!
//! An order, a scope and a cold fork-join all end the same way: whoever is
//! waiting must be woken, and the waiter can be one of three kinds of
//! thing. A plain thread parks and is unparked. An async task leaves a
//! [`Waker`]. A baker keeps working while it waits and sleeps on its own slot
//! (see [`super::sleep`]), so it is woken through its bakery.
//!
//! The slot is a small mutex around an `Option<Waiter>`. It is only touched on
//! the slow path (a wait that did not find the outcome ready), never by a
//! fast `join` of a finished order.

use crate::engine::ready_list::ReadyList;
use crate::engine::registry::Registry;
use crate::engine::sync::{thread::Thread, Arc, Mutex};
use crate::engine::unwind;
use std::task::Waker;

/// Something waiting to be woken.
pub(crate) enum Waiter {
    /// A thread blocked in `park`.
    Thread(Thread),
    /// An async task.
    Waker(Waker),
    /// A baker sleeping on its slot in `registry`.
    Baker {
        registry: Arc<Registry>,
        index: usize,
    },
    /// An order set: the finished order's place goes onto the set's ready
    /// list, which wakes the set's own waiter (see [`super::ready_list`]).
    Ready { list: Arc<ReadyList>, place: usize },
}

impl Waiter {
    /// Wakes the waiter. Never unwinds: a panicking `Waker` is the async
    /// runtime's bug, and the order it belongs to has already finished.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Waker(waker) => {
                unwind::quietly(|| waker.wake());
            }
            Waiter::Baker { registry, index } => {
                registry.wake_baker(index);
            }
            Waiter::Ready { list, place } => list.push(place),
        }
    }

    /// Whether waking `self` would wake the same task as `waker` (so a
    /// repeated `poll` need not clone its waker again).
    fn wakes(&self, waker: &Waker) -> bool {
        matches!(self, Waiter::Waker(mine) if mine.will_wake(waker))
    }
}

/// The slot where a waiter registers.
pub(crate) struct WaiterSlot {
    slot: Mutex<Option<Waiter>>,
}

impl WaiterSlot {
    pub(crate) fn new() -> WaiterSlot {
        WaiterSlot {
            slot: Mutex::new(None),
        }
    }

    /// Registers `waiter` unless `is_done()` says, under the slot's lock,
    /// that the awaited event already happened. Returns whether the waiter
    /// was registered (and so will be woken).
    ///
    /// `is_done` must publish "a waiter may be registered" and read "is it
    /// done" in one atomic step that the notifier's "done" step is ordered
    /// against (the order state word's `fetch_or(AWAITER)`, for instance), or
    /// be checked after the notifier's decrement (a scope's counter): the
    /// notifier then either sees the waiter flag and takes the slot's lock
    /// after this registration, or this registration sees the event done.
    pub(crate) fn register(&self, waiter: Waiter, is_done: impl FnOnce() -> bool) -> bool {
        let mut slot = self.slot.lock();
        if is_done() {
            return false;
        }
        *slot = Some(waiter);
        true
    }

    /// Like [`register`](Self::register) for an async task, without cloning
    /// the waker when the same task is already registered.
    pub(crate) fn register_waker(&self, waker: &Waker, is_done: impl FnOnce() -> bool) -> bool {
        let mut slot = self.slot.lock();
        if is_done() {
            return false;
        }
        if !slot.as_ref().is_some_and(|mine| mine.wakes(waker)) {
            *slot = Some(Waiter::Waker(waker.clone()));
        }
        true
    }

    /// Removes whatever waiter is registered (a timed wait that gave up).
    pub(crate) fn clear(&self) {
        drop(self.take());
    }

    /// Takes the registered waiter out, without waking it.
    pub(crate) fn take(&self) -> Option<Waiter> {
        self.slot.lock().take()
    }

    /// Wakes the registered waiter, if any.
    pub(crate) fn notify(&self) {
        let waiter = self.slot.lock().take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}
