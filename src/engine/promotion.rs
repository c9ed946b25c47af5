//! Promotion on demand: a `join` shares nothing until an idle baker asks.
//!
//! A `join(a, b)` on a baker used to push `b` onto the baker's deque at
//! every call and pop it back after `a`, paying the deque's fence even when
//! nobody wanted it. Now `b`'s [`StackJob`] is only *recorded* in the
//! baker's private list of **pending forks** ([`PendingForks`], a stack of
//! [`JobRef`]s that only the baker's own thread touches), and it reaches
//! the deque only when a colleague asks for work. A join that nobody asks
//! for costs a few plain loads and stores: no atomic read-modify-write, no
//! fence, no wake-up.
//!
//! This is heartbeat scheduling (Acar et al., PLDI 2018; Spice; chili)
//! without the heartbeat: instead of a timer telling every worker to share
//! its oldest pending fork every 100 µs, a baker that runs out of work asks
//! one busy colleague, and only then. No thread ticks while the bakers are
//! idle, and a request is served at the busy baker's next join, which on
//! fine-grained work is a few nanoseconds away, sooner than any tick.
//!
//! # The pieces
//!
//! * **Pending forks**, per baker, private: the `JobRef`s of the forks of
//!   the joins on its stack whose `a` is running, oldest first, and the
//!   count of the oldest ones already **promoted** (pushed onto the deque).
//!   The promoted ones are always the oldest: promotion takes the oldest
//!   unpromoted fork, and forks leave the list newest first, as their
//!   frames return.
//! * **Demand**, per baker, in its record ([`Demand`]): a flag that a
//!   searching colleague sets to ask this baker for work, and that the
//!   baker reads with one relaxed load at every join and between jobs.
//!
//! # The protocol
//!
//! `join(a, b)` on baker A:
//!
//! 1. makes `b` a [`StackJob`] in its frame and pushes its `JobRef` onto
//!    A's pending forks, remembering its index `i` (unless eight pending
//!    forks are unpromoted already: see below);
//! 2. if A's demand flag is set, or if the fork is A's only pending one
//!    (the outermost join on A's stack), clears the flag and promotes A's
//!    oldest unpromoted fork (maybe its own): the `JobRef` goes onto A's
//!    deque with the announcement of any push (a `SeqCst` fence and a look
//!    at the sleep counters, see [`super::sleep`]), so a sleeping baker is
//!    woken for it;
//! 3. runs `a`;
//! 4. takes entry `i` off the list (with everything above it, which inner
//!    joins have already taken off); whether it was promoted is whether
//!    `i` is below the promoted count;
//! 5. if it was not promoted, nobody else ever saw it: A runs `b` inline;
//! 6. if it was, A pops its deque until the fork comes back (and runs it
//!    inline), or, if it was stolen, works until the thief sets its latch,
//!    exactly as every join did before (see [`super::join`]).
//!
//! The outermost join is promoted at once, as every join used to be: its
//! fork is the biggest share of the work, one promotion per order (or per
//! stolen fork) costs nothing next to it, and an `a` that waits for its own
//! `b` (through a channel, say) still finds a colleague to run it, as it
//! did before. A join nested under a pending one is promoted only on
//! demand, so an `a` that blocks waiting for `b` there must say so with
//! [`blocking`](crate::blocking()).
//!
//! # Recording only the shallowest forks
//!
//! Recording a fork costs a join a few nanoseconds more than two plain
//! calls (fib(25) on one baker, 121,392 joins: about 1.6 ms with every fork
//! recorded, 1.05 ms with at most 3 unpromoted ones, chili 1.0 ms,
//! sequential 0.6 ms). So, as chili does, a baker records a fork only while
//! fewer than 8 of its pending forks are unpromoted; a join below those is
//! two plain calls, with the same panic rules, and it still serves a
//! request by promoting the oldest recorded fork. Promotion takes the
//! oldest fork, and the recorded ones are the oldest until they are
//! promoted, so the limit loses nothing while fewer than 8 are taken; once
//! they are, the joins after that are recorded again, but the plain-call
//! frames between stay with their baker. The number is measured, on 2
//! bakers, in the fork-join benches (`benches/pools.rs`), in the quieter
//! of two runs:
//!
//! | limit | fib(25) | tree sum, 2^21 - 1 nodes | quicksort, 500,000 `u32` |
//! |---:|---:|---:|---:|
//! | 3 | 0.43 ms | 40 ms (27 to 55) | 32.4 ms |
//! | 8 | 0.51 ms | 25.6 ms | 24.1 ms |
//! | 16 | 0.67 ms | 25.5 ms | 26.1 ms |
//!
//! With 3, quicksort's uneven partitions leave too few forks to share
//! (33.6 ms against 32.7 in the other run too); with 16, more of fib's
//! joins are recorded, each a few nanoseconds dearer.
//!
//! A baker that searches for work and finds none asks a colleague that is
//! working: it sets that baker's demand flag, once per search round, if it
//! is not set already. A searcher that gives up and sleeps leaves the flag
//! set, so the busy baker still promotes a fork, and the announcement of
//! that push wakes a sleeper. A baker entering [`blocking`](crate::blocking()) promotes
//! every pending fork first, so that its colleagues (or the stand-in started
//! for it) can run them while it blocks.
//!
//! # Why nothing runs twice and no join waits for ever
//!
//! An unpromoted fork's `JobRef` exists only in its owner's private list,
//! which no other thread reads, and the list never hands an entry out
//! twice (promotion moves it out and advances the count past it): so either
//! it stays private and its owner runs it inline (step 5), or it was moved
//! onto the deque exactly once, and from there it is popped back or stolen
//! exactly once, as any job is (step 6). Step 4 tells the two cases apart
//! from the count alone, with no race, because only the owner promotes.
//!
//! A join waits only for a promoted fork that was stolen, whose thief sets
//! the latch when it finishes; that wait is the one every join had before.
//! An unpromoted fork never needs anyone but its owner. A lost or merged
//! request (two searchers asking at once are served by one promotion)
//! costs parallelism, never a job: at worst the owner runs its forks
//! itself, and a searcher asks again every round.
//!
//! # Why a stolen fork's frame outlives it
//!
//! A frame holding a promoted fork does not return (nor unwind: a panic in
//! `a` is caught first) before the fork was popped back or its latch was
//! set, the last thing its thief touches. Forks leave the pending list in
//! stack order: every join takes its entry off before its frame returns,
//! and nested joins (inside `a`, or inside work the baker runs while it
//! waits) push above it and take theirs off first. So no entry outlives
//! the frame it points into, and a promotion never pushes a dangling
//! reference.
//!
//! The promoted forks sit on the deque oldest first, as their joins are
//! nested, so the newest is on top when its join pops back, and a thief
//! takes the oldest, the biggest share of the work.
//!
//! The model `join_races_its_promotion_and_a_steal` in `tests/loom.rs`
//! checks a join whose fork is promoted on demand while the asking baker
//! steals it.
//!
//! [`StackJob`]: super::stack_job::StackJob

