//! Loom models of the whole pool, through the public API: the sleep and
//! wake-up protocol, shutdown racing submission, and the waits of joins.
//!
//! Run with:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom
//! ```
//!
//! Under `--cfg loom` every atomic, lock, condition variable and thread of
//! the crate is loom's, the deques are a lock-based stand-in, and a baker
//! searches only one round before it falls asleep, so loom explores the
//! falling-asleep path at every step.
#![cfg(loom)]

use bakehouse::{Bakery, OrderError};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;

/// An order submitted while the only baker searches, falls asleep, or is
/// woken is never stranded; the handle sees its value; shutting down after
/// it joins the baker.
#[test]
fn submit_races_the_baker_falling_asleep() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let order = bakery.submit(|| 7);
        assert_eq!(order.join().unwrap(), 7);
        bakery.shutdown();
    });
}

/// Two orders from two threads on two bakers: both run exactly once,
/// whichever baker wakes, sleeps or steals. Four threads make this model's
/// space large, so it is explored with at most one preemption (the
/// protocol's two-baker races are modelled in full in `src/engine/sleep`).
#[test]
fn two_submitters_two_bakers() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(1, |bound| bound.min(1)));
    builder.check(|| {
        let bakery = Arc::new(Bakery::new(2));
        let runs = Arc::new(AtomicUsize::new(0));
        let other = {
            let bakery = bakery.clone();
            let runs = runs.clone();
            loom::thread::spawn(move || {
                bakery
                    .submit(move || runs.fetch_add(1, Ordering::SeqCst))
                    .join()
                    .unwrap();
            })
        };
        let mine = {
            let runs = runs.clone();
            bakery.submit(move || runs.fetch_add(1, Ordering::SeqCst))
        };
        mine.join().unwrap();
        other.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    });
}

/// Shutdown racing a submission through another handle: the order either
/// runs (and its handle has the value) or is rejected without running;
/// nothing is lost and the bakers all leave.
#[test]
fn shutdown_races_submit() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let side_door = bakery.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let submitter = {
            let runs = runs.clone();
            loom::thread::spawn(move || {
                let order = side_door.submit(move || runs.fetch_add(1, Ordering::SeqCst));
                order.join()
            })
        };
        bakery.shutdown();
        match submitter.join().unwrap() {
            Ok(_) => assert_eq!(runs.load(Ordering::SeqCst), 1),
            Err(OrderError::Rejected) => assert_eq!(runs.load(Ordering::SeqCst), 0),
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    });
}

/// `try_submit` racing shutdown: the closure is either accepted and run, or
/// handed back unrun.
#[test]
fn try_submit_races_shutdown() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let side_door = bakery.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let submitter = {
            let runs = runs.clone();
            loom::thread::spawn(move || {
                match side_door.try_submit(move || runs.fetch_add(1, Ordering::SeqCst)) {
                    Ok(order) => order.join().is_ok(),
                    Err(refused) => {
                        drop(refused.into_inner());
                        false
                    }
                }
            })
        };
        bakery.shutdown();
        let ran = submitter.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), usize::from(ran));
    });
}

/// A baker joining an order it submitted, on one baker (it runs the order
/// itself) and on two (the other baker may steal it, and the joiner then
/// sleeps until the thief wakes it).
#[test]
fn join_inside_a_baker() {
    for bakers in [1, 2] {
        loom::model(move || {
            let bakery = Arc::new(Bakery::new(bakers));
            let door = bakery.clone();
            let outer = bakery.submit(move || door.submit(|| 5).join().unwrap() + 1);
            assert_eq!(outer.join().unwrap(), 6);
        });
    }
}

/// Fork-join on two bakers: the second half may be stolen, and the forking
/// baker then waits on the fork's latch until the thief sets it.
#[test]
fn fork_join_latch() {
    loom::model(|| {
        let bakery = Bakery::new(2);
        let (a, b) = bakery.join(|| 1, || 2);
        assert_eq!((a, b), (1, 2));
    });
}

