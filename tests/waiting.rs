//! Waiting on orders: joins that never deadlock, cancel, timeouts, futures,
//! detaching, scopes, and shutting down now or with a deadline.

use bakehouse::{Baker, Bakery, JoinTimeoutError, OrderError, TryJoinError};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

/// A bakery whose bakers, when a test blocks them on purpose, stay blocked:
/// no stand-in is started for them (see
/// `BakeryBuilder::blocking_threshold`), so the orders queued behind them
/// are certainly still queued.
fn held(bakers: usize) -> Bakery {
    Bakery::builder()
        .bakers(bakers)
        .blocking_threshold(None)
        .build()
        .unwrap()
}

fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Counts how many values of it were dropped.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Orders that submit and join orders, `depth` levels deep.
fn nest(bakery: &Arc<Bakery>, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    let door = bakery.clone();
    let child = bakery.submit(move || nest(&door, depth - 1));
    child.join().unwrap() + 1
}

#[test]
fn nested_order_joins_on_one_baker_never_deadlock() {
    let bakery = Arc::new(Bakery::new(1));
    let door = bakery.clone();
    let outer = bakery.submit(move || nest(&door, 64));
    assert_eq!(outer.join_timeout(PATIENCE).unwrap(), 64);
}

#[test]
fn nested_order_joins_on_two_bakers_never_deadlock() {
    let bakery = Arc::new(Bakery::new(2));
    for _ in 0..20 {
        let door = bakery.clone();
        let outer = bakery.submit(move || nest(&door, 48));
        assert_eq!(outer.join_timeout(PATIENCE).unwrap(), 48);
    }
}

#[test]
fn a_waiting_baker_runs_other_orders_meanwhile() {
    let bakery = Arc::new(Bakery::new(2));
    let (thief_tx, thief) = mpsc::channel();
    let (stolen_tx, stolen) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let door = bakery.clone();
    let waiter = bakery.submit(move || {
        let me = Baker::current().unwrap().index();
        let blocked = door.submit(move || {
            let index = Baker::current().unwrap().index();
            thief_tx.send(index).unwrap();
            stolen_tx.send(()).unwrap();
            release.recv().unwrap();
        });
        // Hold on until the other baker took it from this baker's deque, so
        // the join below finds it running elsewhere and has to wait.
        stolen.recv().unwrap();
        blocked.join().unwrap();
        me
    });
    let thief = thief.recv_timeout(PATIENCE).unwrap();
    // One baker is blocked inside `blocked`, the other is waiting for it:
    // these orders can only run on the waiting baker, while it waits.
    let others: Vec<_> = (0..10)
        .map(|i| bakery.submit(move || (i, Baker::current().unwrap().index())))
        .collect();
    for (i, order) in others.into_iter().enumerate() {
        let (value, ran_on) = order.join_timeout(PATIENCE).unwrap();
        assert_eq!(value, i);
        assert_ne!(ran_on, thief, "the thief is blocked, so the waiter ran it");
    }
    release_tx.send(()).unwrap();
    assert_ne!(waiter.join().unwrap(), thief);
}

fn chain(bakery: &Bakery, depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let (_, below) = bakery.join(
        || spin(Duration::from_micros(20)),
        || chain(bakery, depth - 1),
    );
    below + 1
}

fn fib(bakery: &Bakery, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = bakery.join(|| fib(bakery, n - 1), || fib(bakery, n - 2));
    a + b
}

#[test]
fn deep_fork_join_chains_finish_on_one_and_two_bakers() {
    // Each fork's second half is the rest of the chain, so on two bakers the
    // halves are stolen back and forth and the waits nest deeper than the
    // depth up to which a waiting baker takes other bakers' work.
    for bakers in [1, 2, 3] {
        let bakery = Bakery::builder()
            .bakers(bakers)
            .stack_size(32 << 20)
            .build()
            .unwrap();
        for _ in 0..5 {
            assert_eq!(chain(&bakery, 300), 300, "{bakers} bakers");
        }
        assert_eq!(fib(&bakery, 22), 17711, "{bakers} bakers");
    }
}

