//! `broadcast`, FIFO orders, the global bakery and the free functions, used
//! as a hostile user would: racing resizes and shutdowns, from hooks, nested
//! in each other, cancelled, panicking. Every case must end with one outcome
//! per order, each broadcast share run once by the baker it names, no hang
//! and no abort.

use bakehouse::{Baker, Bakery, OrderError, Yield};
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough that only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `body` on a thread of its own and fails the test if it does not
/// finish within [`PATIENCE`], so a hang is a failure rather than a stuck run.
fn within<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(body));
        let _ = tx.send(());
        outcome
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(()) => match runner.join().unwrap() {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        },
        Err(_) => panic!("hung: still running after {PATIENCE:?}"),
    }
}

/// Waits until `done` says so, or gives up after a while: for steps that
/// only a bug would make happen, or that happen at once when all is well.
fn wait_a_while(done: impl Fn() -> bool) -> bool {
    let give_up = Instant::now() + Duration::from_millis(500);
    while !done() {
        if Instant::now() >= give_up {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// A bakery whose bakers block without the monitor starting stand-ins.
fn unmonitored(bakers: usize) -> Bakery {
    Bakery::builder()
        .bakers(bakers)
        .blocking_threshold(None)
        .build()
        .unwrap()
}

/// Occupies one baker of `bakery` until the returned sender sends (or is
/// dropped); returns once the order runs, with the baker's index.
fn occupy(bakery: &Bakery) -> (mpsc::Sender<()>, usize, bakehouse::Order<()>) {
    let (release, released) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let order = bakery.submit(move || {
        started_tx.send(Baker::current().unwrap().index()).unwrap();
        let _ = released.recv_timeout(PATIENCE);
    });
    let index = started.recv_timeout(PATIENCE).unwrap();
    (release, index, order)
}

/// Whether `indices` are strictly increasing (each baker once, in order).
fn strictly_increasing(indices: &[usize]) -> bool {
    indices.windows(2).all(|pair| pair[0] < pair[1])
}

/// A panic payload whose destructor panics again.
struct Bomb(usize);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb {} went off while being dropped", self.0);
    }
}

/// The number of a caught [`Bomb`], taken out of its box (which is freed)
/// and forgotten, so that it cannot go off here.
fn defuse(payload: Box<dyn Any + Send>) -> usize {
    let bomb: Bomb = *payload.downcast::<Bomb>().expect("a bomb");
    let number = bomb.0;
    std::mem::forget(bomb);
    number
}

// ---------------------------------------------------------------------------
// broadcast: each share on the baker it names
// ---------------------------------------------------------------------------

/// Called from one baker while a colleague is busy, `broadcast` must wait
/// for that colleague to run its own share: the closure is given baker
/// `i`, so it must run on baker `i`.
#[test]
fn broadcast_from_a_baker_leaves_a_busy_colleagues_share_to_that_colleague() {
    let shares = within(|| {
        let bakery = unmonitored(2);
        let (release, _busy_index, busy) = occupy(&bakery);
        let ran = Arc::new(AtomicUsize::new(0));
        let caller = {
            let bakery2 = bakery.clone();
            let ran = ran.clone();
            bakery.submit(move || {
                bakery2.broadcast(|baker| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    (baker.index(), Baker::current().map(|me| me.index()))
                })
            })
        };
        // With the colleague's share run where it belongs, only the caller's
        // share can run before the colleague is released.
        wait_a_while(|| ran.load(Ordering::SeqCst) == 2);
        release.send(()).unwrap();
        busy.join().unwrap();
        caller.join().unwrap()
    });
    for (index, ran_on) in &shares {
        assert_eq!(
            *ran_on,
            Some(*index),
            "the share of baker {index} ran on {ran_on:?}: {shares:?}"
        );
    }
    assert_eq!(shares.len(), 2);
}

