//! The block: header, outcome, closure and kind in one allocation, its
//! vtable, and what a queue does with it.

use super::state::{Close, Snapshot, State, SCHEDULED};
use crate::engine::job::{Fate, Job, Mode};
use crate::engine::registry::RegistryId;
use crate::engine::sync::{local, AtomicUsize, Ordering, UnsafeCell};
use crate::engine::unwind::{self, Payload};
use crate::engine::waiter::WaiterSlot;
use crate::error::PanicError;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;

/// What a task does besides running: the hooks that differ between a plain
/// order, a scoped order and the carrier of a cold fork-join.
pub(crate) trait TaskKind: Send {
    /// Whether `shutdown_now` may cancel it.
    const CANCELLABLE: bool;

    /// Whether the bakery's statistics count it as an order (see
    /// [`Fate`]).
    const COUNTED: bool = false;

    /// Receives a panic that nobody observed through the handle: the
    /// order's own panic when its outcome is dropped untaken, or a panic
    /// raised while dropping a leftover closure or value. It must not
    /// unwind: it runs where a panic cannot be reported.
    fn unobserved_panic(&self, panic: PanicError);

    /// Called last, after the block's contents are dropped.
    fn released(self);
}

/// The part of every task that does not depend on its types.
pub(super) struct Header {
    pub(super) state: State,
    pub(super) waiter: WaiterSlot,
    pub(super) vtable: &'static VTable,
    /// The bakery that accepted the task.
    pub(super) pool: RegistryId,
    /// The identity of the baker that claimed the task (see
    /// [`local::get`]), or 0. Written only by the claimant, after its
    /// claim, so a baker that reads its own identity here while the task
    /// is running knows the task runs beneath it on its own stack.
    pub(super) runner: AtomicUsize,
}

/// The typed operations a handle needs without knowing the closure's type.
pub(super) struct VTable {
    /// Runs a claimed task on the handle's thread and completes it; says
    /// how it ended, for the statistics.
    pub(super) run_claimed: unsafe fn(NonNull<Header>) -> Fate,
    /// Runs the closure and writes the outcome, touching no state: for a
    /// handle whose thread holds both references.
    pub(super) run_alone: unsafe fn(NonNull<Header>) -> Fate,
    /// Drops the closure of a task the handle just cancelled.
    pub(super) drop_closure: unsafe fn(NonNull<Header>),
    /// Frees the block.
    pub(super) dealloc: unsafe fn(NonNull<Header>),
}

/// The header and the outcome: what a handle typed by `T` can see.
#[repr(C)]
pub(super) struct Core<T> {
    pub(super) header: Header,
    pub(super) output: UnsafeCell<MaybeUninit<Result<T, Payload>>>,
}

/// The whole block.
#[repr(C)]
pub(super) struct Task<F, T, K> {
    core: Core<T>,
    func: UnsafeCell<MaybeUninit<F>>,
    kind: ManuallyDrop<K>,
}

impl Header {
    /// pending → running, recording the claiming thread.
    #[inline]
    pub(super) fn claim(&self) -> bool {
        if !self.state.claim() {
            return false;
        }
        self.runner.store(local::get() as usize, Ordering::Relaxed);
        true
    }

    /// Wakes the registered waiter, if `previous` says there may be one.
    #[inline]
    pub(super) fn notify_if_awaited(&self, previous: Snapshot) {
        if previous.has_awaiter() {
            self.waiter.notify();
        }
    }
}

