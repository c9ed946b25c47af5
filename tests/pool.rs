//! The core pool: submitting, joining, names, stealing, sleeping, panics,
//! shutdown and bad input.

use bakehouse::{Baker, Bakery, BuildError, OrderError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Long enough that only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn submitted_orders_return_their_values() {
    let bakery = Bakery::new(3);
    let orders: Vec<_> = (0..100).map(|i| bakery.submit(move || i * i)).collect();
    for (i, order) in orders.into_iter().enumerate() {
        assert_eq!(order.join().unwrap(), i * i);
    }
}

#[test]
fn bakers_are_named_and_know_who_they_are() {
    let bakery = Bakery::builder()
        .bakers(3)
        .baker_name(|i| format!("pastry-{i}"))
        .build()
        .unwrap();
    assert_eq!(bakery.bakers(), 3);
    let gate = Arc::new(Barrier::new(3));
    let orders: Vec<_> = (0..3)
        .map(|_| {
            let gate = gate.clone();
            bakery.submit(move || {
                // All three run at once, so they are on three different bakers.
                gate.wait();
                let me = Baker::current().expect("runs on a baker");
                let thread = std::thread::current().name().map(str::to_owned);
                (me.index(), me.name().to_owned(), thread, me.bakers())
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for order in orders {
        let (index, name, thread, bakers) = order.join().unwrap();
        assert_eq!(name, format!("pastry-{index}"));
        assert_eq!(thread.as_deref(), Some(name.as_str()));
        assert_eq!(bakers, 3);
        assert!(seen.insert(index), "baker {index} ran two orders at once");
    }
    assert_eq!(seen, HashSet::from([0, 1, 2]));
    assert!(Baker::current().is_none());
}

#[test]
fn default_names_are_baker_index() {
    let bakery = Bakery::new(1);
    let name = bakery.submit(|| Baker::current().unwrap().name().to_owned());
    assert_eq!(name.join().unwrap(), "baker-0");
}

#[test]
fn default_bakery_has_one_baker_per_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(Bakery::default().bakers(), cpus);
}

#[test]
fn idle_bakers_steal_orders_submitted_inside_a_busy_baker() {
    let bakery = Arc::new(Bakery::new(4));
    let door = bakery.clone();
    let outer = bakery.submit(move || {
        let me = Baker::current().unwrap().index();
        // These go onto this baker's own deque; it stays busy submitting and
        // then returns the handles without joining, so any order run by
        // another baker was stolen.
        let inner: Vec<_> = (0..400)
            .map(|_| {
                door.submit(|| {
                    let started = Instant::now();
                    while started.elapsed() < Duration::from_micros(100) {
                        std::hint::spin_loop();
                    }
                    Baker::current().unwrap().index()
                })
            })
            .collect();
        (me, inner)
    });
    let (submitter, inner) = outer.join().unwrap();
    let ran_on: HashSet<usize> = inner.into_iter().map(|o| o.join().unwrap()).collect();
    assert!(
        ran_on.iter().any(|&baker| baker != submitter),
        "no order was stolen from baker {submitter}: {ran_on:?}"
    );
}

#[test]
fn no_wake_up_is_lost_while_bakers_fall_asleep() {
    // Submit at moments spread around the time bakers take to give up
    // searching and go to sleep; a lost wake-up would leave an order stranded
    // and the bounded join would time out.
    let bakery = Bakery::new(2);
    for round in 0..300u64 {
        std::thread::sleep(Duration::from_micros((round * 37) % 400));
        let order = bakery.submit(move || round);
        match order.join_timeout(PATIENCE) {
            Ok(value) => assert_eq!(value, round),
            Err(error) => panic!("round {round}: order stranded: {error:?}"),
        }
    }
}

#[test]
fn a_panicking_order_reports_its_panic_and_the_baker_keeps_serving() {
    let bakery = Bakery::new(1);
    let burnt = bakery.submit(|| -> u8 { panic!("oven on fire") });
    match burnt.join() {
        Err(OrderError::Panicked(panic)) => assert_eq!(panic.message(), "oven on fire"),
        other => panic!("expected a panic, got {other:?}"),
    }
    // The one baker survived and keeps serving.
    let after = bakery.submit(|| Baker::current().unwrap().index());
    assert_eq!(after.join().unwrap(), 0);
    let many: Vec<_> = (0..50)
        .map(|i| {
            bakery.submit(move || {
                if i % 5 == 0 {
                    panic!("order {i}");
                }
                i
            })
        })
        .collect();
    for (i, order) in many.into_iter().enumerate() {
        match order.join() {
            Ok(value) => assert_eq!(value, i),
            Err(error) => {
                assert_eq!(i % 5, 0);
                assert_eq!(error.to_string(), format!("order panicked: order {i}"));
            }
        }
    }
}

#[test]
fn panic_payload_survives_for_resume_unwind() {
    let bakery = Bakery::new(1);
    let error = bakery
        .submit(|| std::panic::panic_any(7_u64))
        .join()
        .unwrap_err();
    let payload = error.into_panic().unwrap().into_payload();
    assert_eq!(*payload.downcast::<u64>().unwrap(), 7);
}

#[test]
fn detached_panics_reach_the_panic_handler() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let bakery = Bakery::builder()
        .bakers(2)
        .panic_handler(move |panic| tx.lock().unwrap().send(panic.message().to_owned()).unwrap())
        .build()
        .unwrap();
    for i in 0..5 {
        drop(bakery.submit(move || panic!("detached {i}")));
    }
    let mut seen: Vec<String> = (0..5).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    seen.sort();
    let expected: Vec<String> = (0..5).map(|i| format!("detached {i}")).collect();
    assert_eq!(seen, expected);
    // A joined panic is the joiner's, not the handler's.
    assert!(bakery.submit(|| panic!("joined")).join().is_err());
    bakery.shutdown();
    assert!(rx.try_recv().is_err());
}

#[test]
fn shutdown_finishes_every_queued_order() {
    let bakery = Bakery::new(1);
    let (go_tx, go) = mpsc::channel::<()>();
    let blocker = bakery.submit(move || go.recv().unwrap());
    let queued: Vec<_> = (0..100).map(|i| bakery.submit(move || i + 1)).collect();
    let closer = std::thread::spawn(move || bakery.shutdown());
    go_tx.send(()).unwrap();
    closer.join().unwrap();
    blocker.join().unwrap();
    let total: usize = queued.into_iter().map(|o| o.join().unwrap()).sum();
    assert_eq!(total, (1..=100).sum::<usize>());
}

#[test]
fn after_shutdown_orders_are_rejected_and_try_submit_hands_the_closure_back() {
    let bakery = Bakery::new(2);
    let side_door = bakery.clone();
    bakery.shutdown();
    assert!(side_door.is_closed());
    let rejected = side_door.submit(|| 1);
    assert!(rejected.is_finished());
    assert!(matches!(rejected.join(), Err(OrderError::Rejected)));
    let recipe = String::from("rye");
    let refused = side_door.try_submit(move || recipe).unwrap_err();
    assert_eq!(refused.to_string(), "the bakery no longer takes orders");
    assert_eq!(refused.into_inner()(), "rye");
}

#[test]
fn rejected_closures_are_dropped_not_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let token = Arc::new(());
    let bakery = Bakery::new(1);
    let side_door = bakery.clone();
    bakery.shutdown();
    let order = {
        let ran = ran.clone();
        let token = token.clone();
        side_door.submit(move || {
            let _keep = token;
            ran.fetch_add(1, Ordering::SeqCst);
        })
    };
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the rejected closure was dropped"
    );
    assert!(order.join().unwrap_err().is_rejected());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn dropping_the_last_handle_waits_for_queued_orders() {
    let done = Arc::new(AtomicUsize::new(0));
    let bakery = Bakery::new(2);
    for _ in 0..50 {
        let done = done.clone();
        drop(bakery.submit(move || {
            std::thread::sleep(Duration::from_micros(200));
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    drop(bakery);
    assert_eq!(done.load(Ordering::SeqCst), 50);
}

#[test]
fn dropping_the_last_handle_inside_a_baker_does_not_deadlock() {
    let (stopped_tx, stopped) = mpsc::channel();
    let stopped_tx = Mutex::new(stopped_tx);
    let bakery = Bakery::builder()
        .bakers(2)
        .on_baker_stop(move |i| stopped_tx.lock().unwrap().send(i).unwrap())
        .build()
        .unwrap();
    let last = bakery.clone();
    let (go_tx, go) = mpsc::channel::<()>();
    let order = bakery.submit(move || {
        go.recv().unwrap();
        drop(last); // the last handle, dropped on one of its own bakers
        "still here"
    });
    drop(bakery); // not the last handle: returns at once
    go_tx.send(()).unwrap();
    assert_eq!(order.join().unwrap(), "still here");
    let mut gone: Vec<usize> = (0..2)
        .map(|_| stopped.recv_timeout(PATIENCE).unwrap())
        .collect();
    gone.sort();
    assert_eq!(gone, [0, 1], "both bakers went home");
}

#[test]
fn shutdown_called_on_a_baker_returns_and_the_queue_still_runs() {
    let bakery = Bakery::new(1);
    let queued: Vec<_> = {
        let door = bakery.clone();
        let (go_tx, go) = mpsc::channel::<()>();
        let closer = bakery.submit(move || {
            go.recv().unwrap();
            door.shutdown(); // cannot wait for itself
        });
        let queued = (0..10).map(|i| bakery.submit(move || i)).collect();
        go_tx.send(()).unwrap();
        closer.join().unwrap();
        queued
    };
    let values: Vec<i32> = queued.into_iter().map(|o| o.join().unwrap()).collect();
    assert_eq!(values, (0..10).collect::<Vec<_>>());
    assert!(bakery.submit(|| ()).join().unwrap_err().is_rejected());
}

#[test]
fn bad_input_gets_a_clear_error() {
    let error = Bakery::builder().bakers(0).build().unwrap_err();
    assert!(matches!(error, BuildError::NoBakers));
    assert_eq!(error.to_string(), "a bakery needs at least one baker");

    let error = Bakery::builder().bakers(1 << 20).build().unwrap_err();
    assert!(matches!(error, BuildError::TooManyBakers { requested, .. } if requested == 1 << 20));
    assert_eq!(
        error.to_string(),
        "1048576 bakers requested but a bakery holds at most 65535"
    );

    let error = Bakery::builder()
        .bakers(2)
        .baker_name(|i| {
            if i == 1 {
                "nul\0here".into()
            } else {
                "ok".into()
            }
        })
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        BuildError::NameContainsNul { index: 1, .. }
    ));
    assert!(error
        .to_string()
        .starts_with("the name of baker 1 contains a NUL byte"));

    let error = Bakery::builder().stack_size(0).build().unwrap_err();
    assert!(matches!(error, BuildError::ZeroStackSize));

    let error = Bakery::builder()
        .bakers(2)
        .stack_size(1 << 62)
        .build()
        .unwrap_err();
    assert!(matches!(error, BuildError::Spawn { index: 0, .. }));
    assert_eq!(error.to_string(), "failed to start baker 0");
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
#[should_panic(expected = "a bakery needs at least one baker")]
fn new_with_zero_bakers_panics_with_the_error_message() {
    let _ = Bakery::new(0);
}

#[test]
fn many_submitters_every_order_runs_exactly_once() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    let bakery = Bakery::new(3);
    let runs: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..THREADS * PER_THREAD)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let bakery = &bakery;
            let runs = runs.clone();
            s.spawn(move || {
                let orders: Vec<_> = (0..PER_THREAD)
                    .map(|i| {
                        let id = t * PER_THREAD + i;
                        let runs = runs.clone();
                        bakery.submit(move || {
                            runs[id].fetch_add(1, Ordering::Relaxed);
                            id
                        })
                    })
                    .collect();
                for (i, order) in orders.into_iter().enumerate() {
                    assert_eq!(order.join().unwrap(), t * PER_THREAD + i);
                }
            });
        }
    });
    for (id, count) in runs.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 1, "order {id}");
    }
}