/// A baker that goes home (here, retiring after `set_bakers` shrank the
/// bakery) while a broadcast's share waits in its inbox runs it on its way
/// out: still as that baker, so the closure sees `Baker::current()`.
#[test]
fn a_retiring_baker_runs_its_broadcast_share_as_itself() {
    let shares = within(|| {
        let (in_hook_tx, in_hook) = mpsc::channel::<usize>();
        let (release_tx, release) = mpsc::channel::<()>();
        let first = AtomicBool::new(true);
        let hook = Mutex::new((in_hook_tx, release));
        let bakery = Bakery::builder()
            .bakers(2)
            .on_baker_stop(move |index| {
                if first.swap(false, Ordering::SeqCst) {
                    let hook = hook.lock().unwrap();
                    hook.0.send(index).unwrap();
                    let _ = hook.1.recv_timeout(PATIENCE);
                }
            })
            .build()
            .unwrap();
        bakery.set_bakers(1).unwrap();
        let retiring = in_hook.recv_timeout(PATIENCE).unwrap();
        let delivered = Arc::new(AtomicBool::new(false));
        let broadcaster = {
            let bakery = bakery.clone();
            let delivered = delivered.clone();
            thread::spawn(move || {
                bakery.broadcast(|baker| {
                    if baker.index() != retiring {
                        // The delivery holds the staff lock, which this
                        // takes: every share is delivered once it returns.
                        let _ = bakery.bakers();
                        delivered.store(true, Ordering::SeqCst);
                    }
                    (baker.index(), Baker::current().map(|me| me.index()))
                })
            })
        };
        assert!(
            wait_a_while(|| delivered.load(Ordering::SeqCst)),
            "the staying baker never ran its share"
        );
        release_tx.send(()).unwrap();
        broadcaster.join().unwrap()
    });
    assert_eq!(shares.len(), 2, "{shares:?}");
    for (index, ran_on) in &shares {
        assert_eq!(
            *ran_on,
            Some(*index),
            "the share of baker {index} ran off any baker: {shares:?}"
        );
    }
}

/// Waits until `count` reaches `all`, for a while: a barrier that gives up,
/// so that a share that never comes is a failure rather than a hang.
fn meet(count: &AtomicUsize, all: usize) -> bool {
    count.fetch_add(1, Ordering::SeqCst);
    let give_up = Instant::now() + Duration::from_secs(2);
    while count.load(Ordering::SeqCst) < all {
        if Instant::now() >= give_up {
            return false;
        }
        thread::yield_now();
    }
    true
}

/// Every baker runs its share, so the shares of a broadcast from a baker
/// may wait for each other (with a `Barrier`, this would hang for good if a
/// share ran on the wrong baker).
#[test]
fn broadcast_from_a_baker_lets_every_share_meet_the_others() {
    let met = within(|| {
        let bakery = Bakery::new(2);
        let outer = bakery.broadcast(|baker| {
            if baker.index() == 0 {
                // Busy for a moment, as bakers are: its inner share waits.
                thread::sleep(Duration::from_millis(50));
                return None;
            }
            let arrived = AtomicUsize::new(0);
            Some(bakery.broadcast(|_| meet(&arrived, 2)))
        });
        outer.into_iter().flatten().next().unwrap()
    });
    assert_eq!(
        met,
        [true, true],
        "a share waited for a colleague that never came"
    );
}

/// A stand-in that goes home after its keep-alive is no longer on duty; a
/// `set_bakers` that shrinks the bakery meanwhile must not count it off a
/// second time, or a baker it should have sent home stays for good.
#[test]
fn shrinking_while_a_stand_in_goes_home_sends_the_right_number_home() {
    let shares = within(|| {
        let (in_hook_tx, in_hook) = mpsc::channel::<usize>();
        let (release_tx, release) = mpsc::channel::<()>();
        let first = AtomicBool::new(true);
        let hook = Mutex::new((in_hook_tx, release));
        let bakery = Bakery::builder()
            .bakers(2)
            .max_bakers(4)
            .keep_alive(Duration::from_millis(1))
            .blocking_threshold(None)
            .on_baker_stop(move |index| {
                if first.swap(false, Ordering::SeqCst) {
                    let hook = hook.lock().unwrap();
                    hook.0.send(index).unwrap();
                    let _ = hook.1.recv_timeout(PATIENCE);
                }
            })
            .build()
            .unwrap();
        // A baker blocks: a stand-in starts (index 2). Once the blocker is
        // back, the stand-in is surplus and goes home after its keep-alive,
        // held in its stop hook.
        let (unblock, unblocked) = mpsc::channel::<()>();
        let (blocking_tx, blocking) = mpsc::channel::<()>();
        let blocker = bakery.submit(move || {
            bakehouse::blocking(|| {
                blocking_tx.send(()).unwrap();
                let _ = unblocked.recv_timeout(PATIENCE);
            })
        });
        blocking.recv_timeout(PATIENCE).unwrap();
        unblock.send(()).unwrap();
        blocker.join().unwrap();
        let leaving = in_hook.recv_timeout(PATIENCE).unwrap();
        assert_eq!(leaving, 2, "the stand-in went home");
        // Both configured bakers busy, the leaving stand-in in its hook.
        let (release_a, _, busy_a) = occupy(&bakery);
        let (release_b, _, busy_b) = occupy(&bakery);
        bakery.set_bakers(1).unwrap();
        release_tx.send(()).unwrap();
        release_a.send(()).unwrap();
        release_b.send(()).unwrap();
        busy_a.join().unwrap();
        busy_b.join().unwrap();
        // One of the two configured bakers was asked to go home after its
        // order: wait for it.
        let mut shares = bakery.broadcast(|baker| baker.index());
        let give_up = Instant::now() + Duration::from_secs(2);
        while shares.len() > 1 && Instant::now() < give_up {
            thread::sleep(Duration::from_millis(5));
            shares = bakery.broadcast(|baker| baker.index());
        }
        (bakery.bakers(), shares)
    });
    assert_eq!(shares.0, 1);
    assert_eq!(shares.1.len(), 1, "bakers still there: {:?}", shares.1);
}

