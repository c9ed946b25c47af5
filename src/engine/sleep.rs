//! How idle bakers fall asleep and how they are woken, without ever losing a
//! wake-up.
//!
//! # The pieces
//!
//! * Every baker has a **slot**: a mutex around its [`SlotState`] and, while
//!   it sleeps, its thread handle. A baker decides to block only while
//!   holding its own slot's lock, and then parks its thread until a waker
//!   sets the slot back to `Awake` under that lock and unparks it.
//! * One **counter word** packs two numbers: how many bakers are *searching*
//!   (idle, awake, looking for work) and how many are *sleeping* (blocked on
//!   their slot, and willing to be woken for any new work).
//!
//! A baker out of work first searches: it is counted as searching, and for a
//! few rounds it looks at every queue, yielding its core between rounds. Then
//! it goes to sleep through [`Sleep::sleep`]:
//!
//! 1. lock its slot;
//! 2. check, under the lock, that it still wants to sleep (its latch is not
//!    set; the pool is not shutting down);
//! 3. move itself from *searching* to *sleeping* in the counter word
//!    (a `SeqCst` read-modify-write), then issue a `SeqCst` fence;
//! 4. look at every queue once more; if any holds work, move itself back to
//!    *searching* and return;
//! 5. otherwise mark the slot [`SlotState::Idle`], release the lock and park
//!    until someone sets it back to [`SlotState::Awake`] and unparks it.
//!
//! Whoever makes new work visible (a `submit`, a fork in `join`) does the
//! mirror image: push the work, issue a `SeqCst` fence, read the counter word,
//! and if no baker is searching but some baker is sleeping, wake one: lock
//! its slot, and if it is `Idle` set it `Awake`, move it from *sleeping* back
//! to *searching*, release the lock and unpark its thread.
//!
//! # Why no work is stranded
//!
//! Take a baker B falling asleep and a submitter S pushing a job J. Both run
//! "write; `SeqCst` fence; read": S writes J into a queue and reads the
//! counter word, B writes the counter word and reads the queues. Two `SeqCst`
//! fences are totally ordered, so whichever fence comes second, its thread's
//! read sees the other thread's write. Either B's step 4 sees J (and B does
//! not sleep), or S sees B counted as sleeping (and S wakes a sleeping baker,
//! B or another one, and that baker takes J).
//!
//! S skips the wake-up when it sees a *searching* baker. The last searcher
//! to stop searching does so after S read the counter word, and then one of
//! three things happens: it finds J; it falls asleep, crossing the fence at
//! step 3 after S's fence, and finds J at step 4; or it stops searching for
//! another reason (it found other work, or the event it waited for
//! happened) and, being the last searcher, fences, sees J still queued and
//! wakes a sleeper if one sleeps ([`Sleep::stop_searching`]). So a burst of
//! orders wakes bakers one after another, each woken baker handing the
//! wake-up on when it finds work and leaves some, rather than every submit
//! waking one more: a bakery of hundreds of bakers wakes only as many as
//! keep finding work.
//!
//! A wake-up cannot fall between B's decision and B's block: B holds its
//! slot's lock from step 1 until the slot says `Idle`, and a waker reads the
//! slot state only under that lock. If the waker comes first, B sees the new
//! work at step 4; if B comes first, the waker finds the slot `Idle`, sets
//! it `Awake` and unparks B. An unpark that lands before B parks is kept as
//! the thread's token, so B's park returns at once; a park that returns for
//! any other reason finds the slot still asleep and parks again.
//!
//! # Latches: waiting for one thing
//!
//! A baker that waits for one event (the stolen half of a `join`, an order it
//! joins, a scope) registers itself with that event and then sleeps the same
//! way, with step 2 checking the event. The event's setter calls
//! [`Sleep::wake_specific`] for that baker after making the event visible,
//! which takes the slot's lock: either the setter locks first, and the
//! baker's step 2 sees the event, or the baker blocks first, and the setter
//! finds its slot asleep and wakes it.
//!
//! A baker waiting deep in nested waits stops taking unrelated work (to bound
//! its stack, see [`super::baker_thread`]). Such a baker sleeps as
//! [`SlotState::Waiting`]: it is not counted as sleeping, and a wake-up for
//! new work never picks it, since it would not take the work.
//!
//! # Shutting down
//!
//! Shutdown sets the pool's `closed` flag and then wakes every slot. A baker
//! checks `closed` at step 2 under its lock, so it either sees the flag or is
//! asleep when the wake-up comes. Before leaving for good a baker makes the
//! same "fence, then look at every queue" check, so an order pushed by a
//! submitter that had not yet seen `closed` is either run or, if the
//! submitter sees `closed` after its push, rejected by the submitter (see
//! [`super::registry::shutdown`]).
//!
//! # Where the slots live
//!
//! Each slot lives in its baker's record (see [`super::baker_record`]); the
//! counter word lives here. The functions that must find a slot to wake
//! take the bakers' slots as a [`Slots`].

