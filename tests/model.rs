//! A property test: random sequences of submit, try_submit, cancel, join,
//! join_timeout, try_join, detach and shutdown, checked against a simple
//! model of what each must report.
//!
//! The bakers start blocked behind a gate, so while it is closed every
//! accepted order is certainly still queued and the model knows exactly
//! what cancel, try_join and join_timeout must say. Once the gate opens,
//! orders run whenever the bakers get to them; the model then checks that
//! every outcome is one that could happen, and at the end that every
//! accepted order ran exactly once unless it was cancelled.

use bakehouse::{Bakery, JoinTimeoutError, Order, OrderError, TryJoinError};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    Submit,
    TrySubmit,
    Cancel(usize),
    Join(usize),
    JoinTimeout(usize),
    TryJoin(usize),
    Detach(usize),
    OpenGate,
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Submit),
        2 => Just(Op::TrySubmit),
        2 => any::<usize>().prop_map(Op::Cancel),
        2 => any::<usize>().prop_map(Op::Join),
        1 => any::<usize>().prop_map(Op::JoinTimeout),
        1 => any::<usize>().prop_map(Op::TryJoin),
        1 => any::<usize>().prop_map(Op::Detach),
        1 => Just(Op::OpenGate),
        1 => Just(Op::Shutdown),
    ]
}

/// What the model knows about an order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Known {
    /// Accepted; may have run if the gate is open.
    Accepted,
    /// Its cancel returned true: it never runs.
    Cancelled,
    /// Rejected at submission: it never runs.
    Rejected,
    /// Reported a value: it ran once.
    Ran,
}

struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    blocked: AtomicUsize,
}

impl Gate {
    fn wait(&self) {
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

struct World {
    bakery: Option<Bakery>,
    door: Bakery,
    gate: Arc<Gate>,
    gate_open: bool,
    runs: Arc<Vec<AtomicUsize>>,
    /// Handles still held, with their order's id.
    handles: Vec<(usize, Order<usize>)>,
    known: Vec<Known>,
    blockers: Vec<Order<()>>,
}

const MAX_ORDERS: usize = 64;

impl World {
    fn new(bakers: usize) -> World {
        // No stand-ins for the blocked bakers: the gate must hold every
        // order queued until it opens.
        let bakery = Bakery::builder()
            .bakers(bakers)
            .blocking_threshold(None)
            .build()
            .unwrap();
        let gate = Arc::new(Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
            blocked: AtomicUsize::new(0),
        });
        // One blocker per baker, each holding its baker: once all are
        // blocked, no order can start until the gate opens.
        let blockers = (0..bakers)
            .map(|_| {
                let gate = gate.clone();
                bakery.submit(move || gate.wait())
            })
            .collect();
        while gate.blocked.load(Ordering::SeqCst) < bakers {
            std::thread::yield_now();
        }
        World {
            door: bakery.clone(),
            bakery: Some(bakery),
            gate,
            gate_open: false,
            runs: Arc::new((0..MAX_ORDERS).map(|_| AtomicUsize::new(0)).collect()),
            handles: Vec::new(),
            known: Vec::new(),
            blockers,
        }
    }

    fn closed(&self) -> bool {
        self.bakery.is_none()
    }

    fn recipe(&self, id: usize) -> impl FnOnce() -> usize + Send + 'static {
        let runs = self.runs.clone();
        move || {
            runs[id].fetch_add(1, Ordering::SeqCst);
            id
        }
    }

    /// Checks an outcome reported for order `id` and records it.
    fn reported(&mut self, id: usize, outcome: Result<usize, OrderError>) {
        let known = self.known[id];
        match outcome {
            Ok(value) => {
                assert_eq!(value, id);
                assert_eq!(
                    known,
                    Known::Accepted,
                    "order {id} gave a value but was {known:?}"
                );
                self.known[id] = Known::Ran;
            }
            Err(OrderError::Cancelled) => assert_eq!(known, Known::Cancelled, "order {id}"),
            Err(OrderError::Rejected) => assert_eq!(known, Known::Rejected, "order {id}"),
            Err(other) => panic!("order {id}: unexpected {other}"),
        }
    }