#[test]
fn broadcast_while_set_bakers_grows_and_shrinks() {
    within(|| {
        let bakery = Bakery::builder().bakers(2).max_bakers(6).build().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let resizer = {
            let bakery = bakery.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::SeqCst) {
                    bakery.set_bakers([4, 1, 3, 2, 5][round % 5]).unwrap();
                    round += 1;
                    thread::yield_now();
                }
            })
        };
        for _ in 0..40 {
            let indices = bakery.broadcast(|baker| baker.index());
            assert!(!indices.is_empty());
            assert!(strictly_increasing(&indices), "{indices:?}");
        }
        stop.store(true, Ordering::SeqCst);
        resizer.join().unwrap();
        bakery.set_bakers(3).unwrap();
        let count = AtomicUsize::new(0);
        let indices = bakery.broadcast(|baker| {
            count.fetch_add(1, Ordering::SeqCst);
            baker.index()
        });
        assert_eq!(count.into_inner(), indices.len());
        assert!(indices.len() >= 3, "{indices:?}");
    });
}

/// How a racing closer shuts the bakery down.
#[derive(Clone, Copy)]
enum Close {
    Shutdown,
    Now,
    Timeout,
}

fn broadcast_racing(close: Close) {
    within(move || {
        for _ in 0..12 {
            let bakery = Bakery::new(3);
            let barrier = Arc::new(Barrier::new(2));
            let closer = {
                let bakery = bakery.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    match close {
                        Close::Shutdown => bakery.shutdown(),
                        Close::Now => bakery.shutdown_now(),
                        Close::Timeout => {
                            let _ = bakery.shutdown_timeout(Duration::ZERO);
                        }
                    }
                })
            };
            barrier.wait();
            let runs = AtomicUsize::new(0);
            let indices = bakery.broadcast(|baker| {
                runs.fetch_add(1, Ordering::SeqCst);
                baker.index()
            });
            assert!(indices.len() <= 3, "{indices:?}");
            assert!(strictly_increasing(&indices), "{indices:?}");
            assert_eq!(runs.into_inner(), indices.len());
            closer.join().unwrap();
        }
    });
}

#[test]
fn broadcast_racing_shutdown() {
    broadcast_racing(Close::Shutdown);
}

#[test]
fn broadcast_racing_shutdown_now() {
    broadcast_racing(Close::Now);
}

#[test]
fn broadcast_racing_shutdown_timeout() {
    broadcast_racing(Close::Timeout);
}

#[test]
fn broadcast_after_shutdown_is_empty() {
    within(|| {
        let bakery = Bakery::new(2);
        bakery.clone().shutdown();
        assert!(bakery.broadcast(|baker| baker.index()).is_empty());
    });
}

#[test]
fn broadcast_inside_a_broadcast_reaches_every_baker_from_every_baker() {
    within(|| {
        let bakery = Bakery::new(3);
        let count = AtomicUsize::new(0);
        let inner_lengths = bakery.broadcast(|_| {
            bakery
                .broadcast(|_| count.fetch_add(1, Ordering::SeqCst))
                .len()
        });
        assert_eq!(inner_lengths, [3, 3, 3]);
        assert_eq!(count.into_inner(), 9);
    });
}