use crate::engine::sync::{fence, thread, thread::Thread, AtomicUsize, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::time::{Duration, Instant};

// Each half of the counter word has 16 bits on every platform, which is
// why a bakery holds at most `roster::MAX_BAKERS` bakers.
const SHIFT: u32 = 16;
const ONE_SEARCHING: usize = 1;
const ONE_SLEEPING: usize = 1 << SHIFT;
const FIELD: usize = (1 << SHIFT) - 1;

fn searching(counters: usize) -> usize {
    counters & FIELD
}

fn sleeping(counters: usize) -> usize {
    (counters >> SHIFT) & FIELD
}

/// What a baker's slot says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Not blocked.
    Awake,
    /// Blocked, counted as sleeping, willing to take any new work.
    Idle,
    /// Blocked for its own latch only; not counted, never woken for work.
    Waiting,
}

/// A baker's slot: what it sleeps for, and its thread to unpark. Guarded by
/// one lock, which is the whole point (see the module docs).
pub(crate) struct Slot {
    inner: Mutex<SlotInner>,
}

struct SlotInner {
    state: SlotState,
    /// The sleeping baker's thread, while `state` is not `Awake`.
    thread: Option<Thread>,
}

impl Slot {
    /// The slot of a baker that is awake.
    pub(crate) fn new() -> Slot {
        Slot {
            inner: Mutex::new(SlotInner {
                state: SlotState::Awake,
                thread: None,
            }),
        }
    }
}

/// The bakers' slots, by index, as the sleep protocol reaches them.
pub(crate) trait Slots {
    /// How many bakers there are (or ever were): slots `0..count()` exist.
    fn count(&self) -> usize;

    /// Baker `index`'s slot.
    fn slot(&self, index: usize) -> &Slot;
}

/// The sleep and wake-up state of one bakery: the counter word.
pub(crate) struct Sleep {
    counters: CachePadded<AtomicUsize>,
}

