//! The bakery used as a hostile user would: work submitted at unusual
//! moments of a baker's life, waits nested far deeper than usual, threads
//! that would wait on themselves, panics inside panic handling, and
//! shutdowns racing each other. Every case must end in exactly one outcome
//! per order, with no hang and no abort.

use bakehouse::{Bakery, OrderError, ShutdownTimeoutError};
use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

/// Long enough that only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A panic payload whose destructor panics again.
#[derive(Debug)]
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{} went off while being dropped", self.0);
    }
}

/// Raises a panic whose payload is a [`Bomb`].
fn explode(name: &'static str) -> ! {
    panic::panic_any(Bomb(name))
}

/// The name of a caught [`Bomb`], taken out of its box (which is freed)
/// and forgotten, so that it cannot go off here.
fn defuse(payload: Box<dyn Any + Send>) -> &'static str {
    let bomb: Bomb = *payload.downcast::<Bomb>().expect("a bomb");
    let name = bomb.0;
    std::mem::forget(bomb);
    name
}

// ---------------------------------------------------------------------------
// Work submitted at unusual moments of a baker's life
// ---------------------------------------------------------------------------

#[test]
fn an_order_submitted_from_the_stop_hook_reports_its_outcome() {
    let slot: Arc<Mutex<Option<Bakery>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let hook_slot = slot.clone();
    let tx = Mutex::new(tx);
    let bakery = Bakery::builder()
        .bakers(1)
        .on_baker_stop(move |_| {
            if let Some(bakery) = hook_slot.lock().unwrap().take() {
                tx.lock()
                    .unwrap()
                    .send(bakery.submit(|| "flushed"))
                    .unwrap();
            }
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(bakery.clone());
    bakery.shutdown();
    let order = rx.recv_timeout(PATIENCE).unwrap();
    // Submitted on a baker, it is work in progress: its baker runs it before
    // going home, rather than leaving it on a deque that nobody empties.
    assert_eq!(order.join_timeout(PATIENCE).unwrap(), "flushed");
}

#[test]
fn the_stop_hook_may_fork_join_scope_and_wait_on_queued_orders() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let slot: Arc<Mutex<Option<Bakery>>> = Arc::default();
    let hook_slot = slot.clone();
    let bakery = Bakery::builder()
        .bakers(2)
        .on_baker_stop(move |index| {
            let Some(bakery) = hook_slot.lock().unwrap().take() else {
                return;
            };
            let (a, b) = bakery.join(|| 20, || 22);
            let mut cells = [0; 4];
            bakery.scope(|s| {
                for (i, cell) in cells.iter_mut().enumerate() {
                    s.submit(move || *cell = i + 1);
                }
            });
            let late = bakery.submit(move || index);
            tx.lock()
                .unwrap()
                .send((a + b, cells, late.join()))
                .unwrap();
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(bakery.clone());
    bakery.shutdown();
    let (sum, cells, late) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(sum, 42);
    assert_eq!(cells, [1, 2, 3, 4], "scoped orders are never lost");
    assert!(late.unwrap() < 2, "run by one of the bakers");
}

thread_local! {
    static KEEP: RefCell<Option<(Bakery, mpsc::Sender<()>)>> = const { RefCell::new(None) };
}

#[test]
fn the_last_handle_dropped_by_a_bakers_thread_local_closes_the_bakery() {
    let bakery = Bakery::new(1);
    let kept = bakery.clone();
    let (dropped_tx, dropped) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    bakery
        .submit(move || {
            KEEP.with(|keep| *keep.borrow_mut() = Some((kept, dropped_tx)));
            started_tx.send(()).unwrap();
            thread::sleep(Duration::from_millis(100));
        })
        .detach();
    started.recv_timeout(PATIENCE).unwrap();
    assert!(bakery.shutdown_timeout(Duration::from_millis(10)).is_err());
    // The baker's thread ends, and its thread-local drops the last handle
    // there, on the thread that the shutdown would otherwise join. The
    // sender goes after the handle, so a disconnect means the drop returned.
    assert_eq!(
        dropped.recv_timeout(PATIENCE),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_bakers_thread_local_may_submit_and_shut_down_once_its_baker_left() {
    thread_local! {
        static LATE: RefCell<Option<LateWork>> = const { RefCell::new(None) };
    }
    struct LateWork {
        bakery: Bakery,
        report: mpsc::Sender<Result<u32, OrderError>>,
    }
    impl Drop for LateWork {
        fn drop(&mut self) {
            let order = self.bakery.submit(|| 7);
            let _ = self.report.send(order.join());
            self.bakery.clone().shutdown();
        }
    }
    let bakery = Bakery::new(2);
    let (report, outcome) = mpsc::channel();
    let door = bakery.clone();
    bakery
        .submit(move || {
            LATE.with(|late| {
                *late.borrow_mut() = Some(LateWork {
                    bakery: door,
                    report,
                })
            })
        })
        .join()
        .unwrap();
    bakery.shutdown();
    let outcome = outcome.recv_timeout(PATIENCE).unwrap();
    assert!(outcome.unwrap_err().is_rejected());
}

// ---------------------------------------------------------------------------
// Waits nested far deeper than usual
// ---------------------------------------------------------------------------

/// Each level waits on an order of the other bakery, which submits the
/// next level back to the first one: both bakers' waits nest `n` deep, and
/// the work each waits for sits in the other bakery's injector.
fn hop(here: Arc<Bakery>, there: Arc<Bakery>, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let (h, t) = (here.clone(), there.clone());
    there.submit(move || hop(t, h, n - 1)).join().unwrap() + 1
}

#[test]
fn waits_nested_two_hundred_deep_across_two_bakeries_finish() {
    for bakers in [1, 2] {
        let a = Arc::new(Bakery::new(bakers));
        let b = Arc::new(Bakery::new(bakers));
        let (a2, b2) = (a.clone(), b.clone());
        let order = a.submit(move || hop(a2, b2, 200));
        assert_eq!(
            order.join_timeout(PATIENCE).unwrap(),
            200,
            "{bakers} bakers"
        );
    }
}

/// `depth` scopes nested inside scoped orders that nobody joins, so every
/// level is a scope waiting for its orders; the innermost order is
/// submitted to the innermost scope by a thread outside the bakery, so it
/// sits in the injector while the only baker waits 20 scopes deep.
fn nested_scopes(bakery: &Bakery, depth: u32) -> u32 {
    let mut below = 0;
    bakery.scope(|s| {
        if depth == 0 {
            thread::scope(|t| {
                t.spawn(|| drop(s.submit(|| below = 1)));
            });
        } else {
            drop(s.submit(|| below = nested_scopes(bakery, depth - 1)));
        }
    });
    below + 1
}

#[test]
fn twenty_nested_scopes_waiting_on_outside_work_finish_on_one_baker() {
    let bakery = Arc::new(Bakery::new(1));
    let door = bakery.clone();
    let order = bakery.submit(move || nested_scopes(&door, 20));
    assert_eq!(order.join_timeout(PATIENCE).unwrap(), 22);
}

// ---------------------------------------------------------------------------
// Panics inside panic handling
// ---------------------------------------------------------------------------

#[test]
fn a_scope_survives_unjoined_panics_whose_payloads_panic_on_drop() {
    let bakery = Bakery::new(1);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.scope(|s| {
            s.submit(|| explode("first"));
            s.submit(|| explode("second"));
            s.submit(|| explode("third"));
        })
    }));
    assert_eq!(defuse(caught.unwrap_err()), "first");
    assert_eq!(bakery.submit(|| 5).join().unwrap(), 5, "still serving");
}

#[test]
fn a_panicking_scope_body_survives_an_unjoined_panic_that_panics_on_drop() {
    let bakery = Bakery::new(2);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.scope(|s| {
            s.submit(|| explode("order"));
            panic!("body")
        })
    }));
    assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "body");
}

