//! The timer: delayed orders wait here, holding no baker, until their
//! deadline, then enter the injector like an order from outside.
//!
//! # The pieces
//!
//! One [`Timer`] per bakery: a mutex around a binary heap of entries keyed
//! by (deadline, sequence number), a `closed` flag and the timer thread's
//! handle, and a condition variable. An entry is the queue's reference to a
//! delayed order's block ([`TimedTask`]), made with `TIMED` set so that
//! nobody claims it early (see [`crate::engine::task`]). The timer thread
//! is started by the first insert and holds no baker: it sleeps on the
//! condition variable until the earliest deadline, with no periodic tick,
//! so an idle bakery with many pending timers costs no CPU.
//!
//! # The protocol
//!
//! * **Insert** ([`Timer::insert`]): under the lock, refuse if the timer or
//!   the bakery is closed (the caller rejects the order: nothing was
//!   accepted); otherwise push the entry, and if it is the new earliest,
//!   notify the condition variable.
//! * **Fire** ([`Timer::run`], the thread's body): under the lock, pop every
//!   entry whose deadline has passed, release the lock and hand each to
//!   `fire`, which clears `TIMED` and injects it (or cancels it if the
//!   bakery closed meanwhile); then, under the lock again, wait until the
//!   earliest deadline (or for a notification if the heap is empty). The
//!   thread returns when it sees `closed`.
//! * **Cancel**: the handle cancels the order as any other (the closure is
//!   dropped at once, on the cancelling thread); the entry stays in the
//!   heap, only a reference, until it is due or swept. Each insert that
//!   finds the heap at its sweep mark drops every entry whose order is no
//!   longer pending, and sets the mark at twice what is left (at least
//!   [`MIN_SWEEP`]): so cancelled entries never outnumber live ones by more
//!   than that, and sweeping costs O(1) per insert, amortized.
//! * **Shutdown** ([`Timer::close`], from the registry's `close`, after the
//!   bakery's `closed` flag is stored): under the lock, set `closed` and
//!   take the whole heap; notify; then cancel every entry taken, on the
//!   closing thread. (A bakery that never used its timer skips this, by a
//!   flag that the first insert sets; see [`Timer::close`].) The closer that waits for the bakers joins the thread
//!   ([`Timer::join`]).
//!
//! # Why no deadline is missed
//!
//! The thread decides to wait only under the lock, after looking at the
//! heap's top, and the wait releases the lock atomically. An insert takes
//! the same lock, so it either comes before the look (and the thread sees
//! the entry) or after the wait began (and its notification, sent because
//! the entry is the new earliest, ends the wait). An entry that is not the
//! new earliest needs no notification: the thread wakes for an earlier
//! deadline and looks again. A wait that ends early (spurious, or notified
//! for an entry cancelled since) only looks again.
//!
//! # Why nothing is lost at shutdown
//!
//! Every entry leaves the heap exactly once: popped by the thread when due,
//! swept (its order was already cancelled), or taken by `close`. Inserts and
//! `close` are serialized by the lock: an insert before `close` is in the
//! heap that `close` takes and cancels; an insert after it sees `closed`
//! and is refused. An entry the thread popped before `close` is handed to
//! `fire`: if the bakery's `closed` flag is already visible it is
//! cancelled; otherwise it is injected, and the injector's protocol (see
//! [`super::registry::shutdown`]) runs, cancels or rejects it. So every
//! delayed order reports exactly one outcome, and nothing waits for a far
//! deadline: `close` cancels without waiting, and the thread, notified,
//! returns.

use crate::engine::registry::Registry;
use crate::engine::sync::{fence, thread, Arc, AtomicBool, Condvar, Mutex, Ordering};
use crate::engine::task::{NewTask, RawOrder, TaskKind, TimedTask};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The fewest entries at which an insert sweeps cancelled ones out.
pub(crate) const MIN_SWEEP: usize = 64;

/// One bakery's timer.
pub(crate) struct Timer {
    /// Set by an insert that may start the thread, before it reads the
    /// bakery's `closed` flag: a close that finds it unset after its own
    /// store of `closed` has nothing to close (see [`Timer::close`]).
    used: AtomicBool,
    state: Mutex<TimerState>,
    /// Signalled on a new earliest deadline and on closing.
    changed: Condvar,
}

struct TimerState {
    heap: BinaryHeap<Entry>,
    next_sequence: u64,
    closed: bool,
    /// Whether the thread was started; it is started once.
    started: bool,
    /// The thread, until somebody joins it.
    thread: Option<thread::JoinHandle<()>>,
    /// The heap size at which the next insert sweeps.
    sweep_at: usize,
}

/// A delayed order in the heap, earliest first (`BinaryHeap` is a max-heap,
/// so the order is reversed), ties in the order of insertion.
struct Entry {
    deadline: Instant,
    sequence: u64,
    task: TimedTask,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.deadline, other.sequence).cmp(&(self.deadline, self.sequence))
    }
}

impl Timer {
    pub(crate) fn new() -> Timer {
        Timer {
            used: AtomicBool::new(false),
            state: Mutex::new(TimerState {
                heap: BinaryHeap::new(),
                next_sequence: 0,
                closed: false,
                started: false,
                thread: None,
                sweep_at: MIN_SWEEP,
            }),
            changed: Condvar::new(),
        }
    }