#[test]
fn join_from_another_pools_baker_works_for_both() {
    let here = Arc::new(Bakery::new(1));
    let there = Arc::new(Bakery::new(1));
    let there_door = there.clone();
    let order = here.submit(move || {
        let remote = there_door.submit(|| Baker::current().unwrap().name().to_owned());
        let (a, b) = there_door.join(|| 1, || 2);
        (remote.join().unwrap(), a + b)
    });
    assert_eq!(order.join().unwrap(), ("baker-0".to_owned(), 3));
}

#[test]
fn fork_join_from_outside_and_panics_in_either_half() {
    let bakery = Bakery::new(2);
    let text = String::from("borrowed");
    let (a, b) = bakery.join(|| text.len(), || text.to_uppercase());
    assert_eq!((a, b.as_str()), (8, "BORROWED"));

    let caught = panic::catch_unwind(AssertUnwindSafe(|| bakery.join(|| panic!("left"), || 1)));
    assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "left");
    let caught = panic::catch_unwind(AssertUnwindSafe(|| bakery.join(|| 1, || panic!("right"))));
    assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "right");

    // The same from inside a baker.
    let inside = Arc::new(bakery);
    let door = inside.clone();
    let outcome = inside.submit(move || {
        let left = panic::catch_unwind(AssertUnwindSafe(|| door.join(|| panic!("in left"), || 1)));
        let right =
            panic::catch_unwind(AssertUnwindSafe(|| door.join(|| 1, || panic!("in right"))));
        (left.is_err(), right.is_err(), door.join(|| 2, || 3))
    });
    assert_eq!(outcome.join().unwrap(), (true, true, (2, 3)));
}

/// Runs `leaf` below `depth` nested joins, each with a trivial second half.
fn below_joins(bakery: &Bakery, depth: u32, leaf: &(dyn Fn() -> u32 + Sync)) -> u32 {
    if depth == 0 {
        return leaf();
    }
    let (a, b) = bakery.join(|| below_joins(bakery, depth - 1, leaf), || 1);
    a + b
}

#[test]
fn panics_propagate_from_joins_nested_too_deep_to_be_offered() {
    // On one baker nobody asks for work, so a join below eight others whose
    // second halves are pending is two plain calls: its panics must travel
    // like any join's, and a second half after a panicking first never runs.
    let bakery = Bakery::new(1);
    let ran = AtomicUsize::new(0);
    let left = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.install(|| {
            below_joins(&bakery, 20, &|| {
                bakery
                    .join(
                        || -> u32 { panic!("deep left") },
                        || ran.fetch_add(1, Ordering::SeqCst) as u32,
                    )
                    .1
            })
        })
    }));
    assert_eq!(*left.unwrap_err().downcast::<&str>().unwrap(), "deep left");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the second half never ran");
    let right = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.install(|| {
            below_joins(&bakery, 20, &|| {
                bakery.join(|| 1, || -> u32 { panic!("deep right") }).0
            })
        })
    }));
    assert_eq!(
        *right.unwrap_err().downcast::<&str>().unwrap(),
        "deep right"
    );
    // And the baker's pending forks are whole again afterwards.
    assert_eq!(bakery.install(|| below_joins(&bakery, 20, &|| 1)), 21);
}

#[test]
fn blocking_inside_a_nested_join_offers_its_pending_second_halves() {
    // The inner join's first half waits for its own second half: without
    // `blocking` nobody would be asked to take it, since both are nested
    // below the outer join.
    let bakery = Bakery::new(2);
    let (a, b) = bakery.install(|| {
        bakery.join(
            || {
                let (sent_tx, sent) = mpsc::channel();
                bakery.join(
                    move || {
                        bakehouse::blocking(|| sent.recv_timeout(PATIENCE)).unwrap();
                        1
                    },
                    move || {
                        sent_tx.send(()).unwrap();
                        2
                    },
                )
            },
            || 3,
        )
    });
    assert_eq!((a, b), ((1, 2), 3));
}