use crate::engine::baker_record::Activity;
use crate::engine::baker_thread::BakerThread;
use crate::engine::job::JobRef;
use crate::engine::sync::unmodelled::AtomicBool;
use crate::engine::sync::Ordering;
use std::cell::{Cell, UnsafeCell};

/// How many pending forks a baker's list holds before it first grows: 64
/// nested joins, more than a balanced fork-join tree of 2^64 leaves needs.
const INITIAL_CAPACITY: usize = 64;

/// A baker's pending forks: the joins on its stack whose `a` runs, oldest
/// first, and how many of the oldest were promoted. Only the baker's own
/// thread touches it.
pub(crate) struct PendingForks {
    /// The forks' references; entries below `promoted` were moved onto the
    /// deque and are `None`.
    forks: UnsafeCell<Vec<Option<JobRef>>>,
    promoted: Cell<usize>,
}

impl PendingForks {
    pub(crate) fn new() -> PendingForks {
        PendingForks {
            forks: UnsafeCell::new(Vec::with_capacity(INITIAL_CAPACITY)),
            promoted: Cell::new(0),
        }
    }

    /// Runs `f` on the list.
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Option<JobRef>>) -> R) -> R {
        // SAFETY: the list is not `Sync` (the cells), so only its baker's
        // thread reaches it, and no call made while `f` runs reaches it
        // again: the borrow is unique.
        f(unsafe { &mut *self.forks.get() })
    }

    /// Records a fork as the newest pending one; returns its index, for
    /// [`pop`](Self::pop).
    #[inline(always)]
    pub(crate) fn push(&self, fork: JobRef) -> usize {
        self.with(|forks| {
            let index = forks.len();
            forks.push(Some(fork));
            index
        })
    }

    /// Takes the fork at `index`, the newest pending one, off the list.
    /// Returns whether it was promoted.
    #[inline(always)]
    pub(crate) fn pop(&self, index: usize) -> bool {
        self.with(|forks| forks.truncate(index));
        let promoted = self.promoted.get();
        if index < promoted {
            self.promoted.set(index);
            true
        } else {
            false
        }
    }

    /// How many forks are pending and not promoted.
    #[inline(always)]
    pub(crate) fn unpromoted(&self) -> usize {
        self.with(|forks| forks.len()) - self.promoted.get()
    }

    /// Takes the oldest unpromoted fork for the deque, and counts it
    /// promoted.
    pub(crate) fn promote_oldest(&self) -> Option<JobRef> {
        let promoted = self.promoted.get();
        let fork = self.with(|forks| forks.get_mut(promoted)?.take())?;
        self.promoted.set(promoted + 1);
        Some(fork)
    }
}