#[test]
fn a_scope_re_raising_a_panic_survives_a_body_value_that_panics_on_drop() {
    let bakery = Bakery::new(1);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        bakery.scope(|s| {
            s.submit(|| panic!("order"));
            Bomb("value")
        })
    }));
    assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "order");
}

#[test]
fn join_survives_panics_whose_payloads_or_leftovers_panic_on_drop() {
    let bakery = Arc::new(Bakery::new(2));
    let door = bakery.clone();
    let outcome = bakery.submit(move || {
        // Both halves panic with bombs; `b` runs on the other baker first.
        let (started_tx, started) = mpsc::channel();
        let both = panic::catch_unwind(AssertUnwindSafe(|| {
            door.join(
                move || {
                    started.recv_timeout(PATIENCE).unwrap();
                    explode("left")
                },
                move || {
                    started_tx.send(()).unwrap();
                    explode("right")
                },
            )
        }));
        let both = defuse(both.unwrap_err());
        // `a` panics before anyone took `b`, whose closure then panics when
        // it is dropped unrun.
        let bomb = Bomb("unrun right half");
        let left = panic::catch_unwind(AssertUnwindSafe(|| {
            door.join(
                || -> u8 { panic!("left alone") },
                move || {
                    let _bomb = &bomb;
                    1
                },
            )
        }));
        let left = *left.unwrap_err().downcast::<&str>().unwrap();
        // `b` panics while `a`'s value panics on drop.
        let right = panic::catch_unwind(AssertUnwindSafe(|| {
            door.join(|| Bomb("left value"), || -> u8 { panic!("right alone") })
        }));
        let right = *right.unwrap_err().downcast::<&str>().unwrap();
        (both, left, right)
    });
    assert_eq!(
        outcome.join_timeout(PATIENCE).unwrap(),
        ("left", "left alone", "right alone")
    );
}

