//! `Bakery::stats`: the counts agree with a known workload, never go
//! backwards, and show who is running, blocked, asleep or standing in.

use bakehouse::{blocking, BakerState, Bakery, Stats};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

/// A bakery whose bakers, when a test blocks them on purpose, stay blocked.
fn held(bakers: usize) -> Bakery {
    Bakery::builder()
        .bakers(bakers)
        .blocking_threshold(None)
        .build()
        .unwrap()
}

/// Polls `stats` until `done` says so, failing after `PATIENCE`.
fn stats_until(bakery: &Bakery, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let start = Instant::now();
    loop {
        let stats = bakery.stats();
        if done(&stats) {
            return stats;
        }
        assert!(start.elapsed() < PATIENCE, "never saw {what}: {stats:#?}");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn counts_agree_with_a_known_workload() {
    const PLAIN: u64 = 200;
    const PANICKING: u64 = 7;
    const CANCELLED: u64 = 5;
    const NESTED: u64 = 10;
    const REFUSED: u64 = 3;

    let bakery = Arc::new(held(2));
    // Both bakers busy, so the orders to cancel stay queued.
    let gate = Arc::new(Barrier::new(3));
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let gate = gate.clone();
            bakery.submit(move || {
                gate.wait();
            })
        })
        .collect();
    let doomed: Vec<_> = (0..CANCELLED).map(|i| bakery.submit(move || i)).collect();
    for order in &doomed {
        assert!(order.cancel());
    }
    gate.wait();
    for holder in holders {
        holder.join().unwrap();
    }

    let plain: Vec<_> = (0..PLAIN).map(|i| bakery.submit(move || i)).collect();
    let panicking: Vec<_> = (0..PANICKING)
        .map(|_| bakery.submit(|| -> u64 { panic!("burnt") }))
        .collect();
    // Orders submitted by orders go onto the bakers' own deques.
    let nested: Vec<_> = (0..NESTED)
        .map(|i| {
            let door = bakery.clone();
            bakery.submit(move || door.submit(move || i * 2).join().unwrap())
        })
        .collect();
    let total: u64 = plain.into_iter().map(|order| order.join().unwrap()).sum();
    assert_eq!(total, PLAIN * (PLAIN - 1) / 2);
    for order in panicking {
        assert!(order.join().unwrap_err().is_panic());
    }
    for order in nested {
        order.join().unwrap();
    }
    for order in doomed {
        assert!(order.join().unwrap_err().is_cancelled());
    }
    bakery.wait_idle();

    let stats = bakery.stats();
    let submitted = 2 + CANCELLED + PLAIN + PANICKING + 2 * NESTED;
    assert_eq!(stats.submitted, submitted, "{stats:#?}");
    assert_eq!(stats.completed, 2 + PLAIN + 2 * NESTED, "{stats:#?}");
    assert_eq!(stats.panicked, PANICKING, "{stats:#?}");
    assert_eq!(stats.cancelled, CANCELLED, "{stats:#?}");
    assert_eq!(stats.rejected, 0, "{stats:#?}");
    assert_eq!(stats.queued(), 0);
    assert_eq!((stats.bakers, stats.alive, stats.stand_ins), (2, 2, 0));
    assert_eq!(stats.running + stats.blocked + stats.searching, 0);
    assert_eq!(stats.asleep, 2);
    let run: u64 = stats.per_baker.iter().map(|baker| baker.orders).sum();
    assert_eq!(run, stats.completed + stats.panicked);
    let names: Vec<_> = stats.per_baker.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["baker-0", "baker-1"]);

    // Refused once closed: counted as submitted and rejected.
    let door = (*bakery).clone();
    Arc::try_unwrap(bakery).ok().unwrap().shutdown();
    for _ in 0..REFUSED {
        assert!(door.submit(|| 1).join().unwrap_err().is_rejected());
    }
    let refused = door.try_submit(|| 1);
    assert!(refused.is_err());
    let after = door.stats();
    assert_eq!(after.submitted, submitted + REFUSED + 1);
    assert_eq!(after.rejected, REFUSED + 1);
    assert_eq!(after.alive, 0);
    assert!(after
        .per_baker
        .iter()
        .all(|baker| baker.state == BakerState::Gone));
    assert_eq!(after.completed, stats.completed, "nothing counted is lost");
}

#[test]
fn a_stolen_order_counts_as_a_steal() {
    let bakery = Arc::new(held(2));
    let door = bakery.clone();
    let outer = bakery.submit(move || {
        // Onto this baker's own deque; this baker then waits without
        // taking work, so only the other baker can run it: by stealing.
        let (tx, rx) = mpsc::channel();
        let inner = door.submit(move || tx.send(()).unwrap());
        rx.recv_timeout(PATIENCE).expect("the other baker stole it");
        inner.join().unwrap();
    });
    outer.join().unwrap();
    bakery.wait_idle();
    let stats = bakery.stats();
    assert!(stats.steals >= 1, "{stats:#?}");
    let per_baker: u64 = stats.per_baker.iter().map(|baker| baker.steals).sum();
    assert_eq!(per_baker, stats.steals);
    assert_eq!((stats.submitted, stats.completed), (2, 2));
}