#[test]
fn broadcast_from_the_stop_hook_while_shutting_down() {
    within(|| {
        let slot: Arc<Mutex<Option<Bakery>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let hook_slot = slot.clone();
        let bakery = Bakery::builder()
            .bakers(3)
            .on_baker_stop(move |index| {
                let bakery = hook_slot.lock().unwrap().clone();
                if let Some(bakery) = bakery {
                    let indices = bakery.broadcast(|baker| baker.index());
                    tx.lock().unwrap().send((index, indices)).unwrap();
                }
            })
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(bakery.clone());
        bakery.shutdown();
        slot.lock().unwrap().take();
        let reports: Vec<(usize, Vec<usize>)> = rx.try_iter().collect();
        assert_eq!(reports.len(), 3);
        for (index, indices) in reports {
            assert!(strictly_increasing(&indices), "{indices:?}");
            assert!(
                indices.contains(&index),
                "baker {index}, still present, was left out: {indices:?}"
            );
        }
    });
}

#[test]
fn broadcast_from_the_start_hook_of_bakers_added_later() {
    within(|| {
        let slot: Arc<Mutex<Option<Bakery>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let hook_slot = slot.clone();
        let bakery = Bakery::builder()
            .bakers(1)
            .max_bakers(4)
            .on_baker_start(move |index| {
                let bakery = hook_slot.lock().unwrap().clone();
                // Baker 0's hook may run late: only the bakers added later.
                if let Some(bakery) = bakery.filter(|_| index > 0) {
                    let indices = bakery.broadcast(|baker| baker.index());
                    tx.lock().unwrap().send((index, indices)).unwrap();
                }
            })
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(bakery.clone());
        bakery.set_bakers(3).unwrap();
        let mut started = Vec::new();
        for _ in 0..2 {
            let (index, indices) = rx.recv_timeout(PATIENCE).unwrap();
            assert!(strictly_increasing(&indices), "{indices:?}");
            assert!(
                indices.contains(&0) && indices.contains(&index),
                "{indices:?}"
            );
            started.push(index);
        }
        started.sort_unstable();
        assert_eq!(started, [1, 2]);
        slot.lock().unwrap().take();
    });
}

#[test]
fn broadcast_closure_may_block_join_and_open_scopes() {
    within(|| {
        let bakery = Bakery::new(3);
        let totals = bakery.broadcast(|_| {
            let blocked = bakehouse::blocking(|| 1);
            let (a, b) = bakehouse::join(|| 2, || 3);
            let scoped = bakery.scope(|s| {
                let order = s.submit(|| 4);
                let fifo = s.submit_fifo(|| 5);
                order.join().unwrap() + fifo.join().unwrap()
            });
            blocked + a + b + scoped
        });
        assert_eq!(totals, [15, 15, 15]);
    });
}

#[test]
fn broadcast_panicking_with_bombs_on_every_baker_reports_the_first_and_aborts_nothing() {
    within(|| {
        let bakery = Bakery::new(3);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            bakery.broadcast(|baker| -> usize { panic::panic_any(Bomb(baker.index())) })
        }))
        .unwrap_err();
        assert_eq!(defuse(caught), 0, "the first panic in index order");
        // From a baker too: its own share and its colleagues' explode.
        let caught = bakery
            .submit({
                let bakery = bakery.clone();
                move || {
                    panic::catch_unwind(AssertUnwindSafe(|| {
                        bakery.broadcast(|baker| -> usize { panic::panic_any(Bomb(baker.index())) })
                    }))
                    .map_err(defuse)
                }
            })
            .join()
            .unwrap();
        assert_eq!(caught, Err(0));
        assert_eq!(bakery.broadcast(|baker| baker.index()), [0, 1, 2]);
    });
}

#[test]
fn broadcast_while_stand_ins_come_and_go() {
    within(|| {
        let bakery = Bakery::builder()
            .bakers(1)
            .max_bakers(4)
            .keep_alive(Duration::from_millis(1))
            .build()
            .unwrap();
        for _ in 0..20 {
            let blockers: Vec<_> = (0..2)
                .map(|_| {
                    bakery
                        .submit(|| bakehouse::blocking(|| thread::sleep(Duration::from_millis(2))))
                })
                .collect();
            let runs = AtomicUsize::new(0);
            let indices = bakery.broadcast(|baker| {
                runs.fetch_add(1, Ordering::SeqCst);
                baker.index()
            });
            assert!(strictly_increasing(&indices), "{indices:?}");
            assert!(indices.contains(&0), "{indices:?}");
            assert_eq!(runs.into_inner(), indices.len());
            for blocker in blockers {
                blocker.join().unwrap();
            }
        }
    });
}

