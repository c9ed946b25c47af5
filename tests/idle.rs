//! `Bakery::wait_idle`: returns only at a moment with nothing queued and
//! nothing running, wakes for it, leaves the bakery open, and refuses to
//! wait from inside its own bakery. Includes threadpool's tests of `join`
//! (`test_repeate_join`, `test_active_count`, `test_join_wavesurfer`),
//! ported with gates instead of sleeps where they timed things.

use bakehouse::Bakery;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
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

fn scaled(n: usize) -> usize {
    ((n as f64 * scale()) as usize).max(1)
}

#[test]
fn an_empty_bakery_is_idle() {
    let bakery = Bakery::new(4);
    bakery.wait_idle();
    assert!(bakery.wait_idle_timeout(Duration::ZERO));
}

/// threadpool's `test_repeate_join`: two rounds of 42 orders, each round
/// waited for with `wait_idle`, the bakery still open after the first.
#[test]
fn repeated_waits() {
    let bakery = Bakery::builder().bakers(8).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    for round in 1..=2 {
        for _ in 0..42 {
            let count = count.clone();
            bakery
                .submit(move || {
                    thread::sleep(Duration::from_millis(5));
                    count.fetch_add(1, Ordering::Release);
                })
                .detach();
        }
        bakery.wait_idle();
        assert_eq!(count.load(Ordering::Acquire), 42 * round);
    }
}

/// threadpool's `test_active_count`: twice as many endless orders as
/// bakers; as many bakers as there are run them, the rest wait.
#[test]
fn active_count() {
    const BAKERS: usize = 4;
    let bakery = Bakery::builder()
        .bakers(BAKERS)
        .blocking_threshold(None)
        .build()
        .unwrap();
    let started = Arc::new(Barrier::new(BAKERS + 1));
    let release = Arc::new(AtomicBool::new(false));
    for _ in 0..2 * BAKERS {
        let started = started.clone();
        let release = release.clone();
        bakery
            .submit(move || {
                if !release.load(Ordering::SeqCst) {
                    started.wait();
                    while !release.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            })
            .detach();
    }
    started.wait();
    let stats = bakery.stats();
    assert_eq!(stats.running, BAKERS, "{stats:#?}");
    assert_eq!(stats.bakers, BAKERS);
    assert_eq!(stats.queued(), BAKERS, "{stats:#?}");
    assert!(!bakery.wait_idle_timeout(Duration::from_millis(1)));
    release.store(true, Ordering::SeqCst);
    bakery.wait_idle();
    let stats = bakery.stats();
    assert_eq!(stats.running, 0);
    assert_eq!(stats.completed, 2 * BAKERS as u64);
}

/// threadpool's `test_join_wavesurfer`: orders on one bakery wait for a
/// second bakery to be idle, and each then gives it more work, so the
/// second bakery is idle only between waves. Nobody waiting may be left
/// behind once its wave passed, though more work came right after.
#[test]
fn waiters_ride_the_waves() {
    const BAKERS: usize = 4;
    let waiters = Bakery::new(BAKERS);
    let clock = Bakery::new(BAKERS);
    let gate = Arc::new(Barrier::new(2));
    {
        let gate = gate.clone();
        clock
            .submit(move || {
                gate.wait();
                thread::sleep(Duration::from_millis(10));
            })
            .detach();
    }
    let (tx, rx) = mpsc::channel();
    for i in 0..3 * BAKERS {
        let clock = clock.clone();
        let tx = tx.clone();
        waiters
            .submit(move || {
                clock.wait_idle();
                // More work for the next wave.
                clock
                    .submit(|| thread::sleep(Duration::from_millis(10)))
                    .detach();
                tx.send(i).unwrap();
            })
            .detach();
    }
    drop(tx);
    gate.wait();
    let mut done: Vec<usize> = (0..3 * BAKERS)
        .map(|_| rx.recv_timeout(PATIENCE).expect("every waiter gets out"))
        .collect();
    done.sort_unstable();
    assert_eq!(done, (0..3 * BAKERS).collect::<Vec<_>>());
    clock.wait_idle();
    waiters.wait_idle();
    assert_eq!(clock.stats().completed, 1 + 3 * BAKERS as u64);
}

/// Every `wait_idle` under concurrent submitters returns only after a
/// moment when no order was in the bakery. Orders take tickets from one
/// counter when they were surely in the bakery (after their `submit`
/// returned, and at the end of their closure), and each wait takes one
/// before and after: some point between a wait's tickets must lie inside
/// no order's.
#[test]
fn returns_only_at_a_true_idle_moment() {
    let tickets = Arc::new(AtomicU64::new(0));
    let take = {
        let tickets = tickets.clone();
        move || tickets.fetch_add(1, Ordering::SeqCst)
    };
    let bakery = Arc::new(Bakery::new(3));
    let stop = Arc::new(AtomicBool::new(false));
    // (ticket after submit, ticket at the end of the closure)
    let spans = Arc::new(Mutex::new(Vec::new()));
    let submitters: Vec<_> = (0..2)
        .map(|who| {
            let bakery = bakery.clone();
            let stop = stop.clone();
            let spans = spans.clone();
            let take = take.clone();
            thread::spawn(move || {
                let mut round = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    let burst = 1 + (round + who) % 5;
                    let mut mine = Vec::new();
                    for i in 0..burst {
                        let end = Arc::new(AtomicU64::new(u64::MAX));
                        let end_in = end.clone();
                        let take_in = take.clone();
                        let door = bakery.clone();
                        let order = bakery.submit(move || {
                            if i % 2 == 0 {
                                // A child order keeps the bakery busy too.
                                door.submit(thread::yield_now).join().unwrap();
                            }
                            end_in.store(take_in(), Ordering::SeqCst);
                        });
                        mine.push((take(), end, order));
                    }
                    for (start, end, order) in mine {
                        order.join().unwrap();
                        spans
                            .lock()
                            .unwrap()
                            .push((start, end.load(Ordering::SeqCst)));
                    }
                    round += 1;
                    // Pauses leave idle moments for the waits to find; at a
                    // small scale (under valgrind, where every order is
                    // slow) they are long enough that both submitters still
                    // pause at once.
                    let pause = if scale() < 1.0 { 5_000 } else { 200 };
                    thread::sleep(Duration::from_micros(pause * (round % 3)));
                }
            })
        })
        .collect();
    // Wait while the submitters are at it.
    while spans.lock().unwrap().len() < 10 {
        thread::yield_now();
    }
    let mut waits = Vec::new();
    for i in 0..scaled(200) {
        let before = take();
        bakery.wait_idle();
        waits.push((before, take()));
        thread::sleep(Duration::from_micros(50 * (i as u64 % 4)));
    }
    stop.store(true, Ordering::Relaxed);
    for submitter in submitters {
        submitter.join().unwrap();
    }
    let spans = spans.lock().unwrap();
    for &(before, after) in &waits {
        // Half-points k + 0.5, for k in before..after, covered by a span
        // (start, end) when start <= k < end.
        let len = (after - before) as usize;
        let mut cover = vec![0_i64; len + 1];
        for &(start, end) in spans.iter() {
            let from = start.max(before);
            let to = end.min(after);
            if from < to {
                cover[(from - before) as usize] += 1;
                cover[(to - before) as usize] -= 1;
            }
        }
        let mut depth = 0;
        let idle = cover[..len].iter().any(|&delta| {
            depth += delta;
            depth == 0
        });
        assert!(
            idle,
            "wait ({before}, {after}) returned with an order inside all along"
        );
    }
}