#[test]
fn counters_never_go_backwards() {
    let bakery = Arc::new(Bakery::new(3));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let bakery = bakery.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut last = bakery.stats();
            let mut looks = 0;
            while !stop.load(Ordering::Relaxed) || looks < 10 {
                let now = bakery.stats();
                for (name, before, after) in [
                    ("submitted", last.submitted, now.submitted),
                    ("completed", last.completed, now.completed),
                    ("panicked", last.panicked, now.panicked),
                    ("cancelled", last.cancelled, now.cancelled),
                    ("steals", last.steals, now.steals),
                ] {
                    assert!(after >= before, "{name} went from {before} to {after}");
                }
                for (before, after) in last.per_baker.iter().zip(&now.per_baker) {
                    assert!(after.orders >= before.orders);
                    assert!(after.jobs >= before.jobs);
                    assert!(after.busy >= before.busy, "{before:?} then {after:?}");
                }
                last = now;
                looks += 1;
                // Leave the cores to the bakers between looks.
                thread::yield_now();
            }
        })
    };
    // Fewer rounds under valgrind (`BAKERY_STRESS_SCALE` below 1).
    let scale: f64 = std::env::var("BAKERY_STRESS_SCALE")
        .ok()
        .and_then(|scale| scale.parse().ok())
        .unwrap_or(1.0);
    let rounds = ((20.0 * scale.min(1.0)) as u64).max(3);
    for round in 0..rounds {
        let orders: Vec<_> = (0..200)
            .map(|i| {
                let door = bakery.clone();
                bakery.submit(move || {
                    if i % 50 == 0 {
                        panic!("round {round}");
                    }
                    door.join(|| i, || i + 1)
                })
            })
            .collect();
        for (i, order) in orders.into_iter().enumerate() {
            if i % 3 == 0 {
                order.cancel();
            }
            let _ = order.join();
        }
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
}

#[test]
fn shows_blocked_bakers_and_their_stand_ins() {
    let bakery = Bakery::builder()
        .bakers(1)
        .max_bakers(2)
        .blocking_threshold(None)
        .build()
        .unwrap();
    let (inside_tx, inside) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let order = bakery.submit(move || {
        blocking(|| {
            inside_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    inside.recv_timeout(PATIENCE).unwrap();
    let stats = bakery.stats();
    assert_eq!(stats.blocked, 1, "{stats:#?}");
    assert_eq!(stats.stand_ins, 1, "{stats:#?}");
    assert_eq!(stats.per_baker[0].state, BakerState::Blocked);
    assert_eq!(stats.per_baker.len(), 2);
    release.send(()).unwrap();
    order.join().unwrap();
}

#[test]
fn shows_bakers_the_monitor_found_blocked() {
    let bakery = Bakery::builder()
        .bakers(1)
        .max_bakers(2)
        .blocking_threshold(Some(Duration::from_millis(10)))
        .build()
        .unwrap();
    let (release, release_rx) = mpsc::channel::<()>();
    // Blocks without saying so, while another order waits.
    let sleeper = bakery.submit(move || release_rx.recv().unwrap());
    let waiting = bakery.submit(|| 1);
    let stats = stats_until(&bakery, "the sleeper found blocked", |stats| {
        stats.per_baker[0].state == BakerState::Blocked
    });
    assert!(stats.blocked >= 1);
    assert_eq!(waiting.join().unwrap(), 1);
    release.send(()).unwrap();
    sleeper.join().unwrap();
}

#[test]
fn counts_survive_bakers_going_home() {
    let bakery = Bakery::new(4);
    let orders: Vec<_> = (0..400).map(|i| bakery.submit(move || i)).collect();
    for order in orders {
        order.join().unwrap();
    }
    bakery.set_bakers(1).unwrap();
    stats_until(&bakery, "three bakers gone home", |stats| stats.alive == 1);
    bakery.wait_idle();
    let stats = bakery.stats();
    assert_eq!((stats.submitted, stats.completed), (400, 400));
    let run: u64 = stats.per_baker.iter().map(|baker| baker.orders).sum();
    assert_eq!(run, 400, "the counts of bakers that left are kept");
    // A baker joining again takes over a place and counts on.
    bakery.set_bakers(2).unwrap();
    bakery.submit(|| ()).join().unwrap();
    bakery.wait_idle();
    assert_eq!(bakery.stats().completed, 401);
    assert_eq!(bakery.stats().per_baker.len(), 4);
}

#[test]
fn prints_a_table() {
    let bakery = Bakery::builder()
        .bakers(2)
        .baker_name(|i| format!("pastry-chef-{i}"))
        .build()
        .unwrap();
    bakery.submit(|| ()).join().unwrap();
    bakery.wait_idle();
    let stats = bakery.stats();
    let table = stats.to_string();
    assert!(table.contains("1 submitted, 1 completed"), "{table}");
    assert!(table.contains("pastry-chef-0"), "{table}");
    assert!(table.contains("pastry-chef-1"), "{table}");
    assert!(
        table.lines().any(|line| line.starts_with("baker ")),
        "{table}"
    );
    let debug = format!("{stats:?}");
    assert!(debug.contains("submitted: 1"), "{debug}");
}

#[test]
fn stats_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_send_sync::<Stats>();
    assert_send_sync::<bakehouse::BakerStats>();
    assert_send_sync::<BakerState>();
}