// ---------------------------------------------------------------------------
// FIFO orders
// ---------------------------------------------------------------------------

/// `shutdown_now` cancels every queued order at once, so its handle reports
/// `Cancelled` even while every baker is busy. A FIFO order queued behind a
/// scoped FIFO order (which `shutdown_now` lets run) must be no exception.
#[test]
fn shutdown_now_cancels_at_once_a_fifo_order_queued_behind_a_scoped_one() {
    let (cancelled_at_once, outcome) = within(|| {
        let bakery = unmonitored(1);
        let (release, _, busy) = occupy(&bakery);
        let (queued_tx, queued) = mpsc::channel();
        let scope_thread = {
            let bakery = bakery.clone();
            thread::spawn(move || {
                bakery.scope(|s| {
                    s.submit_fifo(|| "scoped");
                    queued_tx.send(()).unwrap();
                })
            })
        };
        queued.recv_timeout(PATIENCE).unwrap();
        let plain = bakery.submit_fifo(|| "plain");
        let closer = thread::spawn(move || bakery.shutdown_now());
        let cancelled_at_once = wait_a_while(|| plain.is_finished());
        release.send(()).unwrap();
        closer.join().unwrap();
        scope_thread.join().unwrap();
        busy.join().unwrap();
        (cancelled_at_once, plain.join())
    });
    assert!(matches!(outcome, Err(OrderError::Cancelled)), "{outcome:?}");
    assert!(
        cancelled_at_once,
        "the FIFO order stayed pending until the busy baker came back"
    );
}

/// The same with ordinary orders, which the sweep cancels at once.
#[test]
fn shutdown_now_cancels_at_once_an_order_queued_behind_a_scoped_one() {
    let (cancelled_at_once, outcome) = within(|| {
        let bakery = unmonitored(1);
        let (release, _, busy) = occupy(&bakery);
        let (queued_tx, queued) = mpsc::channel();
        let scope_thread = {
            let bakery = bakery.clone();
            thread::spawn(move || {
                bakery.scope(|s| {
                    s.submit(|| "scoped");
                    queued_tx.send(()).unwrap();
                })
            })
        };
        queued.recv_timeout(PATIENCE).unwrap();
        let plain = bakery.submit(|| "plain");
        let closer = thread::spawn(move || bakery.shutdown_now());
        let cancelled_at_once = wait_a_while(|| plain.is_finished());
        release.send(()).unwrap();
        closer.join().unwrap();
        scope_thread.join().unwrap();
        busy.join().unwrap();
        (cancelled_at_once, plain.join())
    });
    assert!(matches!(outcome, Err(OrderError::Cancelled)), "{outcome:?}");
    assert!(cancelled_at_once);
}

#[test]
fn fifo_orders_cancelled_before_running_leave_the_others_in_order() {
    within(|| {
        let bakery = unmonitored(1);
        let (release, _, busy) = occupy(&bakery);
        let log = Arc::new(Mutex::new(Vec::new()));
        let orders: Vec<_> = (0..6)
            .map(|i| {
                let log = log.clone();
                bakery.submit_fifo(move || {
                    log.lock().unwrap().push(i);
                    i
                })
            })
            .collect();
        assert!(orders[1].cancel());
        assert!(orders[4].cancel());
        assert!(orders[4].cancel(), "cancelling twice says cancelled again");
        release.send(()).unwrap();
        busy.join().unwrap();
        let outcomes: Vec<_> = orders.into_iter().map(|order| order.join()).collect();
        for (i, outcome) in outcomes.iter().enumerate() {
            match i {
                1 | 4 => assert!(matches!(outcome, Err(OrderError::Cancelled)), "{outcome:?}"),
                _ => assert_eq!(outcome.as_ref().ok(), Some(&i)),
            }
        }
        assert_eq!(*log.lock().unwrap(), [0, 2, 3, 5]);
    });
}

