//! Loom models of how work survives a baker leaving or blocking: its deque
//! handed over as it retires, its fork announced as it blocks, and a
//! surplus baker's keep-alive running out while work arrives.
//!
//! Each model plays the protocol's steps on the sleep state, the injector
//! and the deques (as `BakerThread::hand_over_deque`, `blocking` and the
//! life loop's surplus wait do), against a colleague that searches and falls
//! asleep as a baker's loop does. They are known to bite: without the
//! announcement after each handed-over entry (the fence and
//! `Sleep::new_work` of `Registry::inject`), without the look at the queues
//! when a baker blocks (`Registry::wake_for_queued_work`), or without the
//! hand-over wake-up of `Sleep::stop_searching` when a surplus baker leaves,
//! loom reports a deadlock.

use crate::engine::injector::Injector;
use crate::engine::job::{Job, JobRef, Mode};
use crate::engine::sleep::loom_tests::Bakers;
use crate::engine::sleep::SlotState;
use crate::engine::sync::{fence, Arc, AtomicBool, Ordering, Stealer, Worker};
use crossbeam_deque::Steal;
use loom::thread;
use std::ptr::NonNull;
use std::time::Duration;

/// A job that sets its flag when it runs. The flag outlives the job in
/// every model.
struct SetFlag(AtomicBool);

impl Job for SetFlag {
    unsafe fn execute(this: NonNull<Self>, _mode: Mode) -> crate::engine::job::Fate {
        // SAFETY: the models keep the job alive until it ran.
        unsafe { this.as_ref() }.0.store(true, Ordering::Release);
        crate::engine::job::Fate::Untracked
    }
}

fn job(flag: &Arc<SetFlag>) -> JobRef {
    // SAFETY: the `Arc` keeps the job alive past its one execution.
    unsafe { JobRef::new(NonNull::from(&**flag)) }
}

/// Baker `index`'s loop until it ran one job: it looks in the injector and
/// at `stealer`, and sleeps as `Idle` when both look empty.
fn colleague(bakers: &Bakers, index: usize, injector: &Injector, stealer: &Stealer<JobRef>) {
    let has_work = || !injector.is_empty() || !stealer.is_empty();
    bakers.start_searching();
    loop {
        let found = injector.pop().or_else(|| match stealer.steal() {
            Steal::Success(job) => Some(job),
            _ => None,
        });
        if let Some(job) = found {
            bakers.stop_searching(has_work);
            job.execute(Mode::Run);
            return;
        }
        bakers.sleep(index, SlotState::Idle, || true, has_work);
    }
}

#[test]
fn a_retiring_bakers_deque_is_handed_over() {
    loom::model(|| {
        let bakers = Arc::new(Bakers::new(2));
        let injector = Arc::new(Injector::new());
        let flag = Arc::new(SetFlag(AtomicBool::new(false)));
        let worker = Worker::new_lifo();
        worker.push(job(&flag));
        let stealer = worker.stealer();
        // Baker 0 retires, moving its deque into the injector as
        // `hand_over_deque` does through `Registry::inject`.
        let leaving = {
            let (bakers, injector) = (bakers.clone(), injector.clone());
            thread::spawn(move || {
                while let Some(job) = worker.pop() {
                    injector.push(job);
                    fence(Ordering::SeqCst);
                    bakers.new_work();
                }
            })
        };
        colleague(&bakers, 1, &injector, &stealer);
        leaving.join().unwrap();
        assert!(flag.0.load(Ordering::Acquire));
    });
}

#[test]
fn a_blocking_bakers_fork_is_announced() {
    loom::model(|| {
        let bakers = Arc::new(Bakers::new(2));
        let injector = Arc::new(Injector::new());
        let flag = Arc::new(SetFlag(AtomicBool::new(false)));
        let worker = Worker::new_lifo();
        let stealer = worker.stealer();
        // Baker 0 pushes a fork (no fence: a fork is normally run by its
        // owner) and then blocks until it ran, announcing the queued work
        // first as `Registry::wake_for_queued_work` does.
        let blocking = {
            let (bakers, injector, flag) = (bakers.clone(), injector.clone(), flag.clone());
            let stealer = stealer.clone();
            thread::spawn(move || {
                worker.push(job(&flag));
                fence(Ordering::SeqCst);
                if !injector.is_empty() || !stealer.is_empty() {
                    bakers.new_work();
                }
                while !flag.0.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                drop(worker);
            })
        };
        colleague(&bakers, 1, &injector, &stealer);
        blocking.join().unwrap();
    });
}

#[test]
fn a_surplus_bakers_keep_alive_running_out_races_a_submit() {
    loom::model(|| {
        let bakers = Arc::new(Bakers::new(2));
        let injector = Arc::new(Injector::new());
        let flag = Arc::new(SetFlag(AtomicBool::new(false)));
        let has_work = {
            let injector = injector.clone();
            move || !injector.is_empty()
        };
        // Baker 1 is surplus: it sleeps with a keep-alive that runs out at
        // once. Woken, it takes the work; timed out, it leaves, stopping its
        // search as the life loop does on its way to retire.
        let surplus = {
            let (bakers, injector, has_work) = (bakers.clone(), injector.clone(), has_work.clone());
            thread::spawn(move || {
                bakers.start_searching();
                loop {
                    if let Some(job) = injector.pop() {
                        bakers.stop_searching(&has_work);
                        job.execute(Mode::Run);
                        return;
                    }
                    if bakers.sleep_for(1, &has_work, Duration::ZERO) {
                        bakers.stop_searching(&has_work);
                        return;
                    }
                }
            })
        };
        // Baker 0 waits until the work ran, on either baker.
        let steady = {
            let (bakers, injector, flag) = (bakers.clone(), injector.clone(), flag.clone());
            thread::spawn(move || {
                bakers.start_searching();
                loop {
                    if flag.0.load(Ordering::Acquire) {
                        bakers.stop_searching(|| false);
                        return;
                    }
                    if let Some(job) = injector.pop() {
                        bakers.stop_searching(&has_work);
                        job.execute(Mode::Run);
                        return;
                    }
                    let not_done = || !flag.0.load(Ordering::Acquire);
                    bakers.sleep(0, SlotState::Idle, not_done, &has_work);
                }
            })
        };
        injector.push(job(&flag));
        fence(Ordering::SeqCst);
        bakers.new_work();
        surplus.join().unwrap();
        if flag.0.load(Ordering::Acquire) {
            // Baker 1 ran it: let baker 0 see that.
            bakers.wake_specific(0);
        }
        steady.join().unwrap();
        assert!(flag.0.load(Ordering::Acquire));
    });
}
