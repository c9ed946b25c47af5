//! The raw order: one heap block holding the closure, the state word, the
//! waiter slot and the outcome, shared by the queue and the handle.
//!
//! Submitting an order allocates exactly one block, a [`Task`]. The queue
//! holds it through a [`JobRef`]; the [`Order`](crate::Order) handle holds it
//! through a [`RawOrder`]. Nothing else is allocated: no `Arc`, no channel,
//! no boxed closure.
//!
//! # The state word
//!
//! | bit         | meaning                                                        |
//! |-------------|----------------------------------------------------------------|
//! | `SCHEDULED` | a queue holds a `JobRef` to the block (a reference)            |
//! | `HANDLE`    | the handle exists (a reference)                                |
//! | `RUNNING`   | someone claimed the closure and is running it                  |
//! | `COMPLETED` | the outcome (value or panic) is written                        |
//! | `CLOSED`    | the closure will never run (cancelled, rejected), or the outcome was taken |
//! | `REJECTED`  | with `CLOSED`: it was rejected rather than cancelled           |
//! | `AWAITER`   | a waiter may be registered in the waiter slot                  |
//! | bits 16 and up | the baker whose own deque got the order (plus one), or 0   |
//!
//! An order is *pending* while none of `RUNNING`, `COMPLETED` and `CLOSED` is
//! set. From pending exactly one transition wins, by compare-and-swap:
//!
//! * **claim**: pending → `RUNNING`, by the baker that took the `JobRef`, or
//!   by a baker of the same pool joining the handle (it runs the order
//!   itself instead of waiting for it);
//! * **cancel** or **reject**: pending → `CLOSED` (`| REJECTED`), by the
//!   handle's `cancel`, by `shutdown_now`, or by a submitter that saw the
//!   pool close under it. The winner drops the closure.
//!
//! The claimant runs the closure and sets `COMPLETED` (clearing `RUNNING`).
//! The handle takes the outcome once and sets `CLOSED`, so the block knows
//! the outcome is gone. Because each transition out of pending is one CAS, an
//! order cannot both run and be cancelled, and cannot run twice.
//!
//! # References and freeing
//!
//! `SCHEDULED` and `HANDLE` are the two references. Each owner clears its own
//! bit with one read-modify-write (`AcqRel`) and the one that clears the last
//! bit frees the block, dropping whatever is left in it: a closure nobody
//! claimed, an outcome nobody took. A completing baker with no awaiter to wake
//! clears `SCHEDULED` in the same CAS that sets `COMPLETED`.
//!
//! A `JobRef` whose order was already claimed by a joiner, cancelled or
//! rejected stays in its queue until some baker pops it; that baker sees the
//! order is not pending and only drops the queue's reference.
//!
//! One path needs no atomics at all: a baker that joins an order it
//! submitted itself, still pending, pops its own deque down to the order's
//! entry (running whatever was pushed after it) and takes the entry back
//! (`RawOrder::join_popped`). It then holds both references, no other thread
//! can reach the block, and it runs the closure, takes the outcome and frees
//! the block with plain loads and stores. The state word's high bits record
//! which baker's deque an order went to, so the joiner knows where to look.
//!
//! # Waking the waiter
//!
//! A waiter (a parked thread, an async waker, a sleeping baker) registers
//! under the waiter slot's lock and sets `AWAITER` with a `fetch_or` that
//! also tells it whether the order already has an outcome; if so it does not
//! wait. Whoever gives the order its outcome (completion, cancellation) does
//! so with a read-modify-write that returns the previous state: if `AWAITER`
//! was set, it takes the slot's lock and wakes the waiter. Either the
//! registration's `fetch_or` comes first, and the notifier sees `AWAITER` and
//! finds the waiter under the lock, or the notification's RMW comes first,
//! and the registration sees the outcome. The notifier keeps its reference
//! until the wake-up is done, so the block outlives it.

use crate::error::{OrderError, PanicError};
use crate::job::{Job, JobRef, Mode};
use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use crate::unwind::{self, Payload};
use crate::waiter::{Waiter, WaiterSlot};
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;
use std::task::Waker;

