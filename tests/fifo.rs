//! FIFO orders (`Bakery::submit_fifo`, `Scope::submit_fifo`), with
//! rayon-core's order tests ported: on one baker nothing is stolen, so the
//! order in which orders run is the order in which they are taken.

use bakehouse::{Bakery, Scope};
use std::sync::{mpsc, Mutex};

/// Runs `body` on the only baker of a fresh one-baker bakery.
fn on_one_baker<R: Send>(body: impl FnOnce(&Bakery) -> R + Send) -> R {
    let bakery = Bakery::new(1);
    bakery.install(|| body(&bakery))
}

/// Ten scoped orders, each submitting ten more, with `spawn` for both.
fn scope_order(spawn: for<'s> fn(&'s Scope<'s, '_>, Box<dyn FnOnce() + Send + 's>)) -> Vec<i32> {
    on_one_baker(|bakery| {
        let log = Mutex::new(Vec::new());
        bakery.scope(|s| {
            let log = &log;
            for i in 0..10 {
                spawn(
                    s,
                    Box::new(move || {
                        for j in 0..10 {
                            spawn(s, Box::new(move || log.lock().unwrap().push(i * 10 + j)));
                        }
                    }),
                );
            }
        });
        log.into_inner().unwrap()
    })
}

fn lifo<'s>(s: &'s Scope<'s, '_>, f: Box<dyn FnOnce() + Send + 's>) {
    s.submit(f);
}

fn fifo<'s>(s: &'s Scope<'s, '_>, f: Box<dyn FnOnce() + Send + 's>) {
    s.submit_fifo(f);
}

#[test]
fn lifo_order() {
    assert_eq!(scope_order(lifo), (0..100).rev().collect::<Vec<_>>());
}

#[test]
fn fifo_order() {
    assert_eq!(scope_order(fifo), (0..100).collect::<Vec<_>>());
}

/// Ten orders of an outer scope, each opening an inner scope of ten.
fn nested_order(
    outer: for<'s> fn(&'s Scope<'s, '_>, Box<dyn FnOnce() + Send + 's>),
    inner: for<'s> fn(&'s Scope<'s, '_>, Box<dyn FnOnce() + Send + 's>),
) -> Vec<i32> {
    on_one_baker(|bakery| {
        let log = Mutex::new(Vec::new());
        bakery.scope(|s| {
            let log = &log;
            for i in 0..10 {
                outer(
                    s,
                    Box::new(move || {
                        bakery.scope(|s| {
                            for j in 0..10 {
                                inner(s, Box::new(move || log.lock().unwrap().push(i * 10 + j)));
                            }
                        })
                    }),
                );
            }
        });
        log.into_inner().unwrap()
    })
}

#[test]
fn nested_lifo_order() {
    assert_eq!(nested_order(lifo, lifo), (0..100).rev().collect::<Vec<_>>());
}

#[test]
fn nested_fifo_order() {
    assert_eq!(nested_order(fifo, fifo), (0..100).collect::<Vec<_>>());
}

#[test]
fn nested_lifo_fifo_order() {
    let expected: Vec<i32> = (0..10)
        .rev()
        .flat_map(|i| (0..10).map(move |j| i * 10 + j))
        .collect();
    assert_eq!(nested_order(lifo, fifo), expected);
}

#[test]
fn nested_fifo_lifo_order() {
    let expected: Vec<i32> = (0..10)
        .flat_map(|i| (0..10).rev().map(move |j| i * 10 + j))
        .collect();
    assert_eq!(nested_order(fifo, lifo), expected);
}

/// Ten orders, each submitting ten more, through the bakery itself.
fn submit_order(outer_fifo: bool, inner_fifo: bool) -> Vec<i32> {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    let b = bakery.clone();
    bakery.install(move || {
        for i in 0..10 {
            let tx = tx.clone();
            let inner = b.clone();
            let order = move || {
                for j in 0..10 {
                    let tx = tx.clone();
                    let send = move || tx.send(i * 10 + j).unwrap();
                    if inner_fifo {
                        inner.submit_fifo(send).detach();
                    } else {
                        inner.submit(send).detach();
                    }
                }
            };
            if outer_fifo {
                b.submit_fifo(order).detach();
            } else {
                b.submit(order).detach();
            }
        }
    });
    rx.iter().collect()
}

#[test]
fn submit_lifo_order() {
    assert_eq!(
        submit_order(false, false),
        (0..100).rev().collect::<Vec<_>>()
    );
}

#[test]
fn submit_fifo_order() {
    assert_eq!(submit_order(true, true), (0..100).collect::<Vec<_>>());
}

#[test]
fn submit_lifo_fifo_order() {
    let expected: Vec<i32> = (0..10)
        .rev()
        .flat_map(|i| (0..10).map(move |j| i * 10 + j))
        .collect();
    assert_eq!(submit_order(false, true), expected);
}

#[test]
fn submit_fifo_lifo_order() {
    let expected: Vec<i32> = (0..10)
        .flat_map(|i| (0..10).rev().map(move |j| i * 10 + j))
        .collect();
    assert_eq!(submit_order(true, false), expected);
}

#[test]
fn fifo_orders_from_outside_are_taken_in_submission_order() {
    // From outside, FIFO orders are promised to be taken oldest first.
    let bakery = Bakery::new(1);
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let gate = bakery.submit(move || {
        started_tx.send(()).unwrap();
        gate_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();
    let log = std::sync::Arc::new(Mutex::new(Vec::new()));
    let orders: Vec<_> = (0..20)
        .map(|i| {
            let log = log.clone();
            bakery.submit_fifo(move || log.lock().unwrap().push(i))
        })
        .collect();
    gate_tx.send(()).unwrap();
    gate.join().unwrap();
    for order in orders {
        order.join().unwrap();
    }
    assert_eq!(*log.lock().unwrap(), (0..20).collect::<Vec<_>>());
}

#[test]
fn fifo_orders_report_their_outcome_like_any_order() {
    let bakery = Bakery::new(2);
    let value = bakery.submit_fifo(|| 6 * 7);
    let burnt = bakery.submit_fifo(|| -> u8 { panic!("too hot") });
    assert_eq!(value.join().unwrap(), 42);
    assert!(burnt.join().unwrap_err().is_panic());
    // Joined from the baker that queued it, too.
    let inner = bakery.clone();
    let nested = bakery
        .submit(move || inner.submit_fifo(|| "rye").join().unwrap())
        .join()
        .unwrap();
    assert_eq!(nested, "rye");
}

#[test]
fn shutdown_now_cancels_queued_fifo_orders() {
    let bakery = Bakery::new(1);
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let gate = bakery.submit(move || {
        started_tx.send(()).unwrap();
        gate_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();
    let queued: Vec<_> = (0..5).map(|i| bakery.submit_fifo(move || i)).collect();
    let handle = bakery.clone();
    let closer = std::thread::spawn(move || handle.shutdown_now());
    while !bakery.is_closed() {
        std::thread::yield_now();
    }
    gate_tx.send(()).unwrap();
    closer.join().unwrap();
    assert!(gate.join().is_ok());
    for order in queued {
        assert!(order.join().unwrap_err().is_cancelled());
    }
}
