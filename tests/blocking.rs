//! Blocked bakers do not hold the others up: compensation for declared
//! blocking, a bakery that changes size while it works, and the limits
//! (`max_bakers`, `keep_alive`) around both.

use bakehouse::{blocking, Baker, Bakery, SetBakersError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough that only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `done()` holds, or panics after [`PATIENCE`]: a liveness
/// check, not a timing one.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn every_baker_may_block_on_a_barrier_that_needs_one_more() {
    for bakers in [1, 2, 4] {
        let bakery = Bakery::new(bakers);
        let barrier = Arc::new(Barrier::new(bakers + 1));
        let orders: Vec<_> = (0..=bakers)
            .map(|_| {
                let barrier = barrier.clone();
                bakery.submit(move || blocking(|| barrier.wait()).is_leader())
            })
            .collect();
        let leaders = orders
            .into_iter()
            .map(|order| order.join_timeout(PATIENCE).unwrap())
            .filter(|&leader| leader)
            .count();
        assert_eq!(leaders, 1, "{bakers} bakers");
    }
}

#[test]
fn off_a_baker_blocking_just_runs_the_closure() {
    assert_eq!(blocking(|| 6 * 7), 42);
    let bakery = Bakery::new(1);
    let stranger = thread::spawn(|| blocking(|| Baker::current().is_none()));
    assert!(stranger.join().unwrap());
    drop(bakery);
}

#[test]
fn a_blocked_bakers_own_deque_is_taken_by_a_stand_in() {
    let bakery = Arc::new(Bakery::new(1));
    let door = bakery.clone();
    let outer = bakery.submit(move || {
        let me = Baker::current().unwrap().index();
        // Queued on this baker's own deque, then waited for while blocked:
        // only another baker can run them.
        let (tx, rx) = mpsc::channel();
        for i in 0..8 {
            let tx = tx.clone();
            door.submit(move || tx.send((i, Baker::current().unwrap().index())).unwrap())
                .detach();
        }
        let seen: Vec<(u32, usize)> = blocking(|| (0..8).map(|_| rx.recv().unwrap()).collect());
        (me, seen)
    });
    let (me, seen) = outer.join_timeout(PATIENCE).unwrap();
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|&(_, by)| by != me), "a stand-in ran them");
}

#[test]
fn blocking_composes_with_nesting_joins_scopes_and_orders() {
    let bakery = Arc::new(Bakery::new(1));
    let door = bakery.clone();
    let order = bakery.submit(move || {
        blocking(|| {
            let nested = blocking(|| blocking(|| 1));
            let (a, b) = door.join(|| 2, || blocking(|| 3));
            let mut cells = [0; 3];
            door.scope(|s| {
                for (i, cell) in cells.iter_mut().enumerate() {
                    s.submit(move || *cell = blocking(|| i + 1));
                }
            });
            let inner = door.submit(|| blocking(|| 4)).join().unwrap();
            nested + a + b + cells.iter().sum::<usize>() + inner
        })
    });
    assert_eq!(order.join_timeout(PATIENCE).unwrap(), 1 + 2 + 3 + 6 + 4);
}

#[test]
fn a_panic_inside_blocking_propagates_and_the_baker_counts_again() {
    let bakery = Bakery::builder()
        .bakers(1)
        .keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    let caught = bakery
        .submit(|| std::panic::catch_unwind(|| blocking(|| -> u8 { panic!("dropped the tray") })))
        .join()
        .unwrap();
    assert!(caught.is_err());
    // Still compensated afterwards: the waiter blocks, the sender runs.
    let (tx, rx) = mpsc::channel();
    let waiting = bakery.submit(move || blocking(|| rx.recv().unwrap()));
    let sending = bakery.submit(move || tx.send(5).unwrap());
    assert_eq!(waiting.join_timeout(PATIENCE).unwrap(), 5);
    sending.join().unwrap();
}

