//! `OrderSet`: every order's outcome comes back exactly once, in the order
//! the orders finished, panics and cancellations in their place.

use bakehouse::{blocking, Bakery, OrderError, OrderSet};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);

fn scale() -> f64 {
    std::env::var("BAKERY_STRESS_SCALE")
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|&scale: &f64| scale > 0.0)
        .unwrap_or(1.0)
}

/// A bakery whose bakers, when a test blocks them on purpose, stay blocked.
fn held(bakers: usize) -> Bakery {
    Bakery::builder()
        .bakers(bakers)
        .blocking_threshold(None)
        .build()
        .unwrap()
}

#[test]
fn every_order_comes_back_exactly_once() {
    let bakery = Bakery::new(3);
    let mut set = OrderSet::new();
    let n = ((100_000.0 * scale()) as usize).max(100);
    for i in 0..n {
        set.submit(&bakery, move || i);
    }
    assert_eq!(set.len(), n);
    let mut seen = vec![false; n];
    let mut left = n;
    while let Some(outcome) = set.join_next() {
        let i = outcome.unwrap();
        assert!(!seen[i], "order {i} came back twice");
        seen[i] = true;
        left -= 1;
        assert_eq!(set.len(), left);
    }
    assert!(seen.iter().all(|&seen| seen));
    assert!(set.is_empty());
    assert!(set.join_next().is_none());
}

/// Orders submitted slowest first, each sleeping a little after the one
/// meant to finish before it: they come back fastest first.
#[test]
fn the_first_to_finish_comes_first() {
    const N: usize = 6;
    let bakery = Bakery::new(N);
    let finished: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let mut set = OrderSet::new();
    for rank in (0..N).rev() {
        let finished = finished.clone();
        set.submit(&bakery, move || {
            if rank > 0 {
                blocking(|| {
                    while !finished[rank - 1].load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(1));
                    }
                });
            }
            thread::sleep(Duration::from_millis(2));
            finished[rank].store(true, Ordering::SeqCst);
            rank
        });
    }
    let order: Vec<usize> = std::iter::from_fn(|| set.join_next())
        .map(Result::unwrap)
        .collect();
    assert_eq!(order, (0..N).collect::<Vec<_>>());
}

/// Released one at a time, in an order of the test's choosing: each comes
/// back as soon as it finished, whatever was submitted before it.
#[test]
fn whichever_finishes_comes_back_next() {
    let bakery = held(4);
    let mut set = OrderSet::new();
    let mut gates = Vec::new();
    for i in 0..4 {
        let (tx, rx) = mpsc::channel::<()>();
        gates.push(tx);
        set.submit(&bakery, move || {
            rx.recv().unwrap();
            i
        });
    }
    for i in [2, 0, 3, 1] {
        assert!(set.try_join_next().is_none());
        gates[i].send(()).unwrap();
        let outcome = set.join_next_timeout(PATIENCE).expect("released");
        assert_eq!(outcome.unwrap(), i);
    }
}

#[test]
fn panics_and_cancellations_come_back_in_place() {
    // One baker, taking orders in the order they came.
    let bakery = held(1);
    let mut set = OrderSet::new();
    set.submit(&bakery, || 1);
    set.submit(&bakery, || -> i32 { panic!("burnt") });
    set.submit(&bakery, || 3);
    let outcomes: Vec<_> = std::iter::from_fn(|| set.join_next()).collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(*outcomes[0].as_ref().unwrap(), 1);
    match &outcomes[1] {
        Err(OrderError::Panicked(panic)) => assert_eq!(panic.message(), "burnt"),
        other => panic!("expected the panic, got {other:?}"),
    }
    assert_eq!(*outcomes[2].as_ref().unwrap(), 3);

    // The baker busy, two queued orders cancelled: they come back
    // cancelled, before the busy one, which finishes after.
    let (tx, rx) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    set.submit(&bakery, move || {
        started_tx.send(()).unwrap();
        rx.recv().unwrap();
        10
    });
    started.recv_timeout(PATIENCE).unwrap();
    set.submit(&bakery, || 11);
    set.submit(&bakery, || 12);
    assert_eq!(set.cancel_all(), 2);
    assert!(set.join_next().unwrap().unwrap_err().is_cancelled());
    assert!(set.join_next().unwrap().unwrap_err().is_cancelled());
    tx.send(()).unwrap();
    assert_eq!(set.join_next().unwrap().unwrap(), 10);
    assert!(set.join_next().is_none());
    bakery.wait_idle();
    assert_eq!(bakery.stats().cancelled, 2);
}