/// A join nested under a pending one, on two bakers: its fork is private
/// until the other baker, out of work, asks for work; then the forking
/// baker promotes it onto its deque at its next join, and the asking baker
/// steals it while the owner pops it back or waits for its latch. The
/// second halves must run exactly once each, and the owner must return only
/// once they did. Fails if `PendingForks::pop` reports a promoted fork as
/// unpromoted: the owner then runs `b` inline while it sits on the deque,
/// and returns while the thief may still run it, which loom reports as the
/// thief touching the fork's latch in a frame already gone.
#[test]
fn join_races_its_promotion_and_a_steal() {
    use std::sync::atomic::AtomicUsize as Runs;
    loom::model(|| {
        let bakery = Bakery::new(2);
        let runs = std::sync::Arc::new(Runs::new(0));
        let inner_runs = runs.clone();
        let outer_runs = runs.clone();
        let (inner, outer) = bakery.install(|| {
            bakery.join(
                || {
                    bakery.join(
                        || 1,
                        || {
                            inner_runs.fetch_add(1, Ordering::Relaxed);
                            2
                        },
                    )
                },
                || {
                    outer_runs.fetch_add(1, Ordering::Relaxed);
                    3
                },
            )
        });
        assert_eq!((inner, outer), ((1, 2), 3));
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    });
}

/// `shutdown_now` racing a queued order: the order is cancelled or runs,
/// never both, never neither.
#[test]
fn shutdown_now_races_a_queued_order() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let runs = Arc::new(AtomicUsize::new(0));
        let order = {
            let runs = runs.clone();
            bakery.submit(move || runs.fetch_add(1, Ordering::SeqCst))
        };
        bakery.shutdown_now();
        match order.join() {
            Ok(_) => assert_eq!(runs.load(Ordering::SeqCst), 1),
            Err(OrderError::Cancelled) => assert_eq!(runs.load(Ordering::SeqCst), 0),
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    });
}

/// A scope's last order freeing its block races the scope's caller
/// dropping its own count: the caller returns only after every order ran,
/// and never while the last order still touches the scope's data.
#[test]
fn scope_waits_for_its_last_order() {
    for bakers in [1, 2] {
        loom::model(move || {
            let bakery = Bakery::new(bakers);
            let ran = AtomicUsize::new(0);
            bakery.scope(|s| {
                s.submit(|| ran.fetch_add(1, Ordering::SeqCst));
                s.submit(|| ran.fetch_add(1, Ordering::SeqCst));
            });
            assert_eq!(ran.load(Ordering::SeqCst), 2);
        });
    }
}

/// `shutdown_now` racing an `install` from outside: the carried work cannot
/// be cancelled, so either a baker runs it, or the drain puts it back and,
/// if every baker left meanwhile, runs it itself. The caller always gets
/// its value.
#[test]
fn shutdown_now_races_install() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let side_door = bakery.clone();
        let installer = loom::thread::spawn(move || side_door.install(|| 7));
        bakery.shutdown_now();
        assert_eq!(installer.join().unwrap(), 7);
    });
}

/// A scope opened from outside while the bakery shuts down: every scoped
/// order runs (on a baker, or on the caller once the bakery is closed), and
/// the scope returns.
#[test]
fn scope_races_shutdown() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let side_door = bakery.clone();
        let ran = Arc::new(AtomicUsize::new(0));
        let opener = {
            let ran = ran.clone();
            loom::thread::spawn(move || {
                side_door.scope(|s| {
                    s.submit(|| ran.fetch_add(1, Ordering::SeqCst));
                });
            })
        };
        bakery.shutdown();
        opener.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    });
}

