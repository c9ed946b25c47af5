//! Loom models of waiting for an idle bakery: the waiter count and its
//! wake-up (see [`super`]).
//!
//! A "baker" stops working as a baker's loop does (it says so, fences, and
//! calls [`IdleWatch::baker_stopped`]), while a waiter waits for every baker
//! to have stopped. The activity words are loom atomics here, standing in
//! for the records' words (which the real code keeps out of the models).
//!
//! The models are known to bite: without the waiter's fence after it
//! counts itself (or without the baker's fence after saying it stopped),
//! loom finds the waiter asleep with both bakers stopped and nobody left to
//! wake it, and reports a deadlock.

use super::IdleWatch;
use crate::engine::sync::{fence, Arc, AtomicBool, Ordering};
use loom::thread;

/// A baker stops working: says so, fences, and looks for waiters.
fn stop(watch: &IdleWatch, working: &AtomicBool) {
    working.store(false, Ordering::Release);
    fence(Ordering::SeqCst);
    watch.baker_stopped();
}

#[test]
fn a_waiter_wakes_when_the_last_baker_stops() {
    loom::model(|| {
        let watch = Arc::new(IdleWatch::new());
        let working: Arc<[AtomicBool; 2]> =
            Arc::new([AtomicBool::new(true), AtomicBool::new(true)]);
        let bakers: Vec<_> = (0..2)
            .map(|index| {
                let (watch, working) = (watch.clone(), working.clone());
                thread::spawn(move || stop(&watch, &working[index]))
            })
            .collect();
        let idle = watch.wait(
            || working.iter().all(|word| !word.load(Ordering::Acquire)),
            None,
        );
        assert!(idle);
        for baker in bakers {
            baker.join().unwrap();
        }
    });
}

#[test]
fn two_waiters_both_wake() {
    loom::model(|| {
        let watch = Arc::new(IdleWatch::new());
        let working = Arc::new(AtomicBool::new(true));
        let other = {
            let (watch, working) = (watch.clone(), working.clone());
            thread::spawn(move || {
                assert!(watch.wait(|| !working.load(Ordering::Acquire), None));
            })
        };
        let baker = {
            let (watch, working) = (watch.clone(), working.clone());
            thread::spawn(move || stop(&watch, &working))
        };
        assert!(watch.wait(|| !working.load(Ordering::Acquire), None));
        other.join().unwrap();
        baker.join().unwrap();
    });
}