/// A baker's demand flag: set by a colleague that found no work, cleared
/// by the baker when it promotes a fork for it. Only a hint (a lost request
/// costs parallelism, never a job), so it is left out of the loom models
/// (see [`crate::engine::sync::unmodelled`]).
pub(crate) struct Demand {
    asked: AtomicBool,
}

impl Demand {
    pub(crate) fn new() -> Demand {
        Demand {
            asked: AtomicBool::new(false),
        }
    }

    /// Whether a colleague asks for work: one relaxed load.
    #[inline(always)]
    pub(crate) fn is_asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }

    /// Asks for work, writing only if nobody asked yet, so that repeated
    /// requests do not take the line from the busy baker that reads it.
    #[inline]
    pub(crate) fn ask(&self) {
        if !self.asked.load(Ordering::Relaxed) {
            self.asked.store(true, Ordering::Relaxed);
        }
    }

    /// The baker serves the request, if there was one.
    #[inline]
    pub(crate) fn clear(&self) {
        if self.asked.load(Ordering::Relaxed) {
            self.asked.store(false, Ordering::Relaxed);
        }
    }
}

impl BakerThread {
    /// Promotes the oldest unpromoted fork if a colleague asked for work:
    /// one relaxed load when nobody did.
    #[inline(always)]
    pub(crate) fn promote_if_asked(&self) {
        if self.record().demand().is_asked() {
            self.promote_for_demand();
        }
    }

    /// Promotes the oldest unpromoted fork, if any, serving any request.
    #[cold]
    #[inline(never)]
    pub(crate) fn promote_for_demand(&self) {
        if let Some(fork) = self.pending().promote_oldest() {
            // Cleared before the push, whose announcement then comes after
            // the request it serves (see the module docs).
            self.record().demand().clear();
            self.push(fork);
        }
    }

    /// Promotes every pending fork, oldest first: this baker is about to
    /// block, and its colleagues may run them meanwhile.
    #[cold]
    pub(crate) fn promote_all(&self) {
        while let Some(fork) = self.pending().promote_oldest() {
            self.push(fork);
        }
    }

    /// Asks a working colleague to share a fork: this baker found no work.
    /// Tries one not asked yet, starting from a random one so that
    /// searchers spread out.
    pub(crate) fn ask_for_work(&self) {
        let registry = self.registry();
        let bakers = registry.indices();
        if bakers <= 1 {
            return;
        }
        let start = self.random_below(bakers);
        let me = self.index();
        for victim in (start..bakers).chain(0..start).filter(|&i| i != me) {
            let record = registry.record(victim);
            if record.activity() == Activity::Working && !record.demand().is_asked() {
                record.demand().ask();
                return;
            }
        }
    }
}
