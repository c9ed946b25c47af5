//! Delayed and repeating orders through the public API: every outcome,
//! cancellation, shutdown, joins from bakers, panics in repeating runs.

use bakehouse::{Bakery, OrderError, TryJoinError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const FAR: Duration = Duration::from_secs(3600);

/// Sets its flag when dropped: tells when a closure was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_delayed_order_runs_not_before_its_deadline() {
    let bakery = Bakery::new(2);
    let deadline = Instant::now() + Duration::from_millis(20);
    let order = bakery.submit_at(deadline, Instant::now);
    assert!(order.join().unwrap() >= deadline);
    let start = Instant::now();
    let order = bakery.submit_after(Duration::from_millis(10), move || start.elapsed());
    assert!(order.join().unwrap() >= Duration::from_millis(10));
}

#[test]
fn a_past_deadline_runs_at_once() {
    let bakery = Bakery::new(1);
    let order = bakery.submit_at(Instant::now() - Duration::from_millis(5), || 5);
    assert_eq!(order.join().unwrap(), 5);
}

#[test]
fn cancel_before_the_deadline_reports_cancelled_and_drops_the_closure_at_once() {
    let bakery = Bakery::new(1);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let order = bakery.submit_after(FAR, move || drop(flag));
    assert!(!dropped.load(Ordering::SeqCst));
    assert!(order.cancel());
    assert!(
        dropped.load(Ordering::SeqCst),
        "dropped by cancel, not at the deadline"
    );
    assert!(order.cancel(), "cancelling again still says cancelled");
    assert!(matches!(order.join(), Err(OrderError::Cancelled)));
}

#[test]
fn try_join_before_the_deadline_gives_the_handle_back() {
    let bakery = Bakery::new(1);
    let order = bakery.submit_after(FAR, || 1);
    let order = match order.try_join() {
        Err(TryJoinError::NotFinished(order)) => order,
        other => panic!("expected NotFinished, got {other:?}"),
    };
    let order = order
        .join_timeout(Duration::from_millis(1))
        .unwrap_err()
        .into_order()
        .expect("timed out, handle back");
    assert!(!order.is_finished());
    assert!(order.cancel());
}

#[test]
fn a_delayed_order_can_be_awaited() {
    let bakery = Bakery::new(1);
    let value = pollster::block_on(bakery.submit_after(Duration::from_millis(5), || "scone"));
    assert_eq!(value.unwrap(), "scone");
}

#[test]
fn a_detached_delayed_order_still_runs() {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    bakery
        .submit_after(Duration::from_millis(5), move || tx.send("bagel").unwrap())
        .detach();
    assert_eq!(rx.recv().unwrap(), "bagel");
}

/// A baker joining a delayed order of its own bakery waits for the
/// deadline: it never claims and runs the order early.
#[test]
fn a_baker_joining_a_delayed_order_does_not_run_it_early() {
    let bakery = Arc::new(Bakery::new(1));
    let inner = bakery.clone();
    let outer = bakery.submit(move || {
        let deadline = Instant::now() + Duration::from_millis(20);
        let order = inner.submit_at(deadline, Instant::now);
        order.join().unwrap() >= deadline
    });
    assert!(outer.join().unwrap());
}

#[test]
fn a_closed_bakery_rejects_delayed_orders() {
    let bakery = Bakery::new(1);
    let front_door = bakery.clone();
    bakery.shutdown();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let order = front_door.submit_after(Duration::from_millis(1), move || drop(flag));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the closure is dropped unrun"
    );
    assert!(matches!(order.join(), Err(OrderError::Rejected)));
    let repeating = front_door.submit_every(Duration::from_millis(1), || {});
    assert!(repeating.is_stopped());
    assert_eq!(repeating.runs(), 0);
}

/// Every kind of shutdown cancels the delayed orders whose time had not
/// come, drops their closures, and does not wait for their deadlines (a
/// wait for the far one would hang the test).
#[test]
fn every_shutdown_cancels_pending_delayed_orders() {
    for how in 0..4 {
        let bakery = Bakery::new(2);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let far = bakery.submit_after(FAR, move || drop(flag));
        let soon = bakery.submit_after(Duration::ZERO, || "now");
        assert_eq!(soon.join().unwrap(), "now");
        match how {
            0 => bakery.shutdown(),
            1 => bakery.shutdown_now(),
            // Long enough for the baker that ran `soon` to finish even on a
            // slow machine, and far below `FAR`: the pending order must not
            // hold the shutdown up.
            2 => bakery.shutdown_timeout(Duration::from_secs(30)).unwrap(),
            _ => drop(bakery),
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "shutdown {how} dropped the closure"
        );
        assert!(
            matches!(far.join(), Err(OrderError::Cancelled)),
            "shutdown {how}"
        );
    }
}