#[test]
fn debug_output_is_terse_and_informative() {
    let bakery = Bakery::new(2);
    assert_eq!(
        format!("{bakery:?}"),
        "Bakery { bakers: 2, closed: false, .. }"
    );
    let order = bakery.submit(|| 1);
    let shown = format!("{order:?}");
    assert!(shown.starts_with("Order { finished: "), "{shown}");
    order.join().unwrap();
    let builder = Bakery::builder().bakers(2).baker_name(|i| i.to_string());
    assert_eq!(
        format!("{builder:?}"),
        "BakeryBuilder { bakers: Some(2), max_bakers: None, keep_alive: None, \
         blocking_threshold: None, baker_name: Some(\"<closure>\"), stack_size: None, panic_handler: None, \
         on_baker_start: None, on_baker_stop: None }"
    );
    let baker = bakery.submit(|| Baker::current().unwrap()).join().unwrap();
    assert!(format!("{baker:?}").starts_with("Baker { index: "));
}

#[test]
fn public_types_are_send_and_sync_where_they_should_be() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Bakery>();
    send_sync::<bakehouse::Order<String>>();
    send_sync::<bakehouse::ScopedOrder<'static, String>>();
    send_sync::<bakehouse::Scope<'static, 'static>>();
    send_sync::<Baker>();
    send_sync::<OrderError>();
    send_sync::<bakehouse::PanicError>();
    send_sync::<BuildError>();
    send_sync::<bakehouse::ShutdownTimeoutError>();
    send_sync::<bakehouse::TrySubmitError<fn()>>();
    send_sync::<bakehouse::TryJoinError<bakehouse::Order<u8>>>();
    send_sync::<bakehouse::JoinTimeoutError<bakehouse::Order<u8>>>();
    send::<bakehouse::BakeryBuilder>();
}
