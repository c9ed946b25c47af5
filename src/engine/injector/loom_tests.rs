//! A loom model of a batch in flight: a baker takes two jobs from the
//! injector, one to run and one moved into its own deque, while its
//! colleague searches and falls asleep. The job it runs waits for the moved
//! one, so the colleague must not sleep through the batch.
//!
//! Baker 0 does what `Registry::take_injected` does; baker 1 searches
//! and sleeps as a baker's main loop does. The model is known to bite:
//! without the announcement (the fence and `Sleep::new_work` after the
//! batch lands), loom reports a deadlock.

use super::*;
use crate::engine::job::{Job, Mode};
use crate::engine::sleep::loom_tests::Bakers;
use crate::engine::sleep::SlotState;
use crate::engine::sync::{fence, Arc, AtomicBool};
use crossbeam_deque::Steal;
use loom::thread;
use std::ptr::NonNull;

/// A job with nothing to do: the model only moves references around.
struct Nothing;

impl Job for Nothing {
    unsafe fn execute(_this: NonNull<Self>, _mode: Mode) -> crate::engine::job::Fate {
        crate::engine::job::Fate::Untracked
    }
}

fn nothing() -> JobRef {
    // SAFETY: a zero-sized job needs no storage, and it does nothing when
    // executed, on any thread.
    unsafe { JobRef::new(NonNull::<Nothing>::dangling()) }
}

#[test]
fn a_colleague_does_not_sleep_through_a_batch_in_flight() {
    loom::model(|| {
        let sleep = Arc::new(Bakers::new(2));
        let injector = Arc::new(Injector::new());
        injector.push(nothing());
        injector.push(nothing());
        let worker = Worker::new_lifo();
        let stealer = worker.stealer();
        let moved_ran = Arc::new(AtomicBool::new(false));

        // Baker 0 takes the batch, announces it as `take_injected` does, and
        // runs the first job, which waits for the moved one.
        let first = {
            let (sleep, injector, moved_ran) = (sleep.clone(), injector.clone(), moved_ran.clone());
            thread::spawn(move || {
                let (job, moved) = injector.pop_batch(&worker).expect("a job");
                assert_eq!(moved, 1);
                fence(Ordering::SeqCst);
                sleep.new_work();
                job.execute(Mode::Run);
                while !moved_ran.load(Ordering::Acquire) {
                    thread::park();
                }
            })
        };

        // Baker 1 searches baker 0's deque, and sleeps when it and the
        // injector look empty (it leaves the injector's jobs to baker 0, so
        // that the model is about the batch).
        sleep.start_searching();
        let has_work = || !injector.is_empty() || !stealer.is_empty();
        loop {
            if let Steal::Success(job) = stealer.steal() {
                sleep.stop_searching(has_work);
                job.execute(Mode::Run);
                moved_ran.store(true, Ordering::Release);
                first.thread().unpark();
                break;
            }
            if injector.is_empty() {
                sleep.sleep(1, SlotState::Idle, || true, has_work);
            } else {
                // Baker 0 has not taken its batch yet: let it.
                thread::yield_now();
            }
        }
        first.join().unwrap();
    });
}