// ---------------------------------------------------------------------------
// Shutdown reports and racing shutdowns
// ---------------------------------------------------------------------------

#[test]
fn shutdown_timeout_on_one_of_its_own_bakers_says_so() {
    let bakery = Bakery::new(1);
    let door = bakery.clone();
    let report = bakery
        .submit(move || door.shutdown_timeout(Duration::from_secs(30)))
        .join()
        .unwrap();
    let error = report.unwrap_err();
    assert!(matches!(error, ShutdownTimeoutError::OnOwnBaker { .. }));
    assert_eq!(
        error.to_string(),
        "shutdown cannot wait for the bakers from one of them: 1 baker still at work"
    );
    drop(bakery);
}

#[test]
fn shutdown_timeout_with_no_time_on_an_idle_bakery_succeeds() {
    let bakery = Bakery::new(4);
    bakery.submit(|| ()).join().unwrap();
    // Let every baker fall asleep.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(bakery.shutdown_timeout(Duration::ZERO), Ok(()));
}

#[test]
fn shutdown_timeout_reports_in_plain_words() {
    let bakery = Bakery::new(2);
    let (release_tx, release) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let busy = bakery.submit(move || {
        started_tx.send(()).unwrap();
        release.recv().unwrap()
    });
    started.recv_timeout(PATIENCE).unwrap();
    let error = bakery
        .shutdown_timeout(Duration::from_millis(20))
        .unwrap_err();
    assert_eq!(error.busy_bakers(), 1);
    assert_eq!(
        error.to_string(),
        "shutdown timed out with 1 baker still at work and 0 orders queued"
    );
    release_tx.send(()).unwrap();
    busy.join().unwrap();
}

/// Stays in a baker's thread-local until the thread ends, then takes its
/// time before it records that it was dropped.
struct SlowFarewell(Arc<AtomicUsize>);

impl Drop for SlowFarewell {
    fn drop(&mut self) {
        thread::sleep(Duration::from_millis(50));
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static FAREWELL: RefCell<Option<SlowFarewell>> = const { RefCell::new(None) };
}

#[test]
fn every_concurrent_shutdown_returns_only_once_the_threads_are_gone() {
    for _ in 0..3 {
        let gone = Arc::new(AtomicUsize::new(0));
        let bakers = 2;
        let bakery = Bakery::builder()
            .bakers(bakers)
            .on_baker_start({
                let gone = gone.clone();
                move |_| FAREWELL.with(|f| *f.borrow_mut() = Some(SlowFarewell(gone.clone())))
            })
            .build()
            .unwrap();
        let callers = 3;
        let barrier = Arc::new(Barrier::new(callers));
        let closers: Vec<_> = (0..callers)
            .map(|i| {
                let (bakery, barrier, gone) = (bakery.clone(), barrier.clone(), gone.clone());
                thread::spawn(move || {
                    barrier.wait();
                    match i {
                        0 => bakery.shutdown(),
                        1 => bakery.shutdown_now(),
                        _ => bakery.shutdown_timeout(PATIENCE).unwrap(),
                    }
                    gone.load(Ordering::SeqCst)
                })
            })
            .collect();
        drop(bakery);
        for closer in closers {
            assert_eq!(closer.join().unwrap(), bakers, "every thread was joined");
        }
    }
}
