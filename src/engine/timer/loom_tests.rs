//! Loom models of the timer: an insert racing the timer thread, a close and
//! a cancel through the handle, with the real [`Timer`] and real task
//! blocks. The bakers are stood in for by running a fired task on the timer
//! thread (the injector's own protocol is modelled in
//! `src/engine/injector` and `tests/loom.rs`).
//!
//! Loom has no clock: a timed wait waits for a notification, so a deadline
//! in the future is never reached in these models, and a deadline in the
//! past is due at once.
//!
//! The kind and the closure hold loom `Arc`s, so loom's leak check proves
//! each block and closure was freed exactly once.
//!
//! Which change makes which model fail (each checked):
//!
//! * `a_new_earliest_deadline_wakes_the_timer` deadlocks if
//!   [`Timer::insert`] does not notify for a new earliest entry: the thread
//!   waits for the far entry while the due one is never fired.
//! * `the_first_insert_races_close` finds an order with no outcome if
//!   [`Timer::insert`] does not store `used` (a close then skips the timer
//!   that the insert starts), and deadlocks joining the timer thread if the
//!   insert drops its `SeqCst` fence between storing `used` and reading
//!   `closed`.
//! * If [`Timer::close`] sets `closed` without taking the heap (so the
//!   thread returns and the entries are never cancelled), every model
//!   fails: `close_races_insert_and_the_timer` finds an order with no
//!   outcome, `a_new_earliest_deadline_wakes_the_timer` deadlocks joining
//!   the far order, and `cancel_races_close_with_one_outcome` fails loom's
//!   leak check (the block is never freed).

use super::*;
use crate::engine::job::Mode;
use crate::engine::registry::RegistryId;
use crate::engine::sync::{fence, Ordering};
use crate::error::{OrderError, PanicError};
use loom::sync::atomic::AtomicUsize as Counter;
use std::time::Duration;

/// A kind that proves its release through loom's leak check.
struct Probe(Arc<()>);

impl TaskKind for Probe {
    const CANCELLABLE: bool = true;

    fn unobserved_panic(&self, _panic: PanicError) {}

    fn released(self) {
        drop(self.0);
    }
}

/// A delayed task whose closure counts its runs, and its handle.
fn delayed(runs: &Arc<Counter>) -> (TimedTask, RawOrder<Arc<()>>) {
    let runs = runs.clone();
    let task = NewTask::new_timed(
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
            Arc::new(())
        },
        Probe(Arc::new(())),
        RegistryId::none(),
    );
    // SAFETY: the one queue reference of the task.
    let timed = unsafe { task.timed_ref() };
    (timed, task.into_handle())
}

/// Starts a timer thread that runs each fired task right there, in place
/// of the bakers.
fn start(timer: &Arc<Timer>) -> Option<thread::JoinHandle<()>> {
    let timer = timer.clone();
    Some(loom::thread::spawn(move || {
        timer.run(|task| {
            task.into_due().execute(Mode::Run);
        });
    }))
}

/// Inserts, and rejects what the timer refuses, as `submit_at` does.
fn insert(timer: &Arc<Timer>, deadline: Instant, task: TimedTask) {
    if let Err(task) = timer.insert(deadline, task, || false, || start(timer)) {
        task.reject();
    }
}

fn past() -> Instant {
    Instant::now() - Duration::from_millis(1)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// A thread already waiting for a far deadline is woken by a new, earlier
/// one, and fires it: the handle gets its value without any close.
#[test]
fn a_new_earliest_deadline_wakes_the_timer() {
    loom::model(|| {
        let timer = Arc::new(Timer::new());
        let runs = Arc::new(Counter::new(0));
        let (far_task, far_order) = delayed(&runs);
        insert(&timer, far(), far_task);
        let (due_task, due_order) = delayed(&runs);
        insert(&timer, past(), due_task);
        assert!(due_order.join().is_ok());
        timer.close();
        timer.join();
        assert!(matches!(far_order.join(), Err(OrderError::Cancelled)));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// An insert (of a due order, after a far one started the thread) racing a
/// close: each order either ran once or reports `Cancelled` or `Rejected`,
/// nothing is left without an outcome, and nothing waits for the far one.
#[test]
fn close_races_insert_and_the_timer() {
    loom::model(|| {
        let timer = Arc::new(Timer::new());
        let runs = Arc::new(Counter::new(0));
        let (far_task, far_order) = delayed(&runs);
        insert(&timer, far(), far_task);
        let closer = {
            let timer = timer.clone();
            loom::thread::spawn(move || timer.close())
        };
        let (due_task, due_order) = delayed(&runs);
        insert(&timer, past(), due_task);
        closer.join().unwrap();
        timer.join();
        assert!(far_order.is_finished() && due_order.is_finished());
        assert!(matches!(far_order.join(), Err(OrderError::Cancelled)));
        match due_order.join() {
            Ok(_) => assert_eq!(runs.load(Ordering::SeqCst), 1),
            Err(OrderError::Cancelled | OrderError::Rejected) => {
                assert_eq!(runs.load(Ordering::SeqCst), 0)
            }
            Err(other) => panic!("unexpected outcome {other}"),
        }
    });
}

/// The handle cancelling a far order while the timer closes: `Cancelled`
/// either way, the closure dropped once, the block freed once.
#[test]
fn cancel_races_close_with_one_outcome() {
    loom::model(|| {
        let timer = Arc::new(Timer::new());
        let runs = Arc::new(Counter::new(0));
        let (task, order) = delayed(&runs);
        insert(&timer, far(), task);
        let closer = {
            let timer = timer.clone();
            loom::thread::spawn(move || timer.close())
        };
        assert!(order.cancel());
        closer.join().unwrap();
        timer.join();
        assert!(order.is_finished());
        assert!(matches!(order.join(), Err(OrderError::Cancelled)));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    });
}

/// The very first insert racing a close that may skip a timer never used:
/// the insert reads the bakery's `closed` flag as `submit_at` does. The
/// order runs, or reports `Cancelled` or `Rejected`; it is never left in a
/// timer nobody closes.
#[test]
fn the_first_insert_races_close() {
    loom::model(|| {
        let timer = Arc::new(Timer::new());
        let closed = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let runs = Arc::new(Counter::new(0));
        let closer = {
            let (timer, closed) = (timer.clone(), closed.clone());
            loom::thread::spawn(move || {
                closed.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                timer.close();
            })
        };
        let (task, order) = delayed(&runs);
        let is_closed = || closed.load(Ordering::Acquire);
        if let Err(task) = timer.insert(far(), task, is_closed, || start(&timer)) {
            task.reject();
        }
        closer.join().unwrap();
        timer.join();
        assert!(order.is_finished(), "the order has an outcome");
        assert!(matches!(
            order.join(),
            Err(OrderError::Cancelled | OrderError::Rejected)
        ));
    });
}
