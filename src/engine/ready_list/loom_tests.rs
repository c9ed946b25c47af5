//! Loom models of an order set's ready list (see [`super`]): orders that
//! finish on other threads push their places while the set's owner waits
//! for them, parking as a thread outside the bakery does.
//!
//! The models are known to bite: if [`Probe::register`] registered the
//! waiter without looking at the queue under the lock, loom finds the owner
//! parked with the place queued and reports a deadlock: the one-order
//! model shows it at two preemptions, the two-order model (whose owner
//! spins first, as the real wait does) at three.

use super::{Probe, ReadyList};
use crate::engine::wait;
use crate::engine::waiter::Waiter;
use loom::thread;

/// Waits for and takes one place, as `OrderSet::join_next` does.
fn next(list: &ReadyList) -> usize {
    loop {
        if let Some(place) = list.pop() {
            return place;
        }
        wait::park_until(list, None);
    }
}

#[test]
fn every_finished_order_is_taken_once() {
    loom::model(|| {
        let list = ReadyList::new();
        let finishers: Vec<_> = (0..2)
            .map(|place| {
                let list = list.clone();
                // What waking an order's `Waiter::Ready` does.
                thread::spawn(move || Waiter::Ready { list, place }.wake())
            })
            .collect();
        let mut places = [next(&list), next(&list)];
        places.sort_unstable();
        assert_eq!(places, [0, 1]);
        assert!(list.pop().is_none());
        assert!(!list.probe());
        for finisher in finishers {
            finisher.join().unwrap();
        }
    });
}

/// [`next`] without the spinning of `wait::park_until`, whose yields let
/// loom run the finisher first: look, register, park, as `park_until` does
/// once it stops spinning.
fn next_without_spinning(list: &ReadyList) -> usize {
    loop {
        if let Some(place) = list.pop() {
            return place;
        }
        if list.register(|| Waiter::Thread(thread::current())) {
            thread::park();
        }
    }
}

#[test]
fn the_owner_wakes_for_one_finished_order() {
    loom::model(|| {
        let list = ReadyList::new();
        let finisher = {
            let list = list.clone();
            thread::spawn(move || Waiter::Ready { list, place: 7 }.wake())
        };
        assert_eq!(next_without_spinning(&list), 7);
        finisher.join().unwrap();
    });
}
