//! Loom models of the order state machine: every interleaving of a baker
//! running (or cancelling) an order from its queue against the handle
//! joining, cancelling, polling, or being dropped.
//!
//! A test kind holds a loom `Arc`, so loom's leak check at the end of every
//! execution proves the block was freed exactly when the last reference
//! went; closures and values carry loom `Arc`s too, so a value dropped twice
//! or never is caught the same way.

use super::*;
use crate::engine::job::Mode;
use crate::engine::sync::{Arc, Ordering};
use crate::error::{OrderError, PanicError};
use loom::sync::atomic::AtomicUsize as Counter;

/// A kind that records unobserved panics and proves its release.
struct Probe {
    alive: Arc<()>,
    unobserved: Arc<Counter>,
}

impl TaskKind for Probe {
    const CANCELLABLE: bool = true;

    fn unobserved_panic(&self, _panic: PanicError) {
        self.unobserved.fetch_add(1, Ordering::SeqCst);
    }

    fn released(self) {
        drop(self.alive);
    }
}

fn probe() -> (Probe, Arc<Counter>) {
    let unobserved = Arc::new(Counter::new(0));
    (
        Probe {
            alive: Arc::new(()),
            unobserved: unobserved.clone(),
        },
        unobserved,
    )
}

type Baked = Arc<()>;

/// A task whose closure counts its runs and returns a loom `Arc`, and the
/// queue's reference to it.
fn task(runs: &Arc<Counter>) -> (JobRef, NewTask<impl FnOnce() -> Baked + Send, Baked, Probe>) {
    let runs = runs.clone();
    let (kind, _) = probe();
    let new = NewTask::new(
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
            Arc::new(())
        },
        kind,
        RegistryId::none(),
        None,
    );
    // SAFETY: the one queue reference of the task.
    let job = unsafe { new.job_ref() };
    (job, new)
}

fn split(runs: &Arc<Counter>) -> (JobRef, RawOrder<Baked>) {
    let (job, new) = task(runs);
    (job, new.into_handle())
}

#[test]
fn finish_races_join() {
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, order) = split(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        let value = order.join().expect("the order ran");
        drop(value);
        baker.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn finish_races_dropping_the_handle() {
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, order) = split(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        drop(order);
        baker.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // The value, the kind and the block are freed: loom's leak check.
    });
}

#[test]
fn cancel_races_run_with_exactly_one_outcome() {
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, order) = split(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        let cancelled = order.cancel();
        let outcome = order.join();
        baker.join().unwrap();
        let ran = runs.load(Ordering::SeqCst);
        if cancelled {
            assert_eq!(ran, 0);
            assert!(matches!(outcome, Err(OrderError::Cancelled)));
        } else {
            assert_eq!(ran, 1);
            assert!(outcome.is_ok());
        }
    });
}

#[test]
fn shutdown_cancel_races_handle_cancel_and_join() {
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, order) = split(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::CancelOrRun));
        let by_handle = order.cancel();
        let outcome = order.join();
        baker.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(by_handle);
        assert!(matches!(outcome, Err(OrderError::Cancelled)));
    });
}

#[test]
fn joiner_claiming_races_the_queue() {
    // A baker of the same pool joins: it claims and runs the order itself
    // while another baker pops the queue entry.
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, order) = split(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        let ran_here = order.run_here();
        let outcome = order.join();
        baker.join().unwrap();
        assert!(outcome.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "ran here: {ran_here}");
    });
}

#[test]
fn rejecting_after_push_races_the_queue() {
    // A submitter that saw the pool close after pushing rejects the order,
    // while a baker may already be taking it.
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, new) = task(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        let handed_back = new.reject();
        let order = new.into_handle();
        let outcome = order.join();
        baker.join().unwrap();
        match handed_back {
            Some(func) => {
                assert!(matches!(outcome, Err(OrderError::Rejected)));
                assert_eq!(runs.load(Ordering::SeqCst), 0);
                drop(func);
            }
            None => {
                assert!(outcome.is_ok());
                assert_eq!(runs.load(Ordering::SeqCst), 1);
            }
        }
    });
}

/// Wakes a parked loom thread.
struct Unparker(loom::thread::Thread);

impl std::task::Wake for Unparker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

#[test]
fn a_polled_future_is_woken_by_completion() {
    loom::model(|| {
        let runs = Arc::new(Counter::new(0));
        let (job, mut order) = split(&runs);
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        let waker = std::task::Waker::from(std::sync::Arc::new(Unparker(loom::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let outcome = loop {
            match order.poll_outcome(&mut cx) {
                std::task::Poll::Ready(outcome) => break outcome,
                std::task::Poll::Pending => loom::thread::park(),
            }
        };
        assert!(outcome.is_ok());
        baker.join().unwrap();
    });
}

#[test]
fn a_detached_panic_reaches_the_kind_exactly_once() {
    loom::model(|| {
        let (kind, unobserved) = probe();
        let new = NewTask::new(|| -> u8 { panic!("burnt") }, kind, RegistryId::none(), None);
        // SAFETY: the one queue reference of the task.
        let job = unsafe { new.job_ref() };
        let order = new.into_handle();
        let baker = loom::thread::spawn(move || job.execute(Mode::Run));
        drop(order);
        baker.join().unwrap();
        assert_eq!(unobserved.load(Ordering::SeqCst), 1);
    });
}