impl<F, T, K> Task<F, T, K>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    const VTABLE: VTable = VTable {
        run_claimed: Self::run_claimed_by_handle,
        run_alone: Self::run_alone,
        drop_closure: Self::drop_closure_by_handle,
        dealloc: Self::dealloc,
    };

    /// Allocates the block for `func`.
    pub(super) fn allocate(func: F, kind: K, pool: RegistryId, state: Snapshot) -> NonNull<Self> {
        let task = Box::new(Task {
            core: Core {
                header: Header {
                    state: State::new(state),
                    waiter: WaiterSlot::new(),
                    vtable: &Self::VTABLE,
                    pool,
                    runner: AtomicUsize::new(0),
                },
                output: UnsafeCell::new(MaybeUninit::uninit()),
            },
            func: UnsafeCell::new(MaybeUninit::new(func)),
            kind: ManuallyDrop::new(kind),
        });
        NonNull::from(Box::leak(task))
    }

    #[inline]
    pub(super) fn header<'a>(this: NonNull<Self>) -> &'a Header {
        // SAFETY: callers hold a reference (queue or handle), so the block is
        // alive; the header is only read through shared references.
        unsafe { &(*this.as_ptr()).core.header }
    }

    /// Moves the closure out.
    ///
    /// # Safety
    ///
    /// The caller must own the closure: it won the claim, or the
    /// cancellation or rejection, and takes the closure only once.
    #[inline]
    pub(super) unsafe fn take_closure(this: NonNull<Self>) -> F {
        // SAFETY: the caller holds a reference, so the block is alive.
        let task = unsafe { this.as_ref() };
        task.func.with_mut(|func| {
            // SAFETY: the caller owns the closure and takes it once; the
            // state it won says the closure is never read again.
            unsafe { (*func).assume_init_read() }
        })
    }

    /// What to count for a task that was closed without running.
    #[inline]
    fn fate_of_closed(rejected: bool) -> Fate {
        match (K::COUNTED, rejected) {
            (false, _) => Fate::Untracked,
            (true, false) => Fate::Cancelled,
            (true, true) => Fate::Rejected,
        }
    }

    /// Runs the closure of a task this thread claimed and writes the
    /// outcome; says how it ended.
    #[inline]
    fn run_claimed(this: NonNull<Self>) -> Fate {
        // SAFETY: the claim gives this thread the closure.
        let func = unsafe { Self::take_closure(this) };
        let outcome = unwind::halt_unwinding(func);
        let fate = match (K::COUNTED, outcome.is_ok()) {
            (false, _) => Fate::Untracked,
            (true, true) => Fate::Completed,
            (true, false) => Fate::Panicked,
        };
        // SAFETY: this thread holds a reference, so the block is alive.
        let task = unsafe { this.as_ref() };
        task.core.output.with_mut(|output| {
            // SAFETY: the claimant alone writes the outcome, before
            // publishing `COMPLETED`; nobody reads it before that.
            unsafe { (*output).write(outcome) };
        });
        fate
    }

    /// The `JobRef` side: a baker (or a drain) took the task from a queue.
    fn execute_from_queue(this: NonNull<Self>, mode: Mode) -> Fate {
        let header = Self::header(this);
        let close = match mode {
            Mode::Run => None,
            _ if !K::CANCELLABLE => {
                if mode == Mode::CancelOrKeep {
                    return Fate::Kept;
                }
                None
            }
            Mode::RejectOrRun => Some(Close::Reject),
            Mode::CancelOrRun | Mode::CancelOrKeep => Some(Close::Cancel),
        };
        let fate = match close {
            None => {
                if header.claim() {
                    let fate = Self::run_claimed(this);
                    let completion = header.state.complete(true);
                    if completion.released_queue_ref {
                        if !completion.previous.has_handle() {
                            // SAFETY: both references are gone; this thread
                            // was the last holder.
                            unsafe { Self::dealloc(this.cast()) };
                        }
                        return fate;
                    }
                    header.notify_if_awaited(completion.previous);
                    fate
                } else {
                    Self::fate_of_stale(header)
                }
            }
            Some(why) => {
                if let Some(previous) = header.state.close(why) {
                    Self::drop_closure_caught(this);
                    header.notify_if_awaited(previous);
                    Self::fate_of_closed(why == Close::Reject)
                } else {
                    Self::fate_of_stale(header)
                }
            }
        };
        Self::release(this, SCHEDULED);
        fate
    }

    /// What to count for a queue entry whose task left pending before this
    /// thread took the entry: cancelled or rejected meanwhile (counted now,
    /// as the bakery lets go of it), or claimed by its handle (which
    /// counted it).
    #[cold]
    fn fate_of_stale(header: &Header) -> Fate {
        let state = header.state.load(Ordering::Acquire);
        if state.is_completed() || state.is_running() {
            Fate::Untracked
        } else {
            Self::fate_of_closed(state.is_rejected())
        }
    }

    /// Drops the closure after a successful cancellation on a baker, routing a
    /// panic in its destructor to the kind.
    fn drop_closure_caught(this: NonNull<Self>) {
        if let Err(payload) = unwind::halt_unwinding(|| {
            // SAFETY: the cancellation CAS gave this thread the closure.
            unsafe { Self::drop_closure_by_handle(this.cast()) }
        }) {
            // SAFETY: this thread holds a reference, so the block is alive.
            let kind = unsafe { &this.as_ref().kind };
            kind.unobserved_panic(PanicError::new(payload));
        }
    }

    /// Drops the closure in place.
    ///
    /// # Safety
    ///
    /// The caller must have won the cancellation CAS for this task.
    unsafe fn drop_closure_by_handle(header: NonNull<Header>) {
        // SAFETY: the caller won the cancellation, so it owns the closure.
        drop(unsafe { Self::take_closure(header.cast()) });
    }

    /// Runs a task claimed through its handle, then completes it.
    ///
    /// # Safety
    ///
    /// The caller must hold the handle and have won the claim.
    unsafe fn run_claimed_by_handle(header: NonNull<Header>) -> Fate {
        let this = header.cast::<Self>();
        let fate = Self::run_claimed(this);
        let completion = Self::header(this).state.complete(false);
        Self::header(this).notify_if_awaited(completion.previous);
        fate
    }

    /// Runs the closure of a task nobody else can reach.
    ///
    /// # Safety
    ///
    /// The caller must hold both references and the task must be pending.
    unsafe fn run_alone(header: NonNull<Header>) -> Fate {
        Self::run_claimed(header.cast())
    }

    /// Drops one reference and frees the block if it was the last.
    fn release(this: NonNull<Self>, reference: usize) {
        if Self::header(this).state.drop_reference(reference) {
            // SAFETY: the other reference was already gone: this was the last.
            unsafe { Self::dealloc(this.cast()) };
        }
    }

    /// Frees the block, dropping what is left in it.
    ///
    /// # Safety
    ///
    /// Both references must be gone, and `header` must be the header of a
    /// `Task<F, T, K>`.
    unsafe fn dealloc(header: NonNull<Header>) {
        let this = header.cast::<Self>();
        let state = Self::header(this).state.load(Ordering::Acquire);
        let mut panic = None;
        if state.is_pending() {
            // SAFETY: never claimed nor cancelled, and nobody else can reach
            // the block any more: the closure is here, and is this thread's.
            let func = unsafe { Self::take_closure(this) };
            if let Err(payload) = unwind::halt_unwinding(|| drop(func)) {
                panic = Some(payload);
            }
        }
        // SAFETY: the caller dropped the last reference; the block came from
        // `Box::leak` in `allocate`.
        let mut task = unsafe { Box::from_raw(this.as_ptr()) };
        if state.has_outcome() {
            let output = task.core.output.with_mut(|output| {
                // SAFETY: completed and never taken, so the outcome is here.
                unsafe { (*output).assume_init_read() }
            });
            match output {
                Ok(value) => {
                    if let Err(payload) = unwind::halt_unwinding(|| drop(value)) {
                        panic = Some(payload);
                    }
                }
                Err(payload) => panic = Some(payload),
            }
        }
        // SAFETY: taken once, here; the block is freed right after.
        let kind = unsafe { ManuallyDrop::take(&mut task.kind) };
        drop(task);
        if let Some(payload) = panic {
            kind.unobserved_panic(PanicError::new(payload));
        }
        kind.released();
    }
}

impl<F, T, K> Job for Task<F, T, K>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> Fate {
        Self::execute_from_queue(this, mode)
    }
}