#[test]
fn cancel_stops_queued_orders_and_drops_their_closures_at_once() {
    let bakery = held(1);
    let (release_tx, release) = mpsc::channel::<()>();
    let busy = bakery.submit(move || release.recv().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let queued = {
        let token = DropCounter(dropped.clone());
        let ran = ran.clone();
        bakery.submit(move || {
            let _token = token;
            ran.fetch_add(1, Ordering::SeqCst);
        })
    };
    assert!(!queued.is_finished());
    assert!(queued.cancel());
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "closure dropped by cancel"
    );
    assert!(
        queued.cancel(),
        "cancelling twice still says it will never run"
    );
    assert!(queued.is_finished());
    release_tx.send(()).unwrap();
    busy.join().unwrap();
    assert!(matches!(queued.join(), Err(OrderError::Cancelled)));
    bakery.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn cancel_fails_once_an_order_started_or_finished() {
    let bakery = Bakery::new(1);
    let (started_tx, started) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let running = bakery.submit(move || {
        started_tx.send(()).unwrap();
        release.recv().unwrap();
        "done"
    });
    started.recv().unwrap();
    assert!(!running.cancel());
    release_tx.send(()).unwrap();
    let finished = bakery.submit(|| 5);
    while !finished.is_finished() {
        std::thread::yield_now();
    }
    assert!(!finished.cancel());
    assert_eq!(finished.join().unwrap(), 5);
    assert_eq!(running.join().unwrap(), "done");
}

#[test]
fn cancel_races_start_with_exactly_one_outcome() {
    let bakery = Bakery::new(2);
    for _ in 0..2_000 {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let order = bakery.submit(move || flag.store(true, Ordering::SeqCst));
        let cancelled = order.cancel();
        let outcome = order.join();
        if cancelled {
            assert!(matches!(outcome, Err(OrderError::Cancelled)));
            assert!(!ran.load(Ordering::SeqCst), "a cancelled order ran");
        } else {
            assert!(outcome.is_ok());
            assert!(ran.load(Ordering::SeqCst));
        }
    }
}

#[test]
fn try_join_hands_the_order_back_until_it_finishes() {
    let bakery = Bakery::new(1);
    let (release_tx, release) = mpsc::channel::<()>();
    let mut order = bakery.submit(move || {
        release.recv().unwrap();
        "bagel"
    });
    for _ in 0..3 {
        order = match order.try_join() {
            Err(TryJoinError::NotFinished(order)) => order,
            other => panic!("finished too early: {other:?}"),
        };
    }
    release_tx.send(()).unwrap();
    let value = loop {
        match order.try_join() {
            Ok(value) => break value,
            Err(TryJoinError::NotFinished(again)) => {
                order = again;
                // Polite polling: leave the core to the baker.
                std::thread::yield_now();
            }
            Err(TryJoinError::Failed(error)) => panic!("{error}"),
        }
    };
    assert_eq!(value, "bagel");
    let failed = bakery.submit(|| panic!("no"));
    while !failed.is_finished() {
        std::thread::yield_now();
    }
    assert!(matches!(
        failed.try_join(),
        Err(TryJoinError::Failed(OrderError::Panicked(_)))
    ));
}

#[test]
fn join_timeout_gives_the_handle_back_and_never_runs_the_order_itself() {
    let bakery = Arc::new(Bakery::new(1));
    let (release_tx, release) = mpsc::channel::<()>();
    let slow = bakery.submit(move || release.recv().unwrap());
    let slow = match slow.join_timeout(Duration::from_millis(20)) {
        Err(JoinTimeoutError::Timeout(order)) => order,
        other => panic!("expected a timeout: {other:?}"),
    };
    assert_eq!(
        format!("{}", JoinTimeoutError::Timeout(())),
        "timed out waiting for the order"
    );
    // On the only baker, a queued order is not run by a bounded wait on
    // that baker: the wait blocks, and a stand-in runs the order.
    let door = bakery.clone();
    let checker = bakery.submit(move || {
        let me = std::thread::current().id();
        let queued = door.submit(|| std::thread::current().id());
        let ran_on = queued.join_timeout(PATIENCE).unwrap();
        ran_on != me
    });
    release_tx.send(()).unwrap();
    slow.join_timeout(PATIENCE).unwrap();
    assert!(checker.join().unwrap(), "run by another baker");
    let failed = bakery.submit(|| panic!("late"));
    assert!(matches!(
        failed.join_timeout(PATIENCE),
        Err(JoinTimeoutError::Failed(OrderError::Panicked(_)))
    ));
    let huge = bakery.submit(|| 1);
    assert_eq!(huge.join_timeout(Duration::MAX).unwrap(), 1);
}

#[test]
fn orders_are_futures_for_any_executor() {
    let bakery = Bakery::new(2);
    assert_eq!(pollster::block_on(bakery.submit(|| 6 * 7)).unwrap(), 42);
    let failed = pollster::block_on(bakery.submit(|| panic!("async burn")));
    assert_eq!(
        failed.unwrap_err().to_string(),
        "order panicked: async burn"
    );
    let local = [1, 2, 3];
    let scoped = bakery.scope(|s| pollster::block_on(s.submit(|| local.iter().sum::<i32>())));
    assert_eq!(scoped.unwrap(), 6);
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_pending_future_is_woken_when_the_order_finishes() {
    let bakery = Bakery::new(1);
    let (release_tx, release) = mpsc::channel::<()>();
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut order = pin!(bakery.submit(move || {
        release.recv().unwrap();
        "proofed"
    }));
    assert!(order.as_mut().poll(&mut cx).is_pending());
    assert!(
        order.as_mut().poll(&mut cx).is_pending(),
        "polling again is fine"
    );
    release_tx.send(()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while counter.0.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "never woken");
        std::thread::yield_now();
    }
    assert!(matches!(
        order.as_mut().poll(&mut cx),
        Poll::Ready(Ok("proofed"))
    ));
}

#[test]
fn a_cancelled_future_is_woken_and_reports_it() {
    let bakery = held(1);
    let (release_tx, release) = mpsc::channel::<()>();
    let busy = bakery.submit(move || release.recv().unwrap());
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut order = pin!(bakery.submit(|| 1));
    assert!(order.as_mut().poll(&mut cx).is_pending());
    assert!(order.cancel());
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    assert!(matches!(
        order.as_mut().poll(&mut cx),
        Poll::Ready(Err(OrderError::Cancelled))
    ));
    release_tx.send(()).unwrap();
    busy.join().unwrap();
}

#[test]
fn dropping_a_handle_detaches_the_order_which_still_runs() {
    let bakery = Bakery::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    for i in 0..1_000 {
        let ran = ran.clone();
        let dropped = dropped.clone();
        let order = bakery.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            DropCounter(dropped)
        });
        // Drop some handles at once, some after they may have finished.
        if i % 3 == 0 {
            std::thread::yield_now();
        }
        drop(order);
    }
    bakery.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 1_000);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1_000,
        "every result dropped once"
    );
}