#[test]
fn waits_for_orders_made_by_orders() {
    let bakery = Arc::new(Bakery::new(2));
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let door = bakery.clone();
        let count = count.clone();
        bakery
            .submit(move || {
                for _ in 0..10 {
                    let count = count.clone();
                    door.submit(move || {
                        thread::sleep(Duration::from_micros(100));
                        count.fetch_add(1, Ordering::SeqCst);
                    })
                    .detach();
                }
            })
            .detach();
    }
    bakery.wait_idle();
    assert_eq!(count.load(Ordering::SeqCst), 100);
}

#[test]
fn timeout_reports_whether_it_was_idle() {
    let bakery = Bakery::builder()
        .bakers(1)
        .blocking_threshold(None)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let busy = bakery.submit(move || rx.recv().unwrap());
    assert!(!bakery.wait_idle_timeout(Duration::from_millis(5)));
    tx.send(()).unwrap();
    assert!(bakery.wait_idle_timeout(PATIENCE));
    busy.join().unwrap();
    assert!(bakery.wait_idle_timeout(Duration::MAX));
}

#[test]
fn from_its_own_baker_it_panics() {
    let bakery = Arc::new(Bakery::new(1));
    let door = bakery.clone();
    let error = bakery.submit(move || door.wait_idle()).join().unwrap_err();
    let panic = error.into_panic().unwrap();
    assert!(
        panic.message().contains("own bakers"),
        "{}",
        panic.message()
    );
    // The bakery carries on.
    assert_eq!(bakery.submit(|| 5).join().unwrap(), 5);
    bakery.wait_idle();
}

#[test]
fn from_another_bakery_it_waits() {
    let outer = Bakery::new(1);
    let inner = Bakery::new(1);
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let count = count.clone();
        inner
            .submit(move || {
                thread::sleep(Duration::from_millis(1));
                count.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
    }
    let door = inner.clone();
    let seen = outer
        .submit(move || {
            door.wait_idle();
            count.load(Ordering::SeqCst)
        })
        .join()
        .unwrap();
    assert_eq!(seen, 5);
}

#[test]
fn a_closed_bakery_is_idle_once_its_bakers_left() {
    let bakery = Bakery::new(2);
    let door = bakery.clone();
    for _ in 0..20 {
        bakery
            .submit(|| thread::sleep(Duration::from_micros(100)))
            .detach();
    }
    let closer = thread::spawn(move || bakery.shutdown());
    door.wait_idle();
    closer.join().unwrap();
    door.wait_idle();
    assert_eq!(door.stats().completed, 20);
}