const SCHEDULED: usize = 1 << 0;
const HANDLE: usize = 1 << 1;
const RUNNING: usize = 1 << 2;
const COMPLETED: usize = 1 << 3;
const CLOSED: usize = 1 << 4;
const REJECTED: usize = 1 << 5;
const AWAITER: usize = 1 << 6;
/// Above the flags: one more than the index of the baker whose deque the
/// order was pushed onto, or zero for the injector. Set once, before the
/// push; every transition keeps it.
const HOME_SHIFT: u32 = 16;

/// No claim, no outcome, not closed.
const NOT_PENDING: usize = RUNNING | COMPLETED | CLOSED;
/// An outcome is ready (or was taken).
const FINISHED: usize = COMPLETED | CLOSED;

/// What a task does besides running: the hooks that differ between a plain
/// order, a scoped order and the carrier of a cold fork-join.
pub(crate) trait TaskKind: Send {
    /// Whether `shutdown_now` may cancel it.
    const CANCELLABLE: bool;

    /// Receives a panic that nobody observed through the handle: the
    /// order's own panic when its outcome is dropped untaken, or a panic
    /// raised while dropping a leftover closure or value.
    fn unobserved_panic(&self, panic: PanicError);

    /// Called last, after the block's contents are dropped.
    fn released(self);
}

/// The part of every task that does not depend on its types.
pub(crate) struct Header {
    state: AtomicUsize,
    waiter: WaiterSlot,
    vtable: &'static VTable,
    /// The address of the registry that accepted the order; compared, never
    /// dereferenced.
    pool: usize,
    /// The identity of the baker that claimed the order (see
    /// [`crate::sync::local`]), or 0. Written only by the claimant, after
    /// its claim, so a baker that reads its own identity here while the
    /// order is `RUNNING` knows the order runs beneath it on its own stack.
    runner: AtomicUsize,
}

/// The typed operations a handle needs without knowing the closure's type.
struct VTable {
    /// Runs a claimed task on the handle's thread and completes it.
    run_claimed: unsafe fn(NonNull<Header>),
    /// Runs the closure and writes the outcome, touching no state: for a
    /// handle whose thread holds both references.
    run_alone: unsafe fn(NonNull<Header>),
    /// Drops the closure of a task the handle just cancelled.
    drop_closure: unsafe fn(NonNull<Header>),
    /// Frees the block.
    dealloc: unsafe fn(NonNull<Header>),
}

/// The header and the outcome: what a handle typed by `T` can see.
#[repr(C)]
pub(crate) struct Core<T> {
    header: Header,
    output: UnsafeCell<MaybeUninit<Result<T, Payload>>>,
}

/// The whole block.
#[repr(C)]
struct Task<F, T, K> {
    core: Core<T>,
    func: UnsafeCell<MaybeUninit<F>>,
    kind: ManuallyDrop<K>,
}

impl Header {
    #[inline]
    fn load(&self, order: Ordering) -> usize {
        self.state.load(order)
    }

