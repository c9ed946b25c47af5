//! Loom models of the sleep protocol on its own, with a one-flag "queue":
//! small enough for loom to try every interleaving of a submitter against a
//! baker falling asleep, of a latch against its sleeping owner, and of a
//! shutdown against a baker going to sleep.
//!
//! The models are known to bite: removing the re-check of the queues at
//! step 4 of `Sleep::sleep`, or its fence, or the hand-over wake-up in
//! `Sleep::stop_searching`, or that function's fence, makes loom report a
//! deadlock here.

use super::*;
use crate::engine::sync::{fence, Arc, AtomicBool};
use loom::thread;

/// The sleep state of a few bakers: the counter word and their slots, with
/// the protocol's calls by baker index.
pub(crate) struct Bakers {
    sleep: Sleep,
    slots: Vec<Slot>,
}

impl Slots for Vec<Slot> {
    fn count(&self) -> usize {
        self.len()
    }

    fn slot(&self, index: usize) -> &Slot {
        &self[index]
    }
}

impl Bakers {
    pub(crate) fn new(bakers: usize) -> Bakers {
        Bakers {
            sleep: Sleep::new(),
            slots: (0..bakers).map(|_| Slot::new()).collect(),
        }
    }

    pub(crate) fn start_searching(&self) {
        self.sleep.start_searching();
    }

    pub(crate) fn stop_searching(&self, has_work: impl FnOnce() -> bool) {
        self.sleep.stop_searching(&self.slots, has_work);
    }

    pub(crate) fn new_work(&self) {
        self.sleep.new_work(&self.slots);
    }

    pub(crate) fn sleep(
        &self,
        index: usize,
        mode: SlotState,
        keep_sleeping: impl Fn() -> bool,
        has_work: impl FnOnce() -> bool,
    ) {
        self.sleep
            .sleep(&self.slots[index], mode, keep_sleeping, has_work, None);
    }

    /// Sleeps as `Idle` for at most `timeout`; returns whether it ran out.
    pub(crate) fn sleep_for(
        &self,
        index: usize,
        has_work: impl FnOnce() -> bool,
        timeout: std::time::Duration,
    ) -> bool {
        self.sleep.sleep(
            &self.slots[index],
            SlotState::Idle,
            || true,
            has_work,
            Some(timeout),
        )
    }

    pub(crate) fn wake_specific(&self, index: usize) {
        self.sleep.wake_specific(&self.slots[index]);
    }

    pub(crate) fn wake_all(&self) {
        self.sleep.wake_all(&self.slots);
    }
}

/// A baker's search-then-sleep loop over a single queued flag. Returns when
/// it took the job, or when `closed` is set and nothing is queued.
fn baker(sleep: &Bakers, queued: &AtomicBool, closed: &AtomicBool) -> bool {
    sleep.start_searching();
    loop {
        // The crossbeam deques publish a push with a Release store and read
        // with Acquire loads, as modelled here.
        if queued.swap(false, Ordering::Acquire) {
            sleep.stop_searching(|| queued.load(Ordering::Acquire));
            return true;
        }
        if closed.load(Ordering::Acquire) {
            fence(Ordering::SeqCst);
            if !queued.load(Ordering::Acquire) {
                sleep.stop_searching(|| false);
                return false;
            }
            continue;
        }
        sleep.sleep(
            0,
            SlotState::Idle,
            || !closed.load(Ordering::Acquire),
            || queued.load(Ordering::Acquire),
        );
    }
}