#[test]
fn fifo_orders_of_a_baker_cancelled_and_joined_by_that_baker() {
    within(|| {
        let bakery = Bakery::new(1);
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = bakery.clone();
        let log2 = log.clone();
        let results = bakery.install(move || {
            let orders: Vec<_> = (0..8)
                .map(|i| {
                    let log = log2.clone();
                    inner.submit_fifo(move || {
                        log.lock().unwrap().push(i);
                        i
                    })
                })
                .collect();
            assert!(orders[3].cancel());
            orders
                .into_iter()
                .rev()
                .map(|order| order.join().ok())
                .collect::<Vec<_>>()
        });
        let expected: Vec<_> = (0..8).rev().map(|i| (i != 3).then_some(i)).collect();
        assert_eq!(results, expected);
        let mut ran = log.lock().unwrap().clone();
        ran.sort_unstable();
        assert_eq!(
            ran,
            [0, 1, 2, 4, 5, 6, 7],
            "each ran once, the cancelled never"
        );
    });
}

#[test]
fn fifo_orders_under_shutdown_now_each_report_one_outcome() {
    within(|| {
        for _ in 0..10 {
            let bakery = Bakery::new(2);
            let ran = Arc::new(AtomicUsize::new(0));
            let orders: Vec<_> = (0..50)
                .map(|_| {
                    let ran = ran.clone();
                    bakery.submit_fifo(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            bakery.shutdown_now();
            let mut done = 0;
            for order in orders {
                match order.join() {
                    Ok(()) => done += 1,
                    Err(OrderError::Cancelled) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            assert_eq!(done, ran.load(Ordering::SeqCst));
        }
    });
}

#[test]
fn fifo_orders_submitted_by_a_retiring_baker_all_run_in_order() {
    within(|| {
        let slot: Arc<Mutex<Option<Bakery>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let first = AtomicBool::new(true);
        let hook_slot = slot.clone();
        let bakery = Bakery::builder()
            .bakers(2)
            .on_baker_stop(move |_| {
                let bakery = hook_slot.lock().unwrap().clone();
                if let Some(bakery) = bakery {
                    if first.swap(false, Ordering::SeqCst) {
                        for i in 0..5 {
                            let tx = tx.lock().unwrap().clone();
                            bakery.submit_fifo(move || tx.send(i).unwrap()).detach();
                        }
                    }
                }
            })
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(bakery.clone());
        bakery.set_bakers(1).unwrap();
        let got: Vec<i32> = (0..5).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
        // One baker is left to take them, oldest first.
        assert_eq!(got, [0, 1, 2, 3, 4]);
        slot.lock().unwrap().take();
    });
}

#[test]
fn fifo_scoped_orders_in_nested_scopes_each_run_once() {
    within(|| {
        let bakery = Bakery::new(2);
        let runs: Vec<AtomicUsize> = (0..40).map(|_| AtomicUsize::new(0)).collect();
        bakery.scope(|s| {
            for i in 0..4 {
                let runs = &runs;
                let bakery = &bakery;
                s.submit_fifo(move || {
                    bakery.scope(|s| {
                        for j in 0..10 {
                            s.submit_fifo(move || runs[i * 10 + j].fetch_add(1, Ordering::SeqCst));
                        }
                        let cancelled = s.submit_fifo(|| panic!("cancelled, never run"));
                        cancelled.cancel();
                    })
                });
            }
        });
        assert!(runs.iter().all(|count| count.load(Ordering::SeqCst) == 1));
    });
}

// ---------------------------------------------------------------------------
// yield_now, free functions, the global bakery
// ---------------------------------------------------------------------------

#[test]
fn yield_now_inside_join_runs_the_other_half() {
    within(|| {
        let bakery = unmonitored(1);
        let (yielded, b) = bakery.install(|| bakehouse::join(bakehouse::yield_now, || 5));
        assert_eq!(yielded, Some(Yield::Executed));
        assert_eq!(b, 5);
    });
}

#[test]
fn yield_now_inside_blocking_runs_a_queued_order() {
    within(|| {
        let bakery = Bakery::builder()
            .bakers(1)
            .max_bakers(1)
            .blocking_threshold(None)
            .build()
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let did = bakery.install(move || {
            bakehouse::submit(move || flag.store(true, Ordering::SeqCst)).detach();
            bakehouse::blocking(bakehouse::yield_now)
        });
        assert_eq!(did, Some(Yield::Executed));
        assert!(done.load(Ordering::SeqCst));
    });
}

#[test]
fn yield_now_deep_in_nested_waits_loses_nothing() {
    fn dig(depth: usize, hits: &AtomicUsize) {
        if depth == 0 {
            let _ = bakehouse::yield_now();
            return;
        }
        bakehouse::join(
            || dig(depth - 1, hits),
            || {
                hits.fetch_add(1, Ordering::SeqCst);
                let _ = bakehouse::yield_now();
            },
        );
    }
    within(|| {
        let bakery = Bakery::new(2);
        let hits = AtomicUsize::new(0);
        bakery.install(|| {
            bakery.scope(|s| {
                for _ in 0..4 {
                    s.submit(|| dig(150, &hits));
                }
            })
        });
        assert_eq!(hits.into_inner(), 4 * 150);
    });
}

#[test]
fn free_scope_and_yield_in_the_stop_hook_of_a_closing_bakery() {
    within(|| {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let bakery = Bakery::builder()
            .bakers(2)
            .baker_name(|i| format!("closing-{i}"))
            .on_baker_stop(move |_| {
                let yielded = bakehouse::yield_now();
                let names = bakehouse::scope(|s| {
                    let a = s.submit(|| Baker::current().map(|b| b.name().to_string()));
                    let b = s.submit_fifo(|| Baker::current().map(|b| b.name().to_string()));
                    [a.join().unwrap(), b.join().unwrap()]
                });
                tx.lock().unwrap().send((yielded, names)).unwrap();
            })
            .build()
            .unwrap();
        bakery.shutdown();
        let reports: Vec<_> = rx.try_iter().collect();
        assert_eq!(reports.len(), 2);
        for (yielded, names) in reports {
            assert!(yielded.is_some(), "the hook runs on a baker");
            for name in names {
                let name = name.expect("scoped orders of the hook run on its bakery");
                assert!(name.starts_with("closing-"), "{name}");
            }
        }
    });
}

#[test]
fn the_global_bakery_at_first_use_from_many_threads_racing_build_global() {
    within(|| {
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    if i % 2 == 0 {
                        let built = Bakery::builder()
                            .bakers(2)
                            .baker_name(|index| format!("racing-global-{index}"))
                            .build_global();
                        (
                            Some(built.is_ok()),
                            Bakery::global() as *const Bakery as usize,
                        )
                    } else {
                        let answer = bakehouse::submit(|| 6 * 7).join().unwrap();
                        assert_eq!(answer, 42);
                        let mut total = 0;
                        bakehouse::scope(|s| {
                            s.submit(|| total = 1);
                        });
                        assert_eq!(total, 1);
                        (None, Bakery::global() as *const Bakery as usize)
                    }
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let global = Bakery::global() as *const Bakery as usize;
        assert!(
            results.iter().all(|(_, at)| *at == global),
            "one global bakery"
        );
        let wins = results
            .iter()
            .filter(|(built, _)| *built == Some(true))
            .count();
        assert!(wins <= 1, "{wins} calls to build_global won");
        if wins == 1 {
            assert_eq!(Bakery::global().bakers(), 2);
            let names = Bakery::global().broadcast(|baker| baker.name().to_string());
            assert_eq!(names, ["racing-global-0", "racing-global-1"]);
        }
        let again = Bakery::builder().bakers(1).build_global();
        assert!(matches!(
            again,
            Err(bakehouse::BuildError::GlobalAlreadyStarted)
        ));
        assert_eq!(bakehouse::join(|| 1, || 2), (1, 2));
    });
}

#[test]
fn fifo_orders_submitted_from_the_stop_hook_while_shutting_down_run_in_order() {
    within(|| {
        let slot: Arc<Mutex<Option<Bakery>>> = Arc::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let hook_slot = slot.clone();
        let hook_log = log.clone();
        let bakery = Bakery::builder()
            .bakers(1)
            .on_baker_stop(move |_| {
                let bakery = hook_slot.lock().unwrap().take();
                if let Some(bakery) = bakery {
                    let orders: Vec<_> = (0..5)
                        .map(|i| {
                            let log = hook_log.clone();
                            bakery.submit_fifo(move || log.lock().unwrap().push(i))
                        })
                        .collect();
                    // Refused from outside by now, accepted from the baker.
                    assert!(matches!(
                        bakery.try_submit(|| ()).map(|order| order.join()),
                        Ok(Ok(()))
                    ));
                    for order in orders {
                        order.detach();
                    }
                }
            })
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(bakery.clone());
        bakery.shutdown();
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);
    });
}