#[test]
fn join_racing_finish_always_sees_the_value() {
    let bakery = Bakery::new(2);
    // Fewer under valgrind (`BAKERY_STRESS_SCALE` below 1), where every
    // round trip is a string of thread switches.
    let scale: f64 = std::env::var("BAKERY_STRESS_SCALE")
        .ok()
        .and_then(|scale| scale.parse().ok())
        .unwrap_or(1.0);
    let rounds = ((20_000.0 * scale.min(1.0)) as u32).max(1_000);
    for i in 0..rounds {
        assert_eq!(bakery.submit(move || i).join().unwrap(), i);
    }
}

#[test]
fn a_scope_waits_for_every_order_and_lets_them_borrow() {
    let bakery = Bakery::new(2);
    let mut shelves = vec![0u64; 64];
    let label = String::from("rye");
    bakery.scope(|s| {
        for (i, shelf) in shelves.iter_mut().enumerate() {
            let label = &label;
            s.submit(move || {
                spin(Duration::from_micros(50));
                *shelf = i as u64 * label.len() as u64;
            });
        }
    });
    let expected: Vec<u64> = (0..64).map(|i| i * 3).collect();
    assert_eq!(shelves, expected);
}

#[test]
fn an_unjoined_scoped_panic_is_raised_after_the_others_finish() {
    let bakery = Bakery::new(2);
    let finished = AtomicUsize::new(0);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.scope(|s| {
            s.submit(|| panic!("scoped burn"));
            for _ in 0..10 {
                s.submit(|| {
                    spin(Duration::from_millis(2));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    assert_eq!(
        *caught.unwrap_err().downcast::<&str>().unwrap(),
        "scoped burn"
    );
    assert_eq!(finished.load(Ordering::SeqCst), 10);
}

#[test]
fn a_joined_scoped_panic_is_the_joiners_and_not_raised_again() {
    let bakery = Bakery::new(2);
    let message = bakery.scope(|s| {
        let burnt = s.submit(|| panic!("seen"));
        burnt
            .join()
            .unwrap_err()
            .into_panic()
            .unwrap()
            .message()
            .to_owned()
    });
    assert_eq!(message, "seen");
}

#[test]
fn a_panicking_scope_body_waits_for_its_orders_then_unwinds() {
    let bakery = Bakery::new(2);
    let finished = AtomicUsize::new(0);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.scope(|s| {
            for _ in 0..8 {
                s.submit(|| {
                    spin(Duration::from_millis(2));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("body burn");
        })
    }));
    assert_eq!(
        *caught.unwrap_err().downcast::<&str>().unwrap(),
        "body burn"
    );
    assert_eq!(finished.load(Ordering::SeqCst), 8);
}

#[test]
fn scopes_nest_and_work_from_inside_a_baker() {
    let bakery = Arc::new(Bakery::new(2));
    let door = bakery.clone();
    let total = bakery.submit(move || {
        let numbers: Vec<u64> = (1..=100).collect();
        let mut sums = [0u64; 4];
        door.scope(|outer| {
            for (chunk, sum) in numbers.chunks(25).zip(sums.iter_mut()) {
                outer.submit(|| {
                    door.scope(|inner| {
                        let halves: Vec<_> = chunk
                            .chunks(13)
                            .map(|half| inner.submit(move || half.iter().sum::<u64>()))
                            .collect();
                        *sum = halves.into_iter().map(|h| h.join().unwrap()).sum();
                    });
                });
            }
        });
        sums.iter().sum::<u64>()
    });
    assert_eq!(total.join().unwrap(), 5050);
}

#[test]
fn scoped_handles_cancel_and_wait_with_timeouts() {
    let bakery = held(1);
    let (release_tx, release) = mpsc::channel::<()>();
    let ran = AtomicBool::new(false);
    bakery.scope(|s| {
        let busy = s.submit(move || release.recv().unwrap());
        let queued = s.submit(|| ran.store(true, Ordering::SeqCst));
        assert!(queued.cancel());
        let busy = match busy.join_timeout(Duration::from_millis(5)) {
            Err(JoinTimeoutError::Timeout(busy)) => busy,
            other => panic!("{other:?}"),
        };
        let busy = busy.try_join().unwrap_err().into_order().unwrap();
        release_tx.send(()).unwrap();
        busy.join().unwrap();
        assert!(queued.join().unwrap_err().is_cancelled());
    });
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn shutdown_now_cancels_queued_orders_and_waits_for_running_ones() {
    let bakery = held(1);
    let (started_tx, started) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let running = bakery.submit(move || {
        started_tx.send(()).unwrap();
        release.recv().unwrap();
        "finished"
    });
    let dropped = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..20)
        .map(|_| {
            let token = DropCounter(dropped.clone());
            bakery.submit(move || drop(token))
        })
        .collect();
    started.recv().unwrap();
    let closer = std::thread::spawn(move || bakery.shutdown_now());
    for order in queued {
        assert!(matches!(
            order.join_timeout(PATIENCE),
            Err(JoinTimeoutError::Failed(OrderError::Cancelled))
        ));
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 20);
    assert!(!closer.is_finished(), "it waits for the running order");
    release_tx.send(()).unwrap();
    closer.join().unwrap();
    assert_eq!(running.join().unwrap(), "finished");
}

#[test]
fn shutdown_timeout_reports_what_did_not_finish() {
    let bakery = held(2);
    let gate = Arc::new(Barrier::new(3));
    let (release_tx, release) = mpsc::channel::<()>();
    let release = Arc::new(std::sync::Mutex::new(release));
    let blocked: Vec<_> = (0..2)
        .map(|_| {
            let gate = gate.clone();
            let release = release.clone();
            bakery.submit(move || {
                gate.wait();
                release.lock().unwrap().recv().unwrap();
            })
        })
        .collect();
    gate.wait();
    let queued: Vec<_> = (0..5).map(|i| bakery.submit(move || i)).collect();
    let report = bakery
        .shutdown_timeout(Duration::from_millis(30))
        .unwrap_err();
    assert_eq!(report.busy_bakers(), 2);
    assert_eq!(report.queued_orders(), 5);
    assert_eq!(
        report.to_string(),
        "shutdown timed out with 2 bakers still at work and 5 orders queued"
    );
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    for order in blocked {
        order.join_timeout(PATIENCE).unwrap();
    }
    for (i, order) in queued.into_iter().enumerate() {
        assert_eq!(
            order.join_timeout(PATIENCE).unwrap(),
            i,
            "still run after the timeout"
        );
    }
}

#[test]
fn install_runs_on_a_baker_and_borrows() {
    let bakery = Bakery::new(2);
    let mut numbers = vec![9, 4, 7, 1];
    let ran_on = bakery.install(|| {
        numbers.sort();
        Baker::current().map(|baker| baker.index())
    });
    assert_eq!(numbers, [1, 4, 7, 9]);
    assert!(ran_on.is_some());
    // Nested: on a baker, `install` runs right there.
    let same = bakery.install(|| {
        let outer = Baker::current().unwrap().index();
        let inner = bakery.install(|| Baker::current().unwrap().index());
        outer == inner
    });
    assert!(same);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| bakery.install(|| panic!("installed"))));
    assert_eq!(
        *caught.unwrap_err().downcast::<&str>().unwrap(),
        "installed"
    );
    // After a shutdown, the caller runs it.
    let side_door = bakery.clone();
    bakery.shutdown();
    assert_eq!(side_door.install(|| 5), 5);
}

#[test]
fn joining_an_order_running_beneath_on_the_same_baker_panics_instead_of_hanging() {
    let bakery = Arc::new(Bakery::new(2));
    let (waiting_tx, waiting) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let (blocked_tx, blocked) = mpsc::channel();
    // X blocks one baker.
    let x = bakery.submit(move || {
        blocked_tx.send(()).unwrap();
        release.recv().unwrap();
    });
    blocked.recv().unwrap();
    // A, on the other baker, waits for X; while it waits, its baker takes C.
    let a = bakery.submit(move || {
        waiting_tx.send(()).unwrap();
        x.join().unwrap();
        "a"
    });
    waiting.recv().unwrap();
    // C joins A: A runs beneath C on the same baker, so C could never go on.
    let c = bakery.submit(move || a.join());
    let error = c.join_timeout(PATIENCE).unwrap_err();
    match error {
        JoinTimeoutError::Failed(OrderError::Panicked(panic)) => {
            assert!(
                panic
                    .message()
                    .starts_with("joining this order would deadlock"),
                "{}",
                panic.message()
            );
        }
        other => panic!("expected the deadlock to be refused: {other:?}"),
    }
    release_tx.send(()).unwrap();
}

#[test]
fn a_scope_on_a_closed_bakery_runs_its_orders_on_the_caller() {
    let bakery = Bakery::new(2);
    let side_door = bakery.clone();
    bakery.shutdown();
    let mut done = [false; 4];
    side_door.scope(|s| {
        for flag in done.iter_mut() {
            s.submit(move || {
                assert!(Baker::current().is_none(), "no baker is left");
                *flag = true;
            });
        }
        assert_eq!(s.submit(|| 6).join().unwrap(), 6);
    });
    assert_eq!(done, [true; 4]);
}

#[test]
fn orders_submitted_by_bakers_while_the_bakery_shuts_down_still_run() {
    let bakery = Bakery::new(2);
    let door = bakery.clone();
    let (go_tx, go) = mpsc::channel::<()>();
    let parent = bakery.submit(move || {
        go.recv().unwrap();
        // The bakery is closing now; work in progress may still make work.
        assert!(door.is_closed());
        let children: Vec<_> = (0..10).map(|i| door.submit(move || i * 2)).collect();
        children.into_iter().map(|c| c.join().unwrap()).sum::<i32>()
    });
    let closer = bakery.clone();
    let shutdown = std::thread::spawn(move || closer.shutdown());
    while !bakery.is_closed() {
        std::thread::yield_now();
    }
    go_tx.send(()).unwrap();
    assert_eq!(parent.join().unwrap(), 90);
    shutdown.join().unwrap();
}
