//! Stress and soak: many submitters, panic storms, shutdowns under load and
//! deep nesting. Every order must report exactly one outcome, and every
//! order that reports a value must have run exactly once.
//!
//! The sizes here are modest so the suite stays quick. Scale them up for a
//! soak run by hand with `BAKERY_STRESS_SCALE` (a multiplier, default 1):
//!
//! ```sh
//! BAKERY_STRESS_SCALE=40 cargo test --release --test stress -- --nocapture
//! ```
//!
//! At scale 40 the submitters push four million orders.

use bakehouse::{Bakery, OrderError};
use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, Once};
use std::time::Duration;

/// The multiplier from `BAKERY_STRESS_SCALE` (a fraction shrinks the runs,
/// as under valgrind).
fn scale() -> f64 {
    std::env::var("BAKERY_STRESS_SCALE")
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|&scale: &f64| scale > 0.0)
        .unwrap_or(1.0)
}

/// `base` scaled, at least one.
fn scaled(base: usize) -> usize {
    ((base as f64 * scale()) as usize).max(1)
}

/// Panics raised on purpose here would flood the output through the
/// default hook; keep the ones from this file quiet.
fn quiet_storm_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let storm = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|message| message.starts_with("storm "));
            if !storm {
                default(info);
            }
        }));
    });
}

fn counters(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

#[test]
fn millions_of_orders_from_many_submitters_each_run_once() {
    let threads = 4;
    let per_thread = scaled(25_000);
    let bakery = Bakery::new(4);
    let runs = counters(threads * per_thread);
    std::thread::scope(|s| {
        for t in 0..threads {
            let bakery = bakery.clone();
            let runs = runs.clone();
            s.spawn(move || {
                // Join in waves so the handles in flight stay bounded.
                for wave in (0..per_thread).collect::<Vec<_>>().chunks(1_000) {
                    let orders: Vec<_> = wave
                        .iter()
                        .map(|&i| {
                            let id = t * per_thread + i;
                            let runs = runs.clone();
                            bakery.submit(move || {
                                runs[id].fetch_add(1, Ordering::Relaxed);
                                id
                            })
                        })
                        .collect();
                    for (order, &i) in orders.into_iter().zip(wave) {
                        assert_eq!(order.join().unwrap(), t * per_thread + i);
                    }
                }
            });
        }
    });
    let wrong: Vec<_> = runs
        .iter()
        .enumerate()
        .filter(|(_, count)| count.load(Ordering::Relaxed) != 1)
        .map(|(id, count)| (id, count.load(Ordering::Relaxed)))
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "orders not run exactly once: {wrong:?}");
}

