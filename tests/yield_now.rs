//! `yield_now`: one queued order let through from inside a long order.

use bakehouse::{yield_now, Bakery, Yield};
use std::sync::mpsc;

#[test]
fn yield_now_to_a_queued_order() {
    // rayon-core's `yield_now_to_spawn`: the queued order must have started
    // once the yield returns.
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    bakery.submit(move || tx.send(22).unwrap()).detach();
    let did = bakery.install(yield_now);
    assert_eq!(rx.recv().unwrap(), 22);
    // The outside order may have been taken before `install`'s carrier.
    assert!(matches!(did, Some(Yield::Executed | Yield::Idle)));
}

#[test]
fn yield_now_runs_what_the_order_itself_queued() {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    let rx = std::sync::Mutex::new(rx);
    let got = bakery.install(|| {
        bakehouse::submit(move || tx.send("proofed").unwrap()).detach();
        let did = yield_now();
        (did, rx.lock().unwrap().try_recv())
    });
    assert_eq!(got, (Some(Yield::Executed), Ok("proofed")));
}

#[test]
fn yield_now_on_an_idle_bakery_is_idle() {
    let bakery = Bakery::new(2);
    assert_eq!(bakery.install(yield_now), Some(Yield::Idle));
}

#[test]
fn yield_now_off_a_baker_is_none() {
    assert_eq!(yield_now(), None);
}

#[test]
fn a_long_order_yielding_lets_every_queued_order_through() {
    let bakery = Bakery::new(1);
    let (tx, rx) = mpsc::channel();
    let ran = bakery.install(|| {
        for i in 0..10 {
            let tx = tx.clone();
            bakehouse::submit(move || tx.send(i).unwrap()).detach();
        }
        let mut ran = 0;
        while yield_now() == Some(Yield::Executed) {
            ran += 1;
        }
        ran
    });
    assert_eq!(ran, 10);
    drop(tx);
    let mut got: Vec<i32> = rx.iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}