    fn take(&mut self, index: usize) -> Option<(usize, Order<usize>)> {
        if self.handles.is_empty() {
            return None;
        }
        let at = index % self.handles.len();
        Some(self.handles.swap_remove(at))
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Submit | Op::TrySubmit if self.known.len() == MAX_ORDERS => {}
            Op::Submit => {
                let id = self.known.len();
                let order = self.door.submit(self.recipe(id));
                if self.closed() {
                    self.known.push(Known::Rejected);
                    assert!(
                        order.is_finished(),
                        "a rejected order has its outcome at once"
                    );
                } else {
                    self.known.push(Known::Accepted);
                }
                self.handles.push((id, order));
            }
            Op::TrySubmit => {
                let id = self.known.len();
                match self.door.try_submit(self.recipe(id)) {
                    Ok(order) => {
                        assert!(!self.closed(), "accepted after shutdown");
                        self.known.push(Known::Accepted);
                        self.handles.push((id, order));
                    }
                    Err(refused) => {
                        assert!(self.closed(), "refused while open");
                        // The closure comes back unrun; running it here
                        // counts as its one run.
                        assert_eq!(self.runs[id].load(Ordering::SeqCst), 0);
                        self.known.push(Known::Ran);
                        assert_eq!(refused.into_inner()(), id);
                    }
                }
            }
            Op::Cancel(index) => {
                let Some((id, order)) = self.take(index) else {
                    return;
                };
                let cancelled = order.cancel();
                match self.known[id] {
                    Known::Accepted if !self.gate_open => {
                        assert!(cancelled, "order {id} is queued behind the gate");
                        self.known[id] = Known::Cancelled;
                    }
                    Known::Accepted if cancelled => self.known[id] = Known::Cancelled,
                    Known::Accepted => {}
                    Known::Cancelled => assert!(cancelled, "cancel is idempotent"),
                    Known::Rejected => assert!(!cancelled, "a rejected order is not cancelled"),
                    Known::Ran => unreachable!("handles of finished orders are gone"),
                }
                self.handles.push((id, order));
            }
            Op::Join(index) => {
                if !self.gate_open {
                    // A blocking join behind a closed gate would wait for the
                    // gate: open it first, as a real caller would have to.
                    self.apply(Op::OpenGate);
                }
                let Some((id, order)) = self.take(index) else {
                    return;
                };
                let outcome = order.join();
                self.reported(id, outcome);
            }
            Op::JoinTimeout(index) => {
                let Some((id, order)) = self.take(index) else {
                    return;
                };
                match order.join_timeout(Duration::from_millis(1)) {
                    Ok(value) => self.reported(id, Ok(value)),
                    Err(JoinTimeoutError::Failed(error)) => self.reported(id, Err(error)),
                    Err(JoinTimeoutError::Timeout(order)) => {
                        assert_eq!(self.known[id], Known::Accepted, "order {id} timed out");
                        self.handles.push((id, order));
                    }
                }
            }
            Op::TryJoin(index) => {
                let Some((id, order)) = self.take(index) else {
                    return;
                };
                match order.try_join() {
                    Ok(value) => {
                        assert!(self.gate_open, "order {id} ran behind a closed gate");
                        self.reported(id, Ok(value));
                    }
                    Err(TryJoinError::Failed(error)) => self.reported(id, Err(error)),
                    Err(TryJoinError::NotFinished(order)) => {
                        assert_eq!(self.known[id], Known::Accepted, "order {id}");
                        self.handles.push((id, order));
                    }
                }
            }
            Op::Detach(index) => {
                if let Some((_, order)) = self.take(index) {
                    order.detach();
                }
            }
            Op::OpenGate => {
                self.gate.open();
                self.gate_open = true;
            }
            Op::Shutdown => {
                if let Some(bakery) = self.bakery.take() {
                    // A shutdown waits for the queue, so the gate must open.
                    self.apply(Op::OpenGate);
                    bakery.shutdown();
                    // Everything accepted has run or was cancelled by now.
                    for (id, known) in self.known.iter().enumerate() {
                        if *known == Known::Accepted {
                            assert_eq!(self.runs[id].load(Ordering::SeqCst), 1, "order {id}");
                        }
                    }
                }
            }
        }
    }

    fn finish(mut self) {
        self.apply(Op::Shutdown);
        for (id, order) in std::mem::take(&mut self.handles) {
            let outcome = order.join();
            self.reported(id, outcome);
        }
        for blocker in std::mem::take(&mut self.blockers) {
            blocker.join().unwrap();
        }
        for (id, known) in self.known.iter().enumerate() {
            let runs = self.runs[id].load(Ordering::SeqCst);
            match known {
                Known::Accepted | Known::Ran => assert_eq!(runs, 1, "order {id} ({known:?})"),
                Known::Cancelled | Known::Rejected => assert_eq!(runs, 0, "order {id}"),
            }
        }
    }
}

impl Drop for World {
    /// A failed case unwinds through here: open the gate so the bakery's
    /// shutdown does not wait forever for the blocked bakers.
    fn drop(&mut self) {
        self.gate.open();
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_order_reports_what_the_model_allows(
        bakers in 1usize..=3,
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let mut world = World::new(bakers);
        for op in ops {
            world.apply(op);
        }
        world.finish();
    }
}