#[test]
fn max_bakers_caps_the_stand_ins() {
    let bakery = Bakery::builder().bakers(1).max_bakers(3).build().unwrap();
    let inside = Arc::new(Mutex::new(HashSet::new()));
    let most = Arc::new(AtomicUsize::new(0));
    let (release_tx, release) = mpsc::channel::<()>();
    let release = Arc::new(Mutex::new(release));
    let orders: Vec<_> = (0..10)
        .map(|_| {
            let (inside, most, release) = (inside.clone(), most.clone(), release.clone());
            bakery.submit(move || {
                let me = thread::current().id();
                blocking(|| {
                    let now = {
                        let mut inside = inside.lock().unwrap();
                        inside.insert(me);
                        inside.len()
                    };
                    most.fetch_max(now, Ordering::SeqCst);
                    release.lock().unwrap().recv().unwrap();
                    inside.lock().unwrap().remove(&me);
                })
            })
        })
        .collect();
    eventually("three bakers block at once", || {
        inside.lock().unwrap().len() == 3
    });
    for _ in 0..10 {
        release_tx.send(()).unwrap();
    }
    for order in orders {
        order.join_timeout(PATIENCE).unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 3, "never more than max_bakers");
}

/// A bakery whose bakers count their starts and stops.
fn counted(bakers: usize, keep_alive: Duration) -> (Bakery, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    counted_with(bakers, keep_alive, |_| {})
}