    /// Puts `task` in the heap until `deadline`. Hands it back, for the
    /// caller to reject, if the timer closed, if `is_closed` (the bakery's
    /// flag, read under the timer's lock) says so, or if the thread was not
    /// started yet and `start` could not start it.
    pub(crate) fn insert(
        &self,
        deadline: Instant,
        task: TimedTask,
        is_closed: impl FnOnce() -> bool,
        start: impl FnOnce() -> Option<thread::JoinHandle<()>>,
    ) -> Result<(), TimedTask> {
        let mut state = self.state.lock();
        if !state.started {
            self.used.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        }
        if state.closed || is_closed() {
            return Err(task);
        }
        if !state.started {
            match start() {
                Some(handle) => {
                    state.started = true;
                    state.thread = Some(handle);
                }
                None => return Err(task),
            }
        }
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        let earliest = state
            .heap
            .peek()
            .map_or(true, |top| deadline < top.deadline);
        state.heap.push(Entry {
            deadline,
            sequence,
            task,
        });
        let swept = if state.heap.len() >= state.sweep_at {
            state.sweep()
        } else {
            Vec::new()
        };
        drop(state);
        if earliest {
            self.changed.notify_all();
        }
        for task in swept {
            // Already cancelled: this only drops the reference.
            task.cancel();
        }
        Ok(())
    }

    /// The timer thread's body: hands each entry to `fire` once its
    /// deadline has passed; returns once the timer is closed.
    pub(crate) fn run(&self, mut fire: impl FnMut(TimedTask)) {
        let mut due = Vec::new();
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return;
            }
            let now = Instant::now();
            while state.heap.peek().is_some_and(|top| top.deadline <= now) {
                if let Some(entry) = state.heap.pop() {
                    due.push(entry.task);
                }
            }
            if !due.is_empty() {
                drop(state);
                for task in due.drain(..) {
                    fire(task);
                }
                state = self.state.lock();
                continue;
            }
            match state.heap.peek().map(|top| top.deadline) {
                Some(deadline) => {
                    self.changed.wait_until(&mut state, deadline);
                }
                None => self.changed.wait(&mut state),
            }
        }
    }

    /// Closes the timer: later inserts are refused, every entry is
    /// cancelled here, and the thread is told to return.
    ///
    /// Called after the bakery's `closed` flag was stored. A timer never
    /// used is left alone without taking its lock: an insert that may
    /// start the thread stores `used` and then reads `closed`, and this
    /// reads `used` after `closed` was stored, each across a `SeqCst`
    /// fence, so if this misses `used`, that insert sees `closed` and
    /// refuses (and the next one does the same).
    pub(crate) fn close(&self) {
        fence(Ordering::SeqCst);
        if !self.used.load(Ordering::SeqCst) {
            return;
        }
        let heap = {
            let mut state = self.state.lock();
            state.closed = true;
            std::mem::take(&mut state.heap)
        };
        self.changed.notify_all();
        for entry in heap.into_vec() {
            entry.task.cancel();
        }
    }

    /// Joins the timer thread, once closed, unless this is that thread.
    pub(crate) fn join(&self) {
        if !self.used.load(Ordering::SeqCst) {
            return;
        }
        let handle = self.state.lock().thread.take();
        if let Some(handle) = handle {
            if handle.thread().id() != thread::current().id() {
                // The thread runs no closure of its own that could panic.
                let _ = handle.join();
            }
        }
    }

    /// How many entries the heap holds, cancelled ones not yet swept
    /// included.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.state.lock().heap.len()
    }
}

impl TimerState {
    /// Drops the entries whose orders are no longer pending out of the heap,
    /// and returns them, to give up their references outside the lock.
    fn sweep(&mut self) -> Vec<TimedTask> {
        let (live, gone): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .partition(|entry| entry.task.is_pending());
        self.heap = BinaryHeap::from(live);
        self.sweep_at = (self.heap.len() * 2).max(MIN_SWEEP);
        gone.into_iter().map(|entry| entry.task).collect()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // The bakery closes its timer before it goes; this is a safety net
        // so that no entry outlives it unreported.
        self.close();
    }
}

/// Submits `func` to run on `registry`'s bakers once `when` has come: an
/// ordinary order, whose block waits in the timer until then. Returns a
/// rejected order if the bakery is closed or its timer thread cannot be
/// started.
pub(crate) fn submit_at<F, T, K>(
    registry: &Arc<Registry>,
    when: Instant,
    func: F,
    kind: K,
) -> RawOrder<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    K: TaskKind + 'static,
{
    let task = NewTask::new_timed(func, kind, registry.id());
    // SAFETY: the only queue reference of this task.
    let timed = unsafe { task.timed_ref() };
    let start = || spawn(registry);
    if let Err(timed) = registry
        .timer()
        .insert(when, timed, || registry.is_closed(), start)
    {
        timed.reject();
    }
    task.into_handle()
}

/// Starts `registry`'s timer thread.
fn spawn(registry: &Arc<Registry>) -> Option<thread::JoinHandle<()>> {
    let registry = registry.clone();
    thread::Builder::new()
        .name("bakehouse-timer".to_owned())
        .spawn(move || registry.timer().run(|task| fire(&registry, task)))
        .ok()
}

/// A delayed order's deadline came: into the injector, like an order from
/// outside, unless the bakery closed meanwhile.
fn fire(registry: &Registry, task: TimedTask) {
    if registry.is_closed() {
        task.cancel();
        return;
    }
    registry.inject(task.into_due(), || ());
}

#[cfg(all(test, loom))]
mod loom_tests;