#[test]
fn a_panic_storm_reports_every_panic_and_the_pool_keeps_serving() {
    quiet_storm_panics();
    let orders = scaled(20_000);
    let detached_panics = Arc::new(AtomicUsize::new(0));
    let bakery = Bakery::builder()
        .bakers(3)
        .panic_handler({
            let detached_panics = detached_panics.clone();
            move |panic| {
                assert!(panic.message().starts_with("storm "));
                detached_panics.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let mut kept = Vec::new();
    let mut expected_detached = 0;
    for i in 0..orders {
        let order = bakery.submit(move || {
            if i % 10 == 0 {
                panic!("storm {i}");
            }
            i
        });
        // Keep three handles in four; detach the rest.
        if i % 4 == 3 {
            if i % 10 == 0 {
                expected_detached += 1;
            }
            order.detach();
        } else {
            kept.push((i, order));
        }
    }
    let mut reported = 0;
    for (i, order) in kept {
        match order.join() {
            Ok(value) => assert_eq!(value, i),
            Err(OrderError::Panicked(panic)) => {
                assert_eq!(i % 10, 0);
                assert_eq!(panic.message(), format!("storm {i}"));
                reported += 1;
            }
            Err(other) => panic!("order {i}: {other}"),
        }
    }
    let joined_panics = (0..orders).filter(|i| i % 10 == 0 && i % 4 != 3).count();
    assert_eq!(reported, joined_panics);
    // Still serving, on every baker.
    let after: Vec<_> = (0..100).map(|i| bakery.submit(move || i * 2)).collect();
    for (i, order) in after.into_iter().enumerate() {
        assert_eq!(order.join().unwrap(), i * 2);
    }
    bakery.shutdown();
    assert_eq!(detached_panics.load(Ordering::SeqCst), expected_detached);
}

/// Submitters keep submitting while the bakery shuts down. Every order ends
/// in exactly one outcome: a value (it ran once), or rejected or cancelled
/// (it never ran).
fn shutdown_under_load(now: bool) {
    let submitters = 4;
    let per_submitter = scaled(5_000);
    let bakery = Bakery::new(3);
    let runs = counters(submitters * per_submitter);
    let start = Arc::new(Barrier::new(submitters + 1));
    let outcomes = Mutex::new((0usize, 0usize, 0usize));
    std::thread::scope(|s| {
        for t in 0..submitters {
            let door = bakery.clone();
            let runs = runs.clone();
            let start = start.clone();
            let outcomes = &outcomes;
            s.spawn(move || {
                start.wait();
                let orders: Vec<_> = (0..per_submitter)
                    .map(|i| {
                        let id = t * per_submitter + i;
                        let runs = runs.clone();
                        (
                            id,
                            door.submit(move || {
                                runs[id].fetch_add(1, Ordering::Relaxed);
                                id
                            }),
                        )
                    })
                    .collect();
                let (mut ran, mut rejected, mut cancelled) = (0, 0, 0);
                for (id, order) in orders {
                    match order.join() {
                        Ok(value) => {
                            assert_eq!(value, id);
                            assert_eq!(runs[id].load(Ordering::Relaxed), 1, "order {id}");
                            ran += 1;
                        }
                        Err(OrderError::Rejected) => {
                            assert_eq!(runs[id].load(Ordering::Relaxed), 0, "order {id}");
                            rejected += 1;
                        }
                        Err(OrderError::Cancelled) => {
                            assert!(now, "plain shutdown cancels nothing");
                            assert_eq!(runs[id].load(Ordering::Relaxed), 0, "order {id}");
                            cancelled += 1;
                        }
                        Err(other) => panic!("order {id}: {other}"),
                    }
                }
                let mut totals = outcomes.lock().unwrap();
                totals.0 += ran;
                totals.1 += rejected;
                totals.2 += cancelled;
            });
        }
        start.wait();
        std::thread::sleep(Duration::from_millis(2));
        let closing = bakery.clone();
        drop(bakery);
        if now {
            closing.shutdown_now();
        } else {
            closing.shutdown();
        }
    });
    let (ran, rejected, cancelled) = *outcomes.lock().unwrap();
    assert_eq!(ran + rejected + cancelled, submitters * per_submitter);
    let total_runs: usize = runs.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    assert_eq!(total_runs, ran, "no order ran without reporting it");
}

#[test]
fn shutdown_while_submitters_keep_submitting_loses_nothing() {
    shutdown_under_load(false);
}

#[test]
fn shutdown_now_while_submitters_keep_submitting_loses_nothing() {
    shutdown_under_load(true);
}

fn nested_orders(bakery: &Arc<Bakery>, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    let door = bakery.clone();
    bakery
        .submit(move || nested_orders(&door, depth - 1))
        .join()
        .unwrap()
        + 1
}

fn nested_forks(bakery: &Bakery, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    let (left, right) = bakery.join(|| depth % 2, || nested_forks(bakery, depth - 1));
    left + right + 1
}

#[test]
fn deep_nested_joins_finish() {
    let depth = scaled(500).min(10_000);
    for bakers in [1, 2, 4] {
        let bakery = Arc::new(
            Bakery::builder()
                .bakers(bakers)
                .stack_size(256 << 20)
                .build()
                .unwrap(),
        );
        let door = bakery.clone();
        let orders = bakery.submit(move || nested_orders(&door, depth));
        assert_eq!(orders.join().unwrap(), depth, "{bakers} bakers");
        let door = bakery.clone();
        let forks = bakery.submit(move || nested_forks(&door, depth));
        let expected = depth + (1..=depth).filter(|d| d % 2 == 1).count();
        assert_eq!(forks.join().unwrap(), expected, "{bakers} bakers");
    }
}

#[test]
fn cancel_storm_against_running_bakers() {
    let orders = scaled(20_000);
    let bakery = Bakery::new(3);
    let ran = counters(orders);
    let handles: Vec<_> = (0..orders)
        .map(|i| {
            let ran = ran.clone();
            bakery.submit(move || ran[i].fetch_add(1, Ordering::Relaxed))
        })
        .collect();
    let stop = AtomicBool::new(false);
    let mut cancelled = vec![false; orders];
    for (i, order) in handles.iter().enumerate() {
        if i % 2 == 0 {
            cancelled[i] = order.cancel();
        }
    }
    stop.store(true, Ordering::SeqCst);
    for (i, order) in handles.into_iter().enumerate() {
        match order.join() {
            Ok(_) => assert!(!cancelled[i], "order {i} ran after a successful cancel"),
            Err(OrderError::Cancelled) => assert!(cancelled[i]),
            Err(other) => panic!("order {i}: {other}"),
        }
        let expected = usize::from(!cancelled[i]);
        assert_eq!(ran[i].load(Ordering::Relaxed), expected, "order {i}");
    }
}

/// How many children a `scoped_tree` node submits.
const FANOUT: usize = 3;

/// A node of a tree of scoped orders: submits `FANOUT` children, joins the
/// first and leaves the others to the scope (their handles dropped, one of
/// them detached while still queued, most likely). Every node that runs
/// adds one to `ran`; returns the nodes counted through joins.
fn scoped_tree<'scope>(
    s: &'scope bakehouse::Scope<'scope, '_>,
    ran: &'scope AtomicUsize,
    depth: u32,
) -> usize {
    ran.fetch_add(1, Ordering::Relaxed);
    if depth == 0 {
        return 1;
    }
    let mut children: Vec<_> = (0..FANOUT)
        .map(|_| s.submit(move || scoped_tree(s, ran, depth - 1)))
        .collect();
    let joined = children.remove(0).join().expect("a scoped node");
    drop(children);
    1 + joined
}

/// How many nodes a `scoped_tree` of `depth` has.
fn scoped_tree_nodes(depth: u32) -> usize {
    (0..=depth).map(|level| FANOUT.pow(level)).sum()
}

#[test]
fn scopes_from_many_threads_wait_for_every_order() {
    // More bakers than cores, so that scoped orders are created and freed on
    // many bakers' credit pools at once.
    let bakery = Arc::new(Bakery::new(4));
    let depth = 5;
    let rounds = scaled(40);
    let check = move |bakery: &Bakery| {
        for _ in 0..rounds {
            let ran = AtomicUsize::new(0);
            let joined = bakery.scope(|s| scoped_tree(s, &ran, depth));
            // Every node ran before the scope returned, joined or not.
            assert_eq!(ran.load(Ordering::Relaxed), scoped_tree_nodes(depth));
            assert_eq!(joined, depth as usize + 1);
        }
    };
    std::thread::scope(|outside| {
        for _ in 0..3 {
            outside.spawn(|| check(&bakery));
        }
        // And scopes opened from inside the bakery.
        let inside: Vec<_> = (0..2)
            .map(|_| {
                let bakery2 = bakery.clone();
                bakery.submit(move || check(&bakery2))
            })
            .collect();
        for order in inside {
            order.join().expect("scopes inside a baker finish");
        }
    });
}