/// The same, also telling `on_stop` the index of each baker that stops.
fn counted_with(
    bakers: usize,
    keep_alive: Duration,
    on_stop: impl Fn(usize) + Send + Sync + 'static,
) -> (Bakery, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let bakery = Bakery::builder()
        .bakers(bakers)
        .keep_alive(keep_alive)
        .on_baker_start({
            let started = started.clone();
            move |_| {
                started.fetch_add(1, Ordering::SeqCst);
            }
        })
        .on_baker_stop({
            let stopped = stopped.clone();
            move |index| {
                on_stop(index);
                stopped.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    (bakery, started, stopped)
}

#[test]
fn stand_ins_go_home_after_keep_alive_and_run_their_stop_hook() {
    let gone = Arc::new(Mutex::new(Vec::new()));
    let recorded = gone.clone();
    let (bakery, started, stopped) = counted_with(2, Duration::from_millis(30), move |index| {
        recorded.lock().unwrap().push(index)
    });
    let barrier = Arc::new(Barrier::new(7));
    let orders: Vec<_> = (0..6)
        .map(|_| {
            let barrier = barrier.clone();
            bakery.submit(move || blocking(|| barrier.wait()))
        })
        .collect();
    barrier.wait();
    for order in orders {
        order.join_timeout(PATIENCE).unwrap();
    }
    assert!(
        started.load(Ordering::SeqCst) >= 6,
        "stand-ins were started"
    );
    eventually("the stand-ins went home", || {
        started.load(Ordering::SeqCst) - stopped.load(Ordering::SeqCst) == 2
    });
    assert_eq!(bakery.bakers(), 2);
    assert!(
        gone.lock().unwrap().iter().all(|&index| index >= 2),
        "the stand-ins went home, not the bakers the bakery started with: {:?}",
        gone.lock().unwrap()
    );
    // The two left keep serving.
    assert_eq!(bakery.submit(|| 9).join().unwrap(), 9);
    bakery.shutdown();
    assert_eq!(
        started.load(Ordering::SeqCst),
        stopped.load(Ordering::SeqCst)
    );
}

#[test]
fn set_bakers_grows_at_once_and_shrinks_after_the_current_order() {
    let (bakery, started, stopped) = counted(1, Duration::from_secs(60));
    bakery.set_bakers(4).unwrap();
    assert_eq!(bakery.bakers(), 4);
    eventually("four bakers started", || {
        started.load(Ordering::SeqCst) == 4
    });
    let barrier = Arc::new(Barrier::new(5));
    let orders: Vec<_> = (0..4)
        .map(|_| {
            let barrier = barrier.clone();
            // Not declared as blocking: four bakers really run at once.
            bakery.submit(move || barrier.wait().is_leader())
        })
        .collect();
    barrier.wait();
    for order in orders {
        order.join_timeout(PATIENCE).unwrap();
    }
    bakery.set_bakers(2).unwrap();
    assert_eq!(bakery.bakers(), 2);
    eventually("two bakers went home", || {
        stopped.load(Ordering::SeqCst) == 2
    });
    assert_eq!(bakery.submit(|| 1).join().unwrap(), 1);
    drop(bakery);
    assert_eq!(stopped.load(Ordering::SeqCst), 4);
}

#[test]
fn set_bakers_up_and_down_under_load_loses_nothing() {
    let bakery = Arc::new(Bakery::builder().bakers(2).max_bakers(8).build().unwrap());
    let orders = 20_000;
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..orders).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resizer = {
        let (bakery, stop) = (bakery.clone(), stop.clone());
        thread::spawn(move || {
            let mut size = 1;
            while !stop.load(Ordering::SeqCst) {
                size = size % 8 + 1;
                bakery.set_bakers(size).unwrap();
                thread::sleep(Duration::from_micros(300));
            }
        })
    };
    // Orders from outside, and orders that submit more from inside, so
    // that retiring bakers leave work on their own deques.
    let handles: Vec<_> = (0..orders / 4)
        .map(|i| {
            let (ran, door) = (ran.clone(), bakery.clone());
            bakery.submit(move || {
                let inner: Vec<_> = (1..4)
                    .map(|k| {
                        let ran = ran.clone();
                        door.submit(move || ran[4 * i + k].fetch_add(1, Ordering::SeqCst))
                    })
                    .collect();
                ran[4 * i].fetch_add(1, Ordering::SeqCst);
                inner
            })
        })
        .collect();
    for handle in handles {
        for inner in handle.join_timeout(PATIENCE).unwrap() {
            inner.join_timeout(PATIENCE).unwrap();
        }
    }
    stop.store(true, Ordering::SeqCst);
    resizer.join().unwrap();
    assert!(
        ran.iter().all(|count| count.load(Ordering::SeqCst) == 1),
        "every order ran exactly once"
    );
}

#[test]
fn set_bakers_rejects_bad_input_with_a_clear_error() {
    let bakery = Bakery::builder().bakers(2).max_bakers(4).build().unwrap();
    let error = bakery.set_bakers(0).unwrap_err();
    assert!(matches!(error, SetBakersError::NoBakers));
    assert_eq!(error.to_string(), "a bakery needs at least one baker");
    let error = bakery.set_bakers(5).unwrap_err();
    assert!(matches!(
        error,
        SetBakersError::TooManyBakers {
            requested: 5,
            max: 4
        }
    ));
    assert_eq!(bakery.bakers(), 2, "a refused change changes nothing");
    let door = bakery.clone();
    bakery.shutdown();
    assert!(matches!(door.set_bakers(3), Err(SetBakersError::Closed)));
}

/// Orders hopping between two bakeries whose bakers have small stacks: the
/// waits nest past the stack budget, and stand-ins take the work over.
fn hop(here: Arc<Bakery>, there: Arc<Bakery>, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let (h, t) = (here.clone(), there.clone());
    there.submit(move || hop(t, h, n - 1)).join().unwrap() + 1
}

#[test]
fn waits_past_the_stack_budget_are_taken_over_by_stand_ins() {
    let small = || {
        Arc::new(
            Bakery::builder()
                .bakers(1)
                .stack_size(256 << 10)
                .build()
                .unwrap(),
        )
    };
    let (a, b) = (small(), small());
    let (a2, b2) = (a.clone(), b.clone());
    let order = a.submit(move || hop(a2, b2, 300));
    assert_eq!(order.join_timeout(PATIENCE).unwrap(), 300);
}

#[test]
fn blocking_that_nobody_declared_is_noticed() {
    for bakers in [1, 2] {
        let bakery = Bakery::new(bakers);
        // Every baker waits on a channel, without saying so; the orders
        // that would release them are queued behind.
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..bakers).map(|_| mpsc::channel::<u32>()).unzip();
        let waiting: Vec<_> = rxs
            .into_iter()
            .map(|rx| bakery.submit(move || rx.recv().unwrap()))
            .collect();
        let sending: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(i, tx)| bakery.submit(move || tx.send(i as u32).unwrap()))
            .collect();
        for (i, order) in waiting.into_iter().enumerate() {
            assert_eq!(
                order.join_timeout(PATIENCE).unwrap(),
                i as u32,
                "{bakers} bakers"
            );
        }
        for order in sending {
            order.join().unwrap();
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_long_cpu_bound_order_starts_no_stand_in() {
    let (bakery, started, _) = counted(1, Duration::from_secs(60));
    let busy = bakery.submit(|| {
        let start = Instant::now();
        let mut spins = 0_u64;
        while start.elapsed() < Duration::from_millis(200) {
            spins = std::hint::black_box(spins + 1);
        }
        spins
    });
    let queued: Vec<_> = (0..10).map(|i| bakery.submit(move || i)).collect();
    busy.join().unwrap();
    for order in queued {
        order.join().unwrap();
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "the running baker was left alone"
    );
}

#[test]
fn with_detection_off_undeclared_blocking_starts_no_stand_in() {
    let started = Arc::new(AtomicUsize::new(0));
    let bakery = Bakery::builder()
        .bakers(1)
        .blocking_threshold(None)
        .on_baker_start({
            let started = started.clone();
            move |_| {
                started.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let sleeper = bakery.submit(|| thread::sleep(Duration::from_millis(50)));
    let queued = bakery.submit(|| 1);
    sleeper.join().unwrap();
    assert_eq!(queued.join().unwrap(), 1);
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

#[test]
fn undeclared_blocking_is_noticed_when_the_awaited_order_sits_in_the_bakers_own_batch() {
    // The first order blocks on a channel that the last one sends on. Taken
    // together from the shared queue, the others may sit in a batch on the
    // blocked baker's own deque, where only a stand-in can reach them.
    for others in [1, 8, 32, 40] {
        let bakery = Bakery::new(1);
        let (tx, rx) = mpsc::channel();
        let (gate_tx, gate) = mpsc::channel::<()>();
        // Hold the only baker until every order is queued.
        let gatekeeper = bakery.submit(move || gate.recv().unwrap());
        let waiting = bakery.submit(move || rx.recv().unwrap());
        let queued: Vec<_> = (0..others)
            .map(|i| {
                let tx = tx.clone();
                bakery.submit(move || {
                    if i == others - 1 {
                        tx.send(i).unwrap();
                    }
                })
            })
            .collect();
        gate_tx.send(()).unwrap();
        gatekeeper.join_timeout(PATIENCE).unwrap();
        assert_eq!(
            waiting.join_timeout(PATIENCE).unwrap(),
            others - 1,
            "{others} queued"
        );
        for order in queued {
            order.join_timeout(PATIENCE).unwrap();
        }
    }
}

/// An order that blocks, undeclared, on an order submitted from outside
/// only once every baker is busy: that submit must wake the monitor, which
/// was asleep (nothing waited when the blocked order started), so that a
/// stand-in runs the awaited order.
#[test]
fn a_submit_that_finds_every_baker_busy_wakes_the_monitor() {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let waiting = bakery.submit(move || {
        started_tx.send(()).unwrap();
        // A plain channel receive: blocking nobody declared.
        rx.recv_timeout(Duration::from_secs(20)).is_ok()
    });
    started_rx.recv().unwrap();
    let releasing = bakery.submit(move || tx.send(()).unwrap());
    assert!(
        waiting.join().unwrap(),
        "the awaited order ran on a stand-in while the first baker waited"
    );
    releasing.join().unwrap();
}