/// The sleep state of `bakers` bakers, an empty one-flag queue, and an open
/// pool.
fn pool(bakers: usize) -> (Arc<Bakers>, Arc<AtomicBool>, Arc<AtomicBool>) {
    (
        Arc::new(Bakers::new(bakers)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    )
}

/// Starts baker 0 on its own thread; it returns whether it took the job.
fn spawn_baker(
    sleep: &Arc<Bakers>,
    queued: &Arc<AtomicBool>,
    closed: &Arc<AtomicBool>,
) -> thread::JoinHandle<bool> {
    let (sleep, queued, closed) = (sleep.clone(), queued.clone(), closed.clone());
    thread::spawn(move || baker(&sleep, &queued, &closed))
}

/// A submit racing the baker's fall into sleep is always taken.
#[test]
fn submit_races_falling_asleep() {
    loom::model(|| {
        let (sleep, queued, closed) = pool(1);
        let worker = spawn_baker(&sleep, &queued, &closed);
        // A swap rather than a plain store: loom lets a later swap on another
        // thread read past a plain store (a false alarm of the model), and
        // the protocol does not depend on which one it is.
        queued.swap(true, Ordering::Release);
        fence(Ordering::SeqCst);
        sleep.new_work();
        assert!(worker.join().unwrap(), "the job was taken");
    });
}

/// A shutdown racing the baker's fall into sleep always lets it leave.
#[test]
fn shutdown_races_falling_asleep() {
    loom::model(|| {
        let (sleep, queued, closed) = pool(1);
        let worker = spawn_baker(&sleep, &queued, &closed);
        closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        sleep.wake_all();
        assert!(!worker.join().unwrap());
    });
}

/// A latch set while its owner falls asleep on it wakes the owner, in both
/// sleeping modes. The latch is the fork latch's protocol: the owner
/// registers by moving UNSET to SLEEPING, the setter swaps in SET and wakes
/// the owner if it saw SLEEPING.
#[test]
fn latch_races_its_owner_falling_asleep() {
    const UNSET: usize = 0;
    const SLEEPING: usize = 1;
    const SET: usize = 2;
    for mode in [SlotState::Idle, SlotState::Waiting] {
        loom::model(move || {
            let sleep = Arc::new(Bakers::new(1));
            let latch = Arc::new(crate::engine::sync::AtomicUsize::new(UNSET));
            let owner = {
                let (sleep, latch) = (sleep.clone(), latch.clone());
                thread::spawn(move || {
                    if mode == SlotState::Idle {
                        sleep.start_searching();
                    }
                    while latch.load(Ordering::Acquire) != SET {
                        let registered = latch
                            .compare_exchange(UNSET, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
                            .map_or_else(|current| current == SLEEPING, |_| true);
                        if !registered {
                            break;
                        }
                        sleep.sleep(0, mode, || latch.load(Ordering::Acquire) != SET, || false);
                    }
                    if mode == SlotState::Idle {
                        sleep.stop_searching(|| false);
                    }
                })
            };
            if latch.swap(SET, Ordering::AcqRel) == SLEEPING {
                sleep.wake_specific(0);
            }
            owner.join().unwrap();
        });
    }
}

/// Two bakers and two submits: both jobs are taken, whoever sleeps.
#[test]
fn two_submits_two_bakers() {
    loom::model(|| {
        let sleep = Arc::new(Bakers::new(2));
        let jobs = Arc::new(crate::engine::sync::AtomicUsize::new(0));
        let taken = Arc::new(crate::engine::sync::AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|index| {
                let (sleep, jobs, taken, closed) =
                    (sleep.clone(), jobs.clone(), taken.clone(), closed.clone());
                thread::spawn(move || {
                    let take = || {
                        jobs.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                            .is_ok()
                    };
                    sleep.start_searching();
                    loop {
                        if take() {
                            taken.fetch_add(1, Ordering::SeqCst);
                            sleep.stop_searching(|| jobs.load(Ordering::Acquire) > 0);
                            sleep.start_searching();
                            continue;
                        }
                        if closed.load(Ordering::Acquire) {
                            fence(Ordering::SeqCst);
                            if jobs.load(Ordering::Acquire) == 0 {
                                sleep.stop_searching(|| false);
                                return;
                            }
                            continue;
                        }
                        sleep.sleep(
                            index,
                            SlotState::Idle,
                            || !closed.load(Ordering::Acquire),
                            || jobs.load(Ordering::Acquire) > 0,
                        );
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            jobs.fetch_add(1, Ordering::Release);
            fence(Ordering::SeqCst);
            sleep.new_work();
        }
        // Wait for both jobs to be taken before closing: a lost wake-up
        // shows as a deadlock here.
        while taken.load(Ordering::SeqCst) < 2 {
            thread::yield_now();
        }
        closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        sleep.wake_all();
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

/// A submitter skips its wake-up because a baker is searching, and that
/// baker then stops searching without taking the job (the event it waited
/// for happened): it must hand the job over by waking the sleeping baker.
#[test]
fn a_searcher_leaving_hands_the_job_to_a_sleeper() {
    loom::model(|| {
        let (sleep, queued, closed) = pool(2);
        let taken = Arc::new((
            crate::engine::sync::Mutex::new(false),
            crate::engine::sync::Condvar::new(),
        ));
        // Y: an ordinary baker that takes the job or sleeps.
        let sleeper = {
            let (sleep, queued, closed, taken) =
                (sleep.clone(), queued.clone(), closed.clone(), taken.clone());
            thread::spawn(move || {
                if baker(&sleep, &queued, &closed) {
                    *taken.0.lock() = true;
                    taken.1.notify_all();
                }
            })
        };
        // X: a baker searching while it waits for something else; it gives
        // up searching without looking at the queue.
        let leaver = {
            let (sleep, queued) = (sleep.clone(), queued.clone());
            thread::spawn(move || {
                sleep.start_searching();
                sleep.stop_searching(|| queued.load(Ordering::Acquire));
            })
        };
        queued.swap(true, Ordering::Release);
        fence(Ordering::SeqCst);
        sleep.new_work();
        leaver.join().unwrap();
        let mut done = taken.0.lock();
        while !*done {
            taken.1.wait(&mut done);
        }
        drop(done);
        closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        sleep.wake_all();
        sleeper.join().unwrap();
    });
}
