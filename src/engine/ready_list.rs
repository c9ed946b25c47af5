//! The ready list of an `OrderSet`: the set's orders, by their place in the
//! set, in the order they finished.
//!
//! # The pieces
//!
//! * A lock around a FIFO queue of places and the one waiter of the set (a
//!   thread, an async task's waker, or a baker's sleep slot; see
//!   [`super::waiter`]).
//! * In each of the set's orders, its waiter slot holds a
//!   [`Waiter::Ready`] naming this list and the order's place.
//!
//! # The protocol
//!
//! When an order finishes (it completes, panics, is cancelled or
//! rejected), whoever gave it its outcome wakes its registered waiter, as
//! for any order (see [`super::task`]); waking a [`Waiter::Ready`] calls
//! [`ReadyList::push`]: under the list's lock, the place joins the back of
//! the queue and the set's waiter is taken out; after the lock is released,
//! that waiter is woken.
//!
//! The set's owner, to wait for the next finished order, looks at the queue
//! under the lock ([`Probe::probe`]); if it is empty, it registers itself as
//! the list's waiter under the same lock, unless the queue is not empty by
//! then ([`Probe::register`]), and sleeps the usual way for its kind of
//! thread (see [`super::wait`]).
//!
//! # Why no finished order is missed, and none is reported twice
//!
//! Push and register take the same lock. If the push comes first, the
//! registration sees the place queued and does not sleep; if the
//! registration comes first, the push takes the waiter out and wakes it
//! after the place is queued, and the waiter's next look finds it. A
//! waiter woken for nothing looks again and sleeps again.
//!
//! An order's waiter slot is woken at most once (its outcome is given once,
//! see [`super::task`]), and a place is queued either by that wake-up or,
//! when the order had finished before its waiter was registered, by the set
//! itself: never both, since registration and the outcome's wake-up are
//! ordered by the order's state word. The set reuses a place only after it
//! took it from the queue, so no place is queued twice.
//!
//! Nothing here scans the set's orders: each finished order names its own
//! place. The queue is a `VecDeque` owned by the list, which keeps its
//! largest capacity; an order costs nothing beyond its own block, and a
//! reference count on the list held by its waiter slot.
//!
//! The push and its wake-up are modelled with loom in
//! `ready_list/loom_tests.rs`.

use crate::engine::baker_thread::BakerThread;
use crate::engine::probe::Probe;
use crate::engine::sync::{Arc, Mutex};
use crate::engine::wait;
use crate::engine::waiter::Waiter;
use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

/// The places of finished orders, and who waits for them.
pub(crate) struct ReadyList {
    inner: Mutex<Inner>,
}

struct Inner {
    ready: VecDeque<usize>,
    waiter: Option<Waiter>,
}

impl ReadyList {
    /// An empty list, shared with the set's orders.
    pub(crate) fn new() -> Arc<ReadyList> {
        Arc::new(ReadyList {
            inner: Mutex::new(Inner {
                ready: VecDeque::new(),
                waiter: None,
            }),
        })
    }

    /// The order at `place` finished: queues the place and wakes the
    /// set's waiter, if any.
    pub(crate) fn push(&self, place: usize) {
        let waiter = {
            let mut inner = self.inner.lock();
            inner.ready.push_back(place);
            inner.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Takes the place of the order that finished first, if any.
    pub(crate) fn pop(&self) -> Option<usize> {
        self.inner.lock().ready.pop_front()
    }

    /// Waits until a place is queued, or `deadline` passes; returns whether
    /// one is. Without a deadline the caller waits as for an order's
    /// `join`: a baker keeps working meanwhile. With one it parks, and on a
    /// baker that counts as blocking (as for an order's `join_timeout`).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        match deadline {
            None => {
                wait::wait(self);
                true
            }
            Some(deadline) => BakerThread::with_current(|baker| match baker {
                Some(baker) => baker.blocking(|| wait::park_until(self, Some(deadline))),
                None => wait::park_until(self, Some(deadline)),
            }),
        }
    }

    /// Registers an async task's waker unless a place is queued; returns
    /// whether it registered.
    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        let mut inner = self.inner.lock();
        if !inner.ready.is_empty() {
            return false;
        }
        let same = matches!(&inner.waiter, Some(Waiter::Waker(mine)) if mine.will_wake(waker));
        if !same {
            inner.waiter = Some(Waiter::Waker(waker.clone()));
        }
        true
    }
}

impl Probe for ReadyList {
    fn probe(&self) -> bool {
        !self.inner.lock().ready.is_empty()
    }

    fn register(&self, waiter: impl FnOnce() -> Waiter) -> bool {
        let mut inner = self.inner.lock();
        if !inner.ready.is_empty() {
            return false;
        }
        inner.waiter = Some(waiter());
        true
    }

    fn unregister(&self) {
        let waiter = self.inner.lock().waiter.take();
        drop(waiter);
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
