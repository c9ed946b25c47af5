//! Fork-join: run two closures, possibly in parallel, and return both
//! results.
//!
//! On one of the pool's bakers, `join(a, b)` allocates nothing: `b` becomes a
//! [`StackJob`] in the baker's own stack frame, recorded as a *pending fork*
//! in the baker's private list, which nobody else reads. The baker runs `a`;
//! if no colleague asked for work meanwhile, the fork is still private and
//! the baker runs `b` inline: no deque, no atomic read-modify-write, no
//! fence. A colleague out of work asks a busy baker, which then *promotes*
//! its oldest pending fork onto its deque (see [`super::promotion`]). A
//! promoted fork is handled as every fork once was: after `a`, the baker
//! pops its deque, and if `b` is still there, nobody stole it and the baker
//! runs it inline; if it was stolen, the baker works on other jobs (see
//! [`BakerThread::wait_until`]) until the thief sets `b`'s latch. The frame
//! does not return before `b` ran or was popped back, which is what makes
//! borrowing from it sound.
//!
//! From any other thread, `join` carries the whole fork-join into the pool
//! as one task (one allocation) and waits for it, like rayon's cold path;
//! `install` carries any closure the same way.
//!
//! [`JobRef`]: crate::engine::job::JobRef
//! [`StackJob`]: crate::engine::stack_job::StackJob

use crate::engine::baker_thread::BakerThread;
use crate::engine::latch::BakerLatch;
use crate::engine::probe::Probe;
use crate::engine::registry::Registry;
use crate::engine::stack_job::StackJob;
use crate::engine::task::{NewTask, TaskKind};
use crate::engine::unwind::{self, DropQuietlyOnUnwind};
use crate::error::OrderError;

/// The kind of the task that carries a cold `join` or an `install` into the
/// pool. It is never cancelled (neither has a way to report it) and never
/// rejected: when the pool is closing, the caller runs the work itself.
struct Carrier;

impl TaskKind for Carrier {
    const CANCELLABLE: bool = false;

    fn unobserved_panic(&self, panic: crate::error::PanicError) {
        // The caller always takes the outcome; a panic dropping leftovers of
        // a finished fork-join has nobody to go to.
        unwind::quietly(|| drop(panic));
    }

    fn released(self) {}
}

/// `Bakery::join` on `registry`'s pool.
pub(crate) fn join<A, B, RA, RB>(registry: &Registry, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    // The registry's address, not its id, says whose baker this is: both
    // the caller and the baker hold the registry alive, so equal addresses
    // are the same bakery, and the check costs a join two loads fewer.
    BakerThread::with_current(|baker| {
        match baker.filter(|baker| std::ptr::eq(&**baker.registry(), registry)) {
            Some(baker) => join_here(baker, a, b),
            None => join_cold(registry, a, b),
        }
    })
}

/// Fork-join on the current baker.
fn join_here<A, B, RA, RB>(baker: &BakerThread, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let pending = baker.pending();
    if pending.unpromoted() >= RECORDED {
        // Deep below forks still pending: nobody will want this one before
        // them (promotion takes the oldest), so it is two plain calls.
        baker.promote_if_asked();
        return join_inline(a, b);
    }
    let job_b = StackJob::new(b, BakerLatch::new(baker));
    // SAFETY: `job_b` stays in this frame until it ran: every path below
    // takes the reference off the pending forks before the frame ends, and
    // if it was promoted meanwhile, pops it back from the deque (and then
    // runs or drops `job_b` here) or waits for its latch.
    let job_b_ref = unsafe { job_b.as_job_ref() };
    let index = pending.push(job_b_ref);
    if index == 0 {
        // The outermost join on this baker's stack: promoted at once (see
        // `super::promotion`).
        baker.promote_for_demand();
    } else {
        baker.promote_if_asked();
    }

    let result_a = match unwind::halt_unwinding(a) {
        Ok(value) => value,
        Err(payload) => {
            // `b` may borrow this frame: make sure nobody runs it any more
            // before unwinding through it.
            if pending.pop(index) && !pop_back(baker, &job_b.latch, job_b.id()) {
                baker.wait_until(&job_b.latch);
            }
            // What is left of `b` (its unrun closure, or what it returned or
            // raised) is dropped before the unwinding starts, where a
            // destructor that panics cannot abort the process.
            unwind::quietly(move || drop(job_b));
            unwind::resume_unwinding(payload);
        }
    };

    // If `b` panics, `a`'s value is dropped by the unwinding, where a
    // destructor that panics too must not abort the process.
    let result_a = DropQuietlyOnUnwind::new(result_a);
    if !pending.pop(index) || pop_back(baker, &job_b.latch, job_b.id()) {
        let result_b = job_b.run_inline();
        return (result_a.into_inner(), result_b);
    }
    baker.wait_until(&job_b.latch);
    match job_b.into_outcome() {
        Ok(result_b) => (result_a.into_inner(), result_b),
        Err(payload) => {
            // Not unwinding yet: drop it quietly by hand.
            let result_a = result_a.into_inner();
            unwind::quietly(move || drop(result_a));
            unwind::resume_unwinding(payload)
        }
    }
}

