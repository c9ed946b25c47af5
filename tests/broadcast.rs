//! `Bakery::broadcast`, with rayon-core's broadcast tests ported onto it.

use bakehouse::{Baker, Bakery};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

#[test]
fn broadcast_pool_returns_one_result_per_baker_in_index_order() {
    let bakery = Bakery::new(7);
    let indices = bakery.broadcast(|baker| baker.index());
    assert_eq!(indices, (0..7).collect::<Vec<_>>());
}

#[test]
fn each_result_comes_from_the_baker_it_names() {
    let bakery = Bakery::builder()
        .bakers(4)
        .baker_name(|i| format!("oven-{i}"))
        .build()
        .unwrap();
    let seen = bakery.broadcast(|baker| {
        let me = Baker::current().expect("runs on a baker");
        assert_eq!(&me, baker, "the closure runs on the baker it is given");
        me.name().to_string()
    });
    assert_eq!(seen, ["oven-0", "oven-1", "oven-2", "oven-3"]);
}

#[test]
fn broadcast_self_from_inside_a_baker() {
    let bakery = Bakery::new(7);
    let indices = bakery.install(|| bakery.broadcast(|baker| baker.index()));
    assert_eq!(indices, (0..7).collect::<Vec<_>>());
}

#[test]
fn broadcast_mutual_between_two_bakeries() {
    let small = Bakery::new(3);
    let large = Bakery::new(7);
    let count = AtomicUsize::new(0);
    small.install(|| {
        large.broadcast(|_| {
            small.broadcast(|_| count.fetch_add(1, Ordering::Relaxed));
        })
    });
    assert_eq!(count.into_inner(), 3 * 7);
}

#[test]
fn broadcast_mutual_sleepy() {
    let small = Bakery::new(3);
    let large = Bakery::new(7);
    let count = AtomicUsize::new(0);
    small.install(|| {
        std::thread::sleep(Duration::from_millis(10));
        large.broadcast(|_| {
            std::thread::sleep(Duration::from_millis(10));
            small.broadcast(|_| {
                std::thread::sleep(Duration::from_millis(1));
                count.fetch_add(1, Ordering::Relaxed);
            });
        })
    });
    assert_eq!(count.into_inner(), 3 * 7);
}

#[test]
fn a_panic_on_one_baker_propagates_after_every_baker_ran() {
    let bakery = Bakery::new(7);
    let count = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        bakery.broadcast(|baker| {
            count.fetch_add(1, Ordering::SeqCst);
            if baker.index() == 3 {
                panic!("burnt on baker 3");
            }
        })
    }));
    assert_eq!(count.into_inner(), 7);
    let payload = result.expect_err("the panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"burnt on baker 3"));
    // The bakery keeps serving.
    assert_eq!(bakery.submit(|| 5).join().unwrap(), 5);
}

#[test]
fn panics_on_many_bakers_propagate_the_first_in_index_order() {
    let bakery = Bakery::new(7);
    let count = AtomicUsize::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        bakery.broadcast(|baker| {
            count.fetch_add(1, Ordering::SeqCst);
            if baker.index() % 2 == 0 {
                panic!("burnt on baker {}", baker.index());
            }
        })
    }));
    assert_eq!(count.into_inner(), 7);
    let payload = result.expect_err("a panic propagates");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("burnt on baker 0")
    );
}

#[test]
fn broadcast_sleep_race_never_hangs() {
    let bakery = Bakery::new(7);
    let until = Instant::now() + Duration::from_millis(200);
    let mut rounds = 0;
    while Instant::now() < until {
        let done = bakery.broadcast(|baker| {
            std::thread::sleep(Duration::from_micros(baker.index() as u64));
            baker.index()
        });
        assert_eq!(done.len(), 7);
        rounds += 1;
    }
    assert!(rounds > 0);
}

#[test]
fn broadcast_runs_after_the_local_deque_is_empty() {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    // Queue an order on the only baker's own deque, then broadcast: the
    // baker runs what its order queued before the broadcast.
    bakery.install(|| {
        bakehouse::submit(move || tx.send(22).unwrap()).detach();
    });
    bakery.broadcast(|_| ());
    assert_eq!(rx.try_recv(), Ok(22));
}

#[test]
fn broadcast_borrows_from_the_caller() {
    let bakery = Bakery::new(3);
    let totals: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
    bakery.broadcast(|baker| totals[baker.index()].fetch_add(baker.index() + 1, Ordering::SeqCst));
    let totals: Vec<usize> = totals.into_iter().map(AtomicUsize::into_inner).collect();
    assert_eq!(totals, [1, 2, 3]);
}

#[test]
fn every_baker_runs_it_at_the_same_time_when_all_are_free() {
    // A barrier for every baker: it only opens if each baker runs its share
    // while the others run theirs.
    let bakery = Bakery::new(4);
    let barrier = Barrier::new(4);
    let leaders = bakery.broadcast(|_| barrier.wait().is_leader());
    assert_eq!(leaders.iter().filter(|&&leader| leader).count(), 1);
}

#[test]
fn stand_ins_present_at_the_call_are_included() {
    // One baker blocked in a declared `blocking` call: a stand-in covers
    // for it, and both are bakers of the bakery while it lasts.
    let bakery = Bakery::builder()
        .bakers(1)
        .blocking_threshold(None)
        .build()
        .unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let blocked = bakery.submit(move || {
        bakehouse::blocking(|| {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    started_rx.recv().unwrap();
    // Wait until the stand-in has started and is ready for work.
    let stand_in = bakery
        .submit(|| Baker::current().unwrap().index())
        .join()
        .unwrap();
    assert_eq!(stand_in, 1);
    let bakery2 = bakery.clone();
    let broadcaster = std::thread::spawn(move || bakery2.broadcast(|baker| baker.index()));
    // The stand-in runs its share at once; the blocked baker only once it
    // returns from `blocking`.
    std::thread::sleep(Duration::from_millis(20));
    assert!(!broadcaster.is_finished(), "waits for the blocked baker");
    release_tx.send(()).unwrap();
    blocked.join().unwrap();
    assert_eq!(broadcaster.join().unwrap(), [0, 1]);
}

#[test]
fn a_bakery_whose_bakers_went_home_returns_no_results() {
    let bakery = Bakery::new(2);
    let handle = bakery.clone();
    bakery.shutdown();
    assert!(handle.broadcast(|baker| baker.index()).is_empty());
}

#[test]
fn broadcasts_from_many_threads_at_once_each_reach_every_baker() {
    let bakery = Arc::new(Bakery::new(3));
    let count = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let bakery = bakery.clone();
            let count = count.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let indices = bakery.broadcast(|baker| {
                        count.fetch_add(1, Ordering::Relaxed);
                        baker.index()
                    });
                    assert_eq!(indices, [0, 1, 2]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(count.load(Ordering::Relaxed), 4 * 50 * 3);
}