#[test]
fn a_refused_order_comes_back_rejected() {
    let bakery = Bakery::new(1);
    let door = bakery.clone();
    bakery.shutdown();
    let mut set = OrderSet::new();
    set.submit(&door, || 1);
    assert_eq!(set.len(), 1);
    assert!(set.join_next().unwrap().unwrap_err().is_rejected());
}

#[test]
fn dropping_the_set_cancels_what_has_not_started() {
    let bakery = held(1);
    let (tx, rx) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut set = OrderSet::new();
    {
        let ran = ran.clone();
        set.submit(&bakery, move || {
            started_tx.send(()).unwrap();
            rx.recv().unwrap();
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    started.recv_timeout(PATIENCE).unwrap();
    for _ in 0..10 {
        let ran = ran.clone();
        set.submit(&bakery, move || {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    drop(set);
    tx.send(()).unwrap();
    bakery.wait_idle();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "only the running order ran on"
    );
    let stats = bakery.stats();
    assert_eq!((stats.completed, stats.cancelled), (1, 10));
}

#[test]
fn detached_orders_run_on() {
    let bakery = held(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let mut set = OrderSet::new();
    for _ in 0..10 {
        let ran = ran.clone();
        set.submit(&bakery, move || {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    set.detach_all();
    assert!(set.is_empty());
    // The set is usable again.
    set.submit(&bakery, || ());
    set.join_next().unwrap().unwrap();
    bakery.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 10);
}

#[test]
fn a_timeout_leaves_the_orders_in_the_set() {
    let bakery = held(1);
    let (tx, rx) = mpsc::channel::<()>();
    let mut set = OrderSet::new();
    set.submit(&bakery, move || rx.recv().unwrap());
    assert!(set.join_next_timeout(Duration::from_millis(5)).is_none());
    assert_eq!(set.len(), 1);
    tx.send(()).unwrap();
    set.join_next_timeout(PATIENCE).unwrap().unwrap();
    assert!(set.join_next_timeout(PATIENCE).is_none());
}

#[test]
fn async_callers_poll_it() {
    let bakery = Bakery::new(2);
    let mut set = OrderSet::new();
    for i in 0..100_u64 {
        set.submit(&bakery, move || {
            if i % 10 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            i
        });
    }
    let total = pollster::block_on(async {
        let mut total = 0;
        while let Some(outcome) = poll_fn(|cx| set.poll_join_next(cx)).await {
            total += outcome.unwrap();
        }
        total
    });
    assert_eq!(total, 4950);
    assert!(pollster::block_on(set.join_next_async()).is_none());
}

#[test]
fn a_baker_collecting_a_set_keeps_working() {
    // One baker: the set's orders can only run while it waits for them.
    let bakery = Arc::new(held(1));
    let door = bakery.clone();
    let total = bakery
        .submit(move || {
            let mut set = OrderSet::new();
            for i in 0..10 {
                set.submit(&door, move || i);
            }
            std::iter::from_fn(|| set.join_next())
                .map(Result::unwrap)
                .sum::<i32>()
        })
        .join()
        .unwrap();
    assert_eq!(total, 45);
}

#[test]
fn one_set_many_bakeries() {
    let rye = Bakery::new(1);
    let wheat = Bakery::new(1);
    let mut set = OrderSet::new();
    set.submit(&rye, || "rye");
    set.submit(&wheat, || "wheat");
    let mut loaves: Vec<_> = std::iter::from_fn(|| set.join_next())
        .map(Result::unwrap)
        .collect();
    loaves.sort_unstable();
    assert_eq!(loaves, ["rye", "wheat"]);
}