/// How many unpromoted forks a baker records at most: a join below that
/// many pending ones runs its halves as plain calls (see
/// [`super::promotion`], where the choice of 8 is measured).
const RECORDED: usize = 8;

/// `join` as two plain calls, with the same panic rules as a join whose
/// fork nobody took.
#[inline(always)]
fn join_inline<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB,
{
    let result_a = match unwind::halt_unwinding(a) {
        Ok(value) => value,
        Err(payload) => {
            // `b`'s unrun closure is dropped before the unwinding starts,
            // where a destructor that panics cannot abort the process.
            unwind::quietly(move || drop(b));
            unwind::resume_unwinding(payload);
        }
    };
    let result_a = DropQuietlyOnUnwind::new(result_a);
    let result_b = b();
    (result_a.into_inner(), result_b)
}

/// Pops the local deque until a promoted fork comes back (returns `true`) or
/// the deque runs dry (`false`: it was stolen). Jobs above the fork were
/// pushed by `a` (or promoted by its joins and left unstolen, already run)
/// and are run on the way.
fn pop_back(baker: &BakerThread, latch: &BakerLatch, fork: *const ()) -> bool {
    while !latch.probe() {
        match baker.take_local() {
            Some(job) if job.id() == fork => return true,
            Some(job) => baker.execute(job),
            None => return false,
        }
    }
    false
}

/// Fork-join from outside the pool (or from another pool's baker): one task
/// carries it into the pool.
fn join_cold<A, B, RA, RB>(registry: &Registry, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let pool = registry.id();
    carry(registry, move || {
        BakerThread::with_own(pool, |baker| match baker {
            Some(baker) => join_here(baker, a, b),
            // Run by the caller itself because the pool is closing.
            None => {
                let a = DropQuietlyOnUnwind::new(a());
                let b = b();
                (a.into_inner(), b)
            }
        })
    })
}

/// `Bakery::install`: runs `op` on one of `registry`'s bakers and waits for
/// it, or runs it right here if the caller is one of them.
pub(crate) fn install<OP, R>(registry: &Registry, op: OP) -> R
where
    OP: FnOnce() -> R + Send,
    R: Send,
{
    BakerThread::with_own(registry.id(), |baker| match baker {
        Some(_) => op(),
        None => carry(registry, op),
    })
}

/// Carries `op` into the pool as one task and waits for its outcome,
/// re-raising its panic. If the pool is closing, the caller may end up
/// running `op` itself.
fn carry<OP, R>(registry: &Registry, op: OP) -> R
where
    OP: FnOnce() -> R + Send,
    R: Send,
{
    let task = NewTask::new(op, Carrier, registry.id(), None);
    // SAFETY: the only queue reference of this task. The closure borrows the
    // caller's stack, which is sound because this function does not return
    // before the task completed and its outcome was taken: the block may be
    // freed later, but by then it holds nothing borrowed.
    let job = unsafe { task.job_ref() };
    let order = task.into_handle();
    // The bakers may be gone before they see the task if the pool closed
    // meanwhile: run it here unless one of them already started it.
    registry.inject(job, || order.run_here());
    match order.join() {
        Ok(value) => value,
        Err(OrderError::Panicked(panic)) => panic.resume(),
        Err(error) => unreachable!("carried work is never cancelled nor rejected: {error}"),
    }
}