    /// pending → `RUNNING`, recording the claiming thread.
    #[inline]
    fn claim(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & NOT_PENDING != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state | RUNNING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.runner
                        .store(crate::sync::local::get() as usize, Ordering::Relaxed);
                    return true;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// pending → `CLOSED | extra`. Returns the previous state on success.
    fn close_pending(&self, extra: usize) -> Option<usize> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & NOT_PENDING != 0 {
                return None;
            }
            match self.state.compare_exchange_weak(
                state,
                state | CLOSED | extra,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(previous) => return Some(previous),
                Err(actual) => state = actual,
            }
        }
    }

    /// Sets `COMPLETED` (clearing `RUNNING`), and for the queue's holder with
    /// no awaiter also drops the queue's reference in the same step. Returns
    /// the previous state and whether the reference was dropped.
    #[inline]
    fn complete(&self, holds_queue_ref: bool) -> (usize, bool) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let release = holds_queue_ref && state & AWAITER == 0;
            let mut next = (state & !RUNNING) | COMPLETED;
            if release {
                next &= !SCHEDULED;
            }
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(previous) => return (previous, release),
                Err(actual) => state = actual,
            }
        }
    }

    /// Wakes the registered waiter, if `previous` says there may be one.
    #[inline]
    fn notify_if_awaited(&self, previous: usize) {
        if previous & AWAITER != 0 {
            self.waiter.notify();
        }
    }

    /// The outcome bits as a handle reports them, for a finished order
    /// whose outcome is not a value.
    fn closed_error(state: usize) -> OrderError {
        if state & REJECTED != 0 {
            OrderError::Rejected
        } else {
            OrderError::Cancelled
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

    /// Allocates the block for `func`, referenced by a queue and a handle.
    fn allocate(func: F, kind: K, pool: usize, state: usize) -> NonNull<Self> {
        let task = Box::new(Task {
            core: Core {
                header: Header {
                    state: AtomicUsize::new(state),
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
    fn header<'a>(this: NonNull<Self>) -> &'a Header {
        // SAFETY: callers hold a reference (queue or handle), so the block is
        // alive; the header is only read through shared references.
        unsafe { &(*this.as_ptr()).core.header }
    }

    /// Runs the closure of a task this thread claimed and writes the outcome.
    fn run_claimed(this: NonNull<Self>) {
        // SAFETY: the claim gives this thread the closure; it is read once.
        let task = unsafe { this.as_ref() };
        let func = task.func.with_mut(|func| {
            // SAFETY: claimed by this thread (see above); never read again,
            // since the state now says `RUNNING` and later `COMPLETED`.
            unsafe { (*func).assume_init_read() }
        });
        let outcome = unwind::halt_unwinding(func);
        task.core.output.with_mut(|output| {
            // SAFETY: the claimant alone writes the outcome, before
            // publishing `COMPLETED`; nobody reads it before that.
            unsafe { (*output).write(outcome) };
        });
    }

    /// The `JobRef` side: a baker (or a drain) took the task from a queue.
    fn execute_from_queue(this: NonNull<Self>, mode: Mode) -> bool {
        let header = Self::header(this);
        let run = match mode {
            Mode::Run => true,
            Mode::CancelOnly if !K::CANCELLABLE => return false,
            Mode::Cancel | Mode::CancelOnly | Mode::Reject => !K::CANCELLABLE,
        };
        if run {
            if header.claim() {
                Self::run_claimed(this);
                let (previous, released) = header.complete(true);
                if released {
                    if previous & HANDLE == 0 {
                        // SAFETY: both references are gone; this thread was
                        // the last holder.
                        unsafe { Self::dealloc(this.cast()) };
                    }
                    return true;
                }
                header.notify_if_awaited(previous);
            }
        } else {
            let reason = if mode == Mode::Reject { REJECTED } else { 0 };
            if let Some(previous) = header.close_pending(reason) {
                Self::drop_closure_caught(this);
                header.notify_if_awaited(previous);
            }
        }
        Self::release(this, SCHEDULED);
        true
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
        let this = header.cast::<Self>();
        // SAFETY: the caller holds a reference, so the block is alive.
        let task = unsafe { this.as_ref() };
        task.func.with_mut(|func| {
            // SAFETY: the closure was never claimed and is dropped once, by
            // the cancellation's winner.
            unsafe { (*func).assume_init_drop() }
        });
    }

    /// Runs a task claimed through its handle, then completes it.
    ///
    /// # Safety
    ///
    /// The caller must hold the handle and have won the claim.
    unsafe fn run_claimed_by_handle(header: NonNull<Header>) {
        let this = header.cast::<Self>();
        Self::run_claimed(this);
        let (previous, _) = Self::header(this).complete(false);
        Self::header(this).notify_if_awaited(previous);
    }

    /// Runs the closure of a task nobody else can reach.
    ///
    /// # Safety
    ///
    /// The caller must hold both references and the task must be pending.
    unsafe fn run_alone(header: NonNull<Header>) {
        Self::run_claimed(header.cast());
    }

    /// Drops one reference and frees the block if it was the last.
    fn release(this: NonNull<Self>, reference: usize) {
        let previous = Self::header(this)
            .state
            .fetch_and(!reference, Ordering::AcqRel);
        let other = (SCHEDULED | HANDLE) & !reference;
        if previous & other == 0 {
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
        // SAFETY: the caller dropped the last reference; the block came from
        // `Box::leak` in `allocate`.
        let mut task = unsafe { Box::from_raw(this.as_ptr()) };
        let state = task.core.header.load(Ordering::Acquire);
        let mut panic = None;
        if state & NOT_PENDING == 0 {
            let func = task.func.with_mut(|func| {
                // SAFETY: never claimed nor cancelled, so the closure is here.
                unsafe { (*func).assume_init_read() }
            });
            if let Err(payload) = unwind::halt_unwinding(|| drop(func)) {
                panic = Some(payload);
            }
        }
        if state & COMPLETED != 0 && state & CLOSED == 0 {
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
    unsafe fn execute(this: NonNull<Self>, mode: Mode) -> bool {
        Self::execute_from_queue(this, mode)
    }
}

/// A freshly allocated task, before its two references part ways.
pub(crate) struct NewTask<F, T, K> {
    task: NonNull<Task<F, T, K>>,
}

impl<F, T, K> NewTask<F, T, K>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    /// Allocates a task for `func`, accepted by the pool at address `pool`,
    /// to be pushed onto baker `home`'s own deque (or the injector).
    #[inline]
    pub(crate) fn new(func: F, kind: K, pool: usize, home: Option<usize>) -> NewTask<F, T, K> {
        let home = home.map_or(0, |index| (index + 1) << HOME_SHIFT);
        NewTask {
            task: Task::allocate(func, kind, pool, SCHEDULED | HANDLE | home),
        }
    }

    /// The queue's reference.
    ///
    /// # Safety
    ///
    /// Call at most once per task: the reference it returns owns `SCHEDULED`.
    #[inline]
    pub(crate) unsafe fn job_ref(&self) -> JobRef {
        // SAFETY: the block stays allocated while `SCHEDULED` is set, and
        // `F` and `T` are `Send`.
        unsafe { JobRef::new(self.task) }
    }

    /// Rejects the task if nobody claimed it yet, handing the closure back.
    /// For a submitter that saw the pool close after pushing the job.
    pub(crate) fn reject(&self) -> Option<F> {
        let header = Task::header(self.task);
        let previous = header.close_pending(REJECTED)?;
        // SAFETY: the rejection CAS gave this thread the closure.
        let func = unsafe { self.task.as_ref() }.func.with_mut(|func| {
            // SAFETY: as above; read once.
            unsafe { (*func).assume_init_read() }
        });
        header.notify_if_awaited(previous);
        Some(func)
    }

    /// The handle's reference.
    #[inline]
    pub(crate) fn into_handle(self) -> RawOrder<T> {
        RawOrder {
            core: self.task.cast(),
            _marker: PhantomData,
        }
    }
}

/// A task that was rejected before it reached any queue, holding only the
/// handle's reference.
pub(crate) fn rejected<T, K>(kind: K, pool: usize) -> RawOrder<T>
where
    T: Send,
    K: TaskKind,
{
    let task = Task::<fn() -> T, T, K>::allocate(
        || unreachable!("a rejected order never runs"),
        kind,
        pool,
        HANDLE | CLOSED | REJECTED,
    );
    RawOrder {
        core: task.cast(),
        _marker: PhantomData,
    }
}

/// Runs `func` right here as an order that never saw a queue, and returns
/// its handle, already finished: for a scoped order on a closed pool, which
/// must not be lost.
pub(crate) fn run_now<F, T, K>(func: F, kind: K, pool: usize) -> RawOrder<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    let order = RawOrder {
        core: Task::allocate(func, kind, pool, HANDLE).cast(),
        _marker: PhantomData,
    };
    let ran = order.run_here();
    debug_assert!(ran, "nobody else can reach a task that never saw a queue");
    order
}

/// The handle's reference to a task, typed by its output only.
pub(crate) struct RawOrder<T> {
    core: NonNull<Core<T>>,
    _marker: PhantomData<T>,
}

impl<T> RawOrder<T> {
    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the handle holds `HANDLE`, so the block is alive.
        unsafe { &self.core.as_ref().header }
    }

    /// The identity of the order's queue entry (its `JobRef::id`).
    #[inline]
    pub(crate) fn job_id(&self) -> *const () {
        self.core.as_ptr().cast_const().cast()
    }

    /// The address of the pool that accepted the order.
    #[inline]
    pub(crate) fn pool(&self) -> usize {
        self.header().pool
    }

    /// If nobody started or cancelled the order yet: the baker whose own
    /// deque it was pushed onto, if any.
    #[inline]
    pub(crate) fn pending_at_home(&self) -> Option<usize> {
        let state = self.header().load(Ordering::Acquire);
        if state & NOT_PENDING != 0 {
            return None;
        }
        (state >> HOME_SHIFT).checked_sub(1)
    }

    /// Whether the order is running on the calling baker's own stack, beneath
    /// the caller: waiting for it there could never end.
    pub(crate) fn runs_beneath_caller(&self) -> bool {
        let header = self.header();
        let me = crate::sync::local::get() as usize;
        me != 0
            && header.load(Ordering::Acquire) & RUNNING != 0
            && header.runner.load(Ordering::Relaxed) == me
    }

    /// Whether the order is still pending.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.header().load(Ordering::Acquire) & NOT_PENDING == 0
    }

    /// Whether the order has an outcome.
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.header().load(Ordering::Acquire) & FINISHED != 0
    }

    /// Takes the outcome if there is one.
    ///
    /// # Panics
    ///
    /// If the value was already taken (an `Order` polled after it returned
    /// `Ready`).
    pub(crate) fn take_outcome(&mut self) -> Option<Result<T, OrderError>> {
        let header = self.header();
        let state = header.load(Ordering::Acquire);
        if state & COMPLETED != 0 {
            let output = self.read_output(state);
            header.state.fetch_or(CLOSED, Ordering::AcqRel);
            return Some(output);
        }
        if state & CLOSED != 0 {
            return Some(Err(Header::closed_error(state)));
        }
        None
    }

    /// Moves the outcome out of a completed block, once.
    fn read_output(&self, state: usize) -> Result<T, OrderError> {
        assert!(state & CLOSED == 0, "`Order` polled after completion");
        // SAFETY: `COMPLETED` (read with Acquire) says the outcome is
        // written; the handle is its only reader, and its caller marks it
        // taken.
        let output = unsafe { self.core.as_ref() }.output.with_mut(|output| {
            // SAFETY: as above.
            unsafe { (*output).assume_init_read() }
        });
        output.map_err(|payload| OrderError::Panicked(PanicError::new(payload)))
    }

    /// Takes the outcome of a finished order and lets go of the handle, with
    /// one read-modify-write for both.
    pub(crate) fn into_outcome(self) -> Result<T, OrderError> {
        let header = self.header();
        let state = header.load(Ordering::Acquire);
        debug_assert!(state & FINISHED != 0, "the order has an outcome");
        if state & COMPLETED == 0 {
            // Cancelled or rejected; dropping `self` releases the handle.
            return Err(Header::closed_error(state));
        }
        let output = self.read_output(state);
        // `HANDLE` is set and `CLOSED` is not, so adding their difference
        // clears the one and sets the other without carrying into any other
        // bit.
        let previous = header
            .state
            .fetch_add(CLOSED.wrapping_sub(HANDLE), Ordering::AcqRel);
        if previous & SCHEDULED == 0 {
            // SAFETY: the queue's reference was gone: this was the last; the
            // vtable matches the block's type.
            unsafe { (header.vtable.dealloc)(self.core.cast()) };
        }
        std::mem::forget(self);
        output
    }

    /// Joins an order whose queue entry this thread just popped back from
    /// its own deque: with both references in hand and nobody else able to
    /// reach the block, it runs the closure and frees the block without a
    /// single atomic read-modify-write.
    pub(crate) fn join_popped(self, job: JobRef, mode: Mode) -> Result<T, OrderError> {
        debug_assert_eq!(job.id(), self.job_id());
        let header = self.header();
        let state = header.load(Ordering::Acquire);
        if state & NOT_PENDING != 0 || mode != Mode::Run {
            // Cancelled through this handle already, or to be cancelled now:
            // the general path reports it.
            job.execute(mode);
            return self.into_outcome();
        }
        // SAFETY: this thread holds both references (the handle, and the
        // queue entry it popped), so no other thread can reach the block;
        // the order is pending; the vtable matches the block's type.
        unsafe { (header.vtable.run_alone)(self.core.cast()) };
        let output = self.read_output(COMPLETED);
        header.state.store(COMPLETED | CLOSED, Ordering::Relaxed);
        // SAFETY: both references are this thread's and are dropped here;
        // the state says the closure ran and the outcome was taken.
        unsafe { (header.vtable.dealloc)(self.core.cast()) };
        std::mem::forget(self);
        output
    }

    /// Cancels the order if it has not started. Returns whether the order
    /// is cancelled (by this call or an earlier one).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the closure's destructor, after waking any
    /// waiter.
    pub(crate) fn cancel(&self) -> bool {
        let header = self.header();
        match header.close_pending(0) {
            Some(previous) => {
                let dropped = unwind::halt_unwinding(|| {
                    // SAFETY: the cancellation CAS gave this thread the
                    // closure; the vtable matches the block's type.
                    unsafe { (header.vtable.drop_closure)(self.core.cast()) }
                });
                header.notify_if_awaited(previous);
                if let Err(payload) = dropped {
                    unwind::resume_unwinding(payload);
                }
                true
            }
            None => {
                let state = header.load(Ordering::Acquire);
                state & CLOSED != 0 && state & (COMPLETED | REJECTED) == 0
            }
        }
    }

    /// Claims the order and runs it on this thread if nobody started it.
    /// Returns whether it ran here.
    pub(crate) fn run_here(&self) -> bool {
        let header = self.header();
        if !header.claim() {
            return false;
        }
        // SAFETY: this thread holds the handle and won the claim; the vtable
        // matches the block's type.
        unsafe { (header.vtable.run_claimed)(self.core.cast()) };
        true
    }

    /// Registers `waiter`; returns `false` if the order already has an
    /// outcome (and then drops the waiter).
    pub(crate) fn register_waiter(&self, waiter: Waiter) -> bool {
        let header = self.header();
        header.waiter.register(waiter, || {
            header.state.fetch_or(AWAITER, Ordering::AcqRel) & FINISHED != 0
        })
    }

    /// Registers an async task's waker; returns `false` if the order already
    /// has an outcome.
    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        let header = self.header();
        header.waiter.register_waker(waker, || {
            header.state.fetch_or(AWAITER, Ordering::AcqRel) & FINISHED != 0
        })
    }

    /// Forgets a registered waiter (a timed wait that gave up).
    pub(crate) fn unregister(&self) {
        self.header().waiter.clear();
    }
}

impl<T> Drop for RawOrder<T> {
    fn drop(&mut self) {
        let header = self.header();
        let previous = header.state.fetch_and(!HANDLE, Ordering::AcqRel);
        if previous & SCHEDULED == 0 {
            // SAFETY: the queue's reference was already gone: this was the
            // last; the vtable matches the block's type.
            unsafe { (header.vtable.dealloc)(self.core.cast()) };
        }
    }
}

// SAFETY: the handle gives access to the outcome `T` (moved out once, on the
// handle's thread) and to atomic state; sending it sends the right to that
// `T`, which requires `T: Send`.
unsafe impl<T: Send> Send for RawOrder<T> {}
// SAFETY: through `&RawOrder` only atomic state is read or changed (cancel,
// is_finished, register); the outcome is reached through `&mut` alone.
unsafe impl<T: Send> Sync for RawOrder<T> {}

#[cfg(all(test, loom))]
mod loom_tests;