/// An order that blocks (declared) on the only baker, waiting for an order
/// queued behind it: the bakery starts a stand-in, which runs that order,
/// and both finish. Explored with at most one preemption: a third thread
/// starts in the middle of the model.
#[test]
fn blocking_on_the_only_baker_starts_a_stand_in() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(1, |bound| bound.min(1)));
    builder.check(|| {
        let bakery = Bakery::new(1);
        let gate = Arc::new((loom::sync::Mutex::new(false), loom::sync::Condvar::new()));
        let waiting = {
            let gate = gate.clone();
            bakery.submit(move || {
                bakehouse::blocking(|| {
                    let (open, opened) = &*gate;
                    let mut open = open.lock().unwrap();
                    while !*open {
                        open = opened.wait(open).unwrap();
                    }
                })
            })
        };
        let opening = bakery.submit(move || {
            let (open, opened) = &*gate;
            *open.lock().unwrap() = true;
            opened.notify_all();
        });
        opening.join().unwrap();
        waiting.join().unwrap();
        bakery.shutdown();
    });
}

/// A broadcast racing the only baker falling asleep: the baker runs its
/// share exactly once and the caller gets its result. Fails if the baker
/// stops looking at its inbox under its sleep slot's lock (drop
/// `!self.record().has_inbox()` from `keep_sleeping` in `work_until`): it
/// then sleeps through a delivery whose wake-up came just before it slept.
#[test]
fn broadcast_races_the_baker_falling_asleep() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let indices = bakery.broadcast(|baker| baker.index());
        assert_eq!(indices, [0]);
        bakery.shutdown();
    });
}

/// A broadcast racing shutdown: the baker runs its share in its loop or on
/// its way out, or had left before the delivery and is not counted; the
/// caller never waits for ever. Fails if a baker going home stops looking
/// at its inbox before it says it is vacant (`leave_if_inbox_empty`
/// ignoring `has_inbox`): a share delivered just before is never run.
#[test]
fn broadcast_races_shutdown() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let side_door = bakery.clone();
        let broadcaster = loom::thread::spawn(move || side_door.broadcast(|baker| baker.index()));
        bakery.shutdown();
        let indices = broadcaster.join().unwrap();
        assert!(indices == [0] || indices.is_empty(), "{indices:?}");
    });
}

/// Two FIFO orders from outside while the only baker falls asleep: each
/// stand-in runs one order, oldest first, and both handles see their value.
#[test]
fn fifo_orders_race_the_baker_falling_asleep() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let first = bakery.submit_fifo(|| 1);
        let second = bakery.submit_fifo(|| 2);
        assert_eq!(second.join().unwrap(), 2);
        assert_eq!(first.join().unwrap(), 1);
        bakery.shutdown();
    });
}

/// Two shutdowns racing through two handles: both return, whichever of
/// them joins the baker's thread, and the other waits for that join rather
/// than returning early or waiting for ever. Fails if the joiner stops
/// notifying `joined` in `Registry::wait_for_bakers` (a deadlock). That the
/// second call waits for the thread's end (its thread-local destructors) is
/// shown by `every_concurrent_shutdown_returns_only_once_the_threads_are_gone`
/// in `tests/hostile.rs`: loom does not run thread-local destructors.
#[test]
fn two_shutdowns_race() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let other = bakery.clone();
        let closer = loom::thread::spawn(move || other.shutdown());
        bakery.shutdown();
        closer.join().unwrap();
    });
}

/// `wait_idle` returns once the only baker ran the order and ran out of
/// work, however the baker's search and sleep interleave with the waiter's
/// check; the order is counted once.
#[test]
fn wait_idle_wakes_when_the_baker_runs_out_of_work() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        bakery.submit(|| ()).detach();
        bakery.wait_idle();
        let stats = bakery.stats();
        assert_eq!((stats.submitted, stats.completed), (1, 1));
        bakery.shutdown();
    });
}

/// An order set collects both orders of the only baker, each once, while
/// the orders finish and push themselves onto its ready list.
#[test]
fn an_order_set_collects_every_order() {
    loom::model(|| {
        let bakery = Bakery::new(1);
        let mut set = bakehouse::OrderSet::new();
        set.submit(&bakery, || 1);
        set.submit(&bakery, || 2);
        let mut values = [0; 2];
        for value in &mut values {
            *value = set.join_next().unwrap().unwrap();
        }
        values.sort_unstable();
        assert_eq!(values, [1, 2]);
        assert!(set.join_next().is_none());
        bakery.shutdown();
    });
}