impl Sleep {
    pub(crate) fn new() -> Sleep {
        Sleep {
            counters: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// A baker ran out of work and starts searching. Returns how many
    /// others were searching already.
    #[inline]
    pub(crate) fn start_searching(&self) -> usize {
        searching(self.counters.fetch_add(ONE_SEARCHING, Ordering::SeqCst))
    }

    /// A baker stops searching, having found work or not. If it was the last
    /// searcher while bakers sleep and `has_work()` says work remains, it
    /// wakes one: a submitter that skipped its wake-up because this baker
    /// was searching is covered, and a burst of orders draws in one baker
    /// after another.
    ///
    /// The fence pairs with the submitter's (see the module docs): the
    /// submitter read this baker as searching before this decrement, so this
    /// baker's `has_work()` sees the submitter's work.
    ///
    /// Returns whether the caller was the last searcher with nobody asleep:
    /// every baker is busy now.
    #[inline]
    pub(crate) fn stop_searching(
        &self,
        slots: &impl Slots,
        has_work: impl FnOnce() -> bool,
    ) -> bool {
        let before = self.counters.fetch_sub(ONE_SEARCHING, Ordering::SeqCst);
        if searching(before) == 1 && sleeping(before) > 0 {
            fence(Ordering::SeqCst);
            if has_work() {
                self.wake_any(slots);
            }
        }
        searching(before) == 1 && sleeping(before) == 0
    }

    /// New work became visible. The caller has issued a `SeqCst` fence after
    /// making it visible (see the module docs) unless the work is a fork the
    /// caller will run itself if nobody takes it. Wakes a sleeping baker if
    /// none is searching.
    ///
    /// Returns whether every baker is busy (none searching, none asleep), so
    /// that the new work waits.
    #[inline]
    pub(crate) fn new_work(&self, slots: &impl Slots) -> bool {
        let counters = self.counters.load(Ordering::SeqCst);
        if searching(counters) > 0 {
            return false;
        }
        if sleeping(counters) == 0 {
            return true;
        }
        self.wake_any(slots);
        false
    }

    /// Whether every baker is busy: none searching, none asleep.
    pub(crate) fn all_busy(&self) -> bool {
        self.counters.load(Ordering::SeqCst) == 0
    }

    /// Puts the baker whose slot is `slot` to sleep, following steps 1 to 5
    /// of the module docs. Returns when woken, or at once if
    /// `keep_sleeping()` is false under the slot's lock or, for
    /// `SlotState::Idle`, `has_work()` is true after the fence. An `Idle`
    /// sleeper must be counted as searching on entry, and is counted as
    /// searching again on return.
    ///
    /// With a `timeout`, it also returns once that passed with nobody waking
    /// it, and then returns `true`. It takes itself off its slot under the
    /// slot's lock, as a waker would, so either the waker finds the slot
    /// asleep and wakes it (and the sleeper sees `Awake`: not a timeout), or
    /// the sleeper takes itself off first and the waker finds it awake and
    /// wakes somebody else.
    pub(crate) fn sleep(
        &self,
        slot: &Slot,
        mode: SlotState,
        keep_sleeping: impl Fn() -> bool,
        has_work: impl FnOnce() -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        debug_assert_ne!(mode, SlotState::Awake);
        let mut inner = slot.inner.lock();
        debug_assert_eq!(inner.state, SlotState::Awake);
        if !keep_sleeping() {
            return false;
        }
        if mode == SlotState::Idle {
            self.counters
                .fetch_add(ONE_SLEEPING.wrapping_sub(ONE_SEARCHING), Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if has_work() {
                self.counters
                    .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::SeqCst);
                return false;
            }
        }
        inner.state = mode;
        inner.thread = Some(thread::current());
        drop(inner);
        let deadline = timeout.map(|timeout| Instant::now().checked_add(timeout));
        // Step 5: block until a waker sets the slot `Awake`. The waker
        // unparks after setting it under the lock, and an unpark that comes
        // before the park is kept by the thread, so nothing is missed;
        // spurious returns from `park` just look again.
        loop {
            let expired = match deadline {
                None | Some(None) => {
                    thread::park();
                    false
                }
                Some(Some(deadline)) => {
                    let now = Instant::now();
                    if now < deadline {
                        thread::park_timeout(deadline - now);
                    }
                    Instant::now() >= deadline
                }
            };
            let mut inner = slot.inner.lock();
            if inner.state == SlotState::Awake {
                return false;
            }
            if expired {
                if inner.state == SlotState::Idle {
                    self.counters
                        .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::SeqCst);
                }
                inner.state = SlotState::Awake;
                inner.thread = None;
                return true;
            }
        }
    }

    /// Wakes the baker of `slot` whatever it sleeps for (its latch was set).
    pub(crate) fn wake_specific(&self, slot: &Slot) {
        self.wake(slot, true);
    }

    /// Wakes one baker sleeping as `Idle`, if any.
    #[cold]
    fn wake_any(&self, slots: &impl Slots) {
        for index in 0..slots.count() {
            if self.wake(slots.slot(index), false) {
                return;
            }
        }
    }

    /// Wakes every sleeping baker (shutdown).
    pub(crate) fn wake_all(&self, slots: &impl Slots) {
        for index in 0..slots.count() {
            self.wake(slots.slot(index), true);
        }
    }

    fn wake(&self, slot: &Slot, also_waiting: bool) -> bool {
        let mut inner = slot.inner.lock();
        match inner.state {
            SlotState::Awake => return false,
            SlotState::Waiting if !also_waiting => return false,
            SlotState::Waiting => {}
            SlotState::Idle => {
                self.counters
                    .fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), Ordering::SeqCst);
            }
        }
        inner.state = SlotState::Awake;
        let sleeper = inner.thread.take();
        drop(inner);
        if let Some(sleeper) = sleeper {
            sleeper.unpark();
        }
        true
    }
}

#[cfg(all(test, loom))]
pub(crate) mod loom_tests;