/// Many timers, many deadlines: each reports exactly one outcome; the
/// cancelled ones report `Cancelled` and never run, the others run once.
#[test]
fn many_timers_each_report_one_outcome() {
    let bakery = Bakery::new(2);
    let runs = Arc::new(AtomicUsize::new(0));
    let orders: Vec<_> = (0..500_u64)
        .map(|i| {
            let runs = runs.clone();
            bakery.submit_after(Duration::from_micros(i * 37 % 10_000), move || {
                runs.fetch_add(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    let mut cancelled = 0;
    for (i, order) in orders.iter().enumerate() {
        if i % 3 == 0 && order.cancel() {
            cancelled += 1;
        }
    }
    let mut ran = 0;
    for (i, order) in orders.into_iter().enumerate() {
        match order.join() {
            Ok(value) => {
                assert_eq!(value, i as u64);
                ran += 1;
            }
            Err(OrderError::Cancelled) => assert_eq!(i % 3, 0),
            Err(other) => panic!("order {i}: {other}"),
        }
    }
    assert_eq!(ran + cancelled, 500);
    assert_eq!(runs.load(Ordering::SeqCst), ran);
}

#[test]
fn submit_every_runs_until_cancelled() {
    let bakery = Bakery::new(2);
    let (tx, rx) = mpsc::channel();
    let repeating = bakery.submit_every(Duration::from_millis(1), move || {
        let _ = tx.send(());
    });
    for _ in 0..5 {
        rx.recv().unwrap();
    }
    repeating.cancel();
    // Wait for a run that may have been under way.
    while !repeating.is_stopped() {
        std::thread::yield_now();
    }
    let runs = repeating.runs();
    assert!(runs >= 5);
    // The closure (and its sender) is gone once the schedule stopped and the
    // handle is dropped: the channel disconnects after the sent messages.
    drop(repeating);
    let left = rx.iter().count() as u64;
    assert_eq!(left + 5, runs, "no run after the schedule stopped");
}

/// Runs never overlap, even when each overruns its period on a bakery with
/// spare bakers.
#[test]
fn repeating_runs_never_overlap() {
    let bakery = Bakery::new(4);
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let repeating = {
        let (inside, overlaps) = (inside.clone(), overlaps.clone());
        bakery.submit_every(Duration::from_micros(100), move || {
            if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(1));
            inside.fetch_sub(1, Ordering::SeqCst);
        })
    };
    while repeating.runs() < 10 {
        std::thread::yield_now();
    }
    repeating.cancel();
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}

/// A panicking run goes to the panic handler, and the schedule goes on.
#[test]
fn a_panicking_run_reaches_the_handler_and_the_schedule_goes_on() {
    let panics = Arc::new(Mutex::new(Vec::new()));
    let bakery = {
        let panics = panics.clone();
        Bakery::builder()
            .bakers(1)
            .panic_handler(move |panic| panics.lock().unwrap().push(panic.message().to_owned()))
            .build()
            .unwrap()
    };
    let mut run = 0;
    let repeating = bakery.submit_every(Duration::from_millis(1), move || {
        run += 1;
        if run <= 2 {
            panic!("burnt batch {run}");
        }
    });
    while repeating.runs() < 4 {
        std::thread::yield_now();
    }
    repeating.cancel();
    bakery.shutdown();
    assert_eq!(
        *panics.lock().unwrap(),
        ["burnt batch 1", "burnt batch 2"],
        "each panic reached the handler once"
    );
}

#[test]
fn shutdown_stops_repeating_orders_and_drops_their_closures() {
    for how in 0..3 {
        let bakery = Bakery::new(2);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let (tx, rx) = mpsc::channel();
        let repeating = bakery.submit_every(Duration::from_millis(1), move || {
            let _ = &flag;
            let _ = tx.send(());
        });
        rx.recv().unwrap();
        let slow = bakery.submit_every(FAR, || {});
        match how {
            0 => bakery.shutdown(),
            1 => bakery.shutdown_now(),
            _ => drop(bakery),
        }
        assert!(repeating.is_stopped(), "shutdown {how}");
        assert!(slow.is_stopped(), "shutdown {how}");
        assert_eq!(slow.runs(), 0);
        let runs = repeating.runs();
        drop(repeating);
        assert!(
            dropped.load(Ordering::SeqCst),
            "shutdown {how}: closure dropped"
        );
        assert_eq!(
            rx.iter().count() as u64 + 1,
            runs,
            "no run after the shutdown"
        );
    }
}

#[test]
fn dropping_the_handle_does_not_stop_the_schedule() {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    drop(bakery.submit_every(Duration::from_millis(1), move || {
        let _ = tx.send(());
    }));
    for _ in 0..3 {
        rx.recv().unwrap();
    }
    bakery.shutdown();
    // Stopped by the shutdown: the closure (and its sender) is gone, so
    // this ends.
    let _ = rx.iter().count();
}

#[test]
fn fixed_delay_runs_and_stops() {
    let bakery = Bakery::new(1);
    let repeating = bakery.submit_with_fixed_delay(Duration::from_millis(1), || {});
    while repeating.runs() < 3 {
        std::thread::yield_now();
    }
    repeating.cancel();
    while !repeating.is_stopped() {
        std::thread::yield_now();
    }
    let runs = repeating.runs();
    bakery.shutdown();
    assert_eq!(repeating.runs(), runs);
}

#[test]
#[should_panic(expected = "period must be greater than zero")]
fn a_zero_period_panics() {
    let bakery = Bakery::new(1);
    let _ = bakery.submit_every(Duration::ZERO, || {});
}

#[test]
fn repeating_debug_shows_the_runs() {
    let bakery = Bakery::new(1);
    let repeating = bakery.submit_every(FAR, || {});
    let text = format!("{repeating:?}");
    assert!(text.starts_with("Repeating {"), "{text}");
    assert!(text.contains("runs: 0"), "{text}");
    repeating.cancel();
    assert!(format!("{repeating:?}").contains("stopped: true"));
}

/// A repeating order's closure may hold a handle of its own bakery and
/// submit through it; an explicit shutdown still stops it.
#[test]
fn a_repeating_order_holding_its_bakery_stops_at_shutdown() {
    let bakery = Bakery::new(2);
    let door = bakery.clone();
    let (tx, rx) = mpsc::channel();
    let repeating = bakery.submit_every(Duration::from_millis(1), move || {
        let _ = tx.send(door.submit(|| 1).join());
    });
    assert_eq!(rx.recv().unwrap().unwrap(), 1);
    bakery.shutdown();
    assert!(repeating.is_stopped());
}
