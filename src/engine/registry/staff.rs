//! The staff: how many bakers the bakery should have, which of them are
//! blocked, and how a baker joins or leaves a live bakery.
//!
//! # Counting
//!
//! Under the staff lock:
//!
//! * `target` is the configured number of bakers (`Bakery::bakers`,
//!   changed by `set_bakers`);
//! * `on_duty` counts the bakers that hold an index and were not asked to
//!   retire;
//! * `blocked` counts those of them that are blocked: inside `blocking`, in
//!   a wait past its stack budget, or found blocked by the monitor.
//!
//! The bakery keeps `on_duty - blocked >= target` runnable bakers while it
//! can (up to `max_bakers` in all): when a baker blocks and that would
//! leave fewer, a baker is started. When `on_duty - blocked > target`
//! (after a blocked baker came back) the staff has a *surplus*: a baker
//! whose index is at or past `target`, which is one such baker at least
//! whenever there is a surplus, waits `keep_alive` for work once it is out
//! of it, and retires if the surplus is still there then. So the bakers the
//! bakery started with stay, and the stand-ins go home. `set_bakers` grows
//! the staff at once and shrinks it by asking bakers to retire after their
//! current order.
//!
//! # Joining
//!
//! A new baker takes the lowest free index, or the next one (allocating its
//! record, see [`crate::engine::roster`]), and with it the owner's end of
//! that index's deque. It counts as alive and present before its thread
//! starts, and its thread is started and its handle recorded under the
//! staff lock, which a shutdown also takes to join the threads: the shutdown
//! either sees the new handle, or the new baker sees the bakery closed and
//! leaves at once, draining like any other.
//!
//! # Leaving a live bakery (retiring)
//!
//! A baker retires only from its life loop, between orders: when asked to
//! (its record's flag, checked after every job), or when it woke from a
//! surplus wait with no work and, under the staff lock, is still surplus.
//! On its way out it runs its stop hook, moves whatever is left on its deque
//! into the injector and announces it like a submit, and then, under the
//! staff lock, marks its record vacant and gives back the owner's end of the
//! deque and the index; it never touches the record after that. Nothing
//! queued is lost: what was on the deque is in the injector, announced
//! after a `SeqCst` fence like any outside order, and a stealer that reads
//! the deque meanwhile finds each entry either still there or already
//! moved. A baker that retires while the bakery closes leaves as in a
//! shutdown: it counts as present until it is gone, so whoever leaves last
//! drains the injector.

use super::{Namer, Registry, RegistryParts};
use crate::engine::baker_record::{Activity, BakerRecord};
use crate::engine::baker_thread;
use crate::engine::job::JobRef;
use crate::engine::monitor;
use crate::engine::sync::{fence, thread, thread::JoinHandle, Arc, MutexGuard, Ordering, Worker};
use crate::engine::unwind;
use crate::error::{BuildError, SetBakersError};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// The staff's counts and the bakers' threads; guarded by the staff lock.
pub(crate) struct Staff {
    target: usize,
    max: usize,
    on_duty: usize,
    blocked: usize,
    /// Indices below the roster's length that no thread holds.
    free: BinaryHeap<Reverse<usize>>,
    /// Every baker thread started and not yet joined.
    pub(super) handles: Vec<JoinHandle<()>>,
    /// A shutdown is joining the threads, or has joined them.
    pub(super) joining: bool,
    pub(super) joined: bool,
    /// The names of the first bakers, taken as their records are made.
    names: std::vec::IntoIter<String>,
    /// Names the bakers started later.
    namer: Option<Namer>,
    stack_size: usize,
}

std::thread_local! {
    /// Whether this thread runs a baker-naming closure, under the staff
    /// lock (see [`Registry::lock_staff`]).
    static NAMING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The name of baker `index` when nobody names it.
pub(crate) fn default_name(index: usize) -> String {
    format!("baker-{index}")
}

/// Whether a baker about to start is counted as present and alive already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counted {
    Already,
    No,
}

/// Why a baker could not be started.
enum StartError {
    /// `max_bakers` bakers hold an index already.
    Full,
    /// The operating system refused the thread.
    Spawn { index: usize, source: io::Error },
}

impl Staff {
    pub(super) fn new(parts: &mut RegistryParts) -> Staff {
        Staff {
            target: parts.names.len(),
            max: parts.max_bakers,
            on_duty: 0,
            blocked: 0,
            free: BinaryHeap::new(),
            handles: Vec::new(),
            joining: false,
            joined: false,
            names: std::mem::take(&mut parts.names).into_iter(),
            namer: parts.namer.take(),
            stack_size: parts.stack_size,
        }
    }

    /// The name of a baker index used for the first time: one of the first
    /// bakers' names, checked by the builder, or else the namer's. A namer
    /// that panics, or gives a name no thread can have, is not asked to fix
    /// it: the baker is named as without a namer.
    fn name_for(&mut self, index: usize) -> String {
        if let Some(name) = self.names.next() {
            return name;
        }
        let named = self.namer.as_mut().and_then(|namer| {
            NAMING.with(|naming| naming.set(true));
            let named = unwind::halt_unwinding(AssertUnwindSafe(|| namer(index))).ok();
            NAMING.with(|naming| naming.set(false));
            named
        });
        match named {
            Some(name) if !name.contains('\0') => name,
            _ => default_name(index),
        }
    }

    fn surplus(&self) -> usize {
        self.on_duty.saturating_sub(self.blocked + self.target)
    }

    fn short(&self) -> bool {
        self.on_duty < self.target + self.blocked
    }
}

impl Registry {
    /// Takes the staff lock.
    ///
    /// # Panics
    ///
    /// On a thread running the bakery's baker-naming closure, which runs
    /// under this lock: a namer that asks the bakery about its staff
    /// (`bakers`, `set_bakers`, `blocking`, a shutdown) would otherwise wait
    /// for ever. The panic ends the namer, and the baker gets the default
    /// name.
    pub(crate) fn lock_staff(&self) -> MutexGuard<'_, Staff> {
        assert!(
            !NAMING.with(std::cell::Cell::get),
            "a baker-naming closure called into its own bakery"
        );
        self.staff.lock()
    }

    /// Starts the bakery's first bakers.
    ///
    /// # Errors
    ///
    /// [`BuildError::Spawn`] if the operating system refuses a thread; the
    /// bakers already started are then stopped and joined.
    pub(crate) fn start(parts: RegistryParts) -> Result<Arc<Registry>, BuildError> {
        let bakers = parts.names.len();
        let registry = Arc::new(Registry::new(parts));
        // The first bakers count as present and alive all at once.
        registry.bakers_arriving(bakers);
        let mut staff = registry.lock_staff();
        for started in 0..bakers {
            match Registry::start_baker(&registry, &mut staff, Counted::Already) {
                Ok(_) => {}
                Err(StartError::Spawn { index, source }) => {
                    drop(staff);
                    for _ in started..bakers {
                        registry.baker_leaving();
                        registry.baker_left();
                    }
                    registry.close(false);
                    let _ = registry.wait_for_bakers(None);
                    return Err(BuildError::Spawn { index, source });
                }
                Err(StartError::Full) => unreachable!("the builder checks the ceiling"),
            }
        }
        if registry.monitor.is_some() {
            match monitor::spawn(registry.clone()) {
                Ok(handle) => staff.handles.push(handle),
                Err(source) => {
                    drop(staff);
                    registry.close(false);
                    let _ = registry.wait_for_bakers(None);
                    return Err(BuildError::Spawn {
                        index: bakers,
                        source,
                    });
                }
            }
        }
        drop(staff);
        Ok(registry)
    }

    /// Starts one baker, under the staff lock `staff`, counting it as
    /// present and alive unless the caller did.
    fn start_baker(
        this: &Arc<Registry>,
        staff: &mut Staff,
        counted: Counted,
    ) -> Result<usize, StartError> {
        // Threads that retired are finished: join them now, so the list of
        // handles stays as long as the staff. (Loom's handles cannot say;
        // its models start few bakers.)
        #[cfg(not(loom))]
        {
            let mut kept = Vec::with_capacity(staff.handles.len() + 1);
            for handle in staff.handles.drain(..) {
                if handle.is_finished() {
                    let _ = handle.join();
                } else {
                    kept.push(handle);
                }
            }
            staff.handles = kept;
        }

        let index = match staff.free.pop() {
            Some(Reverse(index)) => index,
            None if this.roster.len() < staff.max => {
                let index = this.roster.len();
                let name = staff.name_for(index);
                this.roster.push(BakerRecord::new(name.into()));
                index
            }
            None => return Err(StartError::Full),
        };
        let record = this.roster.record(index);
        record.set_retire(false);
        record.set_activity(Activity::Working);
        if counted == Counted::No {
            this.bakers_arriving(1);
        }
        let registry = this.clone();
        let stack_size = staff.stack_size;
        // The thread takes the deque's owner end from the record itself, so
        // that it stays there if the thread cannot start.
        let spawned = thread::Builder::new()
            .name(record.name().to_string())
            .stack_size(stack_size)
            .spawn(move || baker_thread::run(registry, index, stack_size));
        match spawned {
            Ok(handle) => {
                staff.handles.push(handle);
                staff.on_duty += 1;
                this.update_surplus(staff);
                Ok(index)
            }
            Err(source) => {
                record.set_activity(Activity::Vacant);
                fence(Ordering::SeqCst);
                this.baker_stopped();
                staff.free.push(Reverse(index));
                if counted == Counted::No {
                    this.baker_leaving();
                    this.baker_left();
                }
                Err(StartError::Spawn { index, source })
            }
        }
    }

    /// Publishes the staff's counts for lock-free readers. When a surplus
    /// appears, the bakers that may go home (see [`may_retire`]) and are
    /// asleep are woken, so that they sleep again with a keep-alive.
    ///
    /// [`may_retire`]: Registry::may_retire
    fn update_surplus(&self, staff: &Staff) {
        let before = self.surplus.swap(staff.surplus(), Ordering::Relaxed);
        self.target_hint.store(staff.target, Ordering::Relaxed);
        if before == 0 && staff.surplus() > 0 {
            // Pairs with the fence a baker makes between saying it is idle
            // and reading the keep-alive before it sleeps.
            fence(Ordering::SeqCst);
            for index in staff.target..self.roster.len() {
                if self.roster.record(index).activity() == Activity::Idle {
                    self.wake_baker(index);
                }
            }
        }
    }

    /// Whether baker `index` is one that goes home when the staff has a
    /// surplus: one at or past the configured number, so that the bakers
    /// the bakery started with (and their names) stay, and the stand-ins
    /// leave. A hint, read without the lock.
    #[inline]
    pub(crate) fn may_retire(&self, index: usize) -> bool {
        self.surplus.load(Ordering::Relaxed) > 0
            && index >= self.target_hint.load(Ordering::Relaxed)
    }

    /// The configured number of bakers.
    pub(crate) fn target(&self) -> usize {
        self.lock_staff().target
    }

    /// How long a surplus baker waits for work before it retires.
    pub(crate) fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// Changes the configured number of bakers (see the module docs).
    ///
    /// # Errors
    ///
    /// See [`SetBakersError`].
    pub(crate) fn set_bakers(this: &Arc<Registry>, bakers: usize) -> Result<(), SetBakersError> {
        let mut staff = this.lock_staff();
        if bakers == 0 {
            return Err(SetBakersError::NoBakers);
        }
        if bakers > staff.max {
            return Err(SetBakersError::TooManyBakers {
                requested: bakers,
                max: staff.max,
            });
        }
        if this.is_closed() {
            return Err(SetBakersError::Closed);
        }
        staff.target = bakers;
        while staff.short() {
            match Registry::start_baker(this, &mut staff, Counted::No) {
                Ok(_) => {}
                Err(StartError::Full) => break,
                Err(StartError::Spawn { index, source }) => {
                    this.update_surplus(&staff);
                    return Err(SetBakersError::Spawn { index, source });
                }
            }
        }
        // Shrinking: ask the surplus bakers to retire after their current
        // order, idle ones first, then the highest indices.
        let mut surplus = staff.surplus();
        if surplus > 0 {
            let mut candidates: Vec<usize> = (0..this.roster.len())
                .filter(|&index| {
                    let record = this.roster.record(index);
                    matches!(
                        record.activity(),
                        Activity::Idle | Activity::Searching | Activity::Working
                    ) && !record.retire_requested()
                        && !record.detected_blocked()
                })
                .collect();
            candidates.sort_by_key(|&index| {
                let idle = matches!(
                    this.roster.record(index).activity(),
                    Activity::Idle | Activity::Searching
                );
                (Reverse(idle), Reverse(index))
            });
            for index in candidates {
                if surplus == 0 {
                    break;
                }
                this.roster.record(index).set_retire(true);
                staff.on_duty -= 1;
                surplus -= 1;
                this.wake_baker(index);
            }
        }
        this.update_surplus(&staff);
        Ok(())
    }

    /// Baker `index` is about to block (declared by `blocking`, or found by
    /// the monitor): start another if that leaves too few runnable, and make
    /// sure the work it leaves queued is looked at. Returns whether it was
    /// counted as blocked, which the caller undoes with
    /// [`baker_unblocks`](Registry::baker_unblocks): a baker already on its
    /// way home (asked to retire, or retiring on `keep_alive`) is off duty,
    /// and is not counted, or its blocking would start a stand-in for a
    /// baker the bakery no longer counts on.
    ///
    /// Also once the bakery closed, until its threads are being joined: a
    /// stand-in then drains the queues with the others and leaves, so that
    /// an order blocked while the bakery shuts down still has its queued
    /// work run.
    pub(crate) fn baker_blocks(this: &Arc<Registry>, index: usize) -> bool {
        {
            let mut staff = this.lock_staff();
            if this.roster.record(index).retire_requested() {
                return false;
            }
            staff.blocked += 1;
            if staff.short() && !staff.joining {
                // A thread the system refuses is one baker fewer, as when
                // the ceiling is reached: the bakery carries on with those
                // it has.
                let _ = Registry::start_baker(this, &mut staff, Counted::No);
            }
            this.update_surplus(&staff);
        }
        // Its deque stays stealable: wake a sleeping baker for what is on it
        // or in the injector.
        this.wake_for_queued_work();
        true
    }

    /// Baker `index` is runnable again.
    pub(crate) fn baker_unblocks(&self, _index: usize) {
        let mut staff = self.lock_staff();
        staff.blocked -= 1;
        self.update_surplus(&staff);
    }

    /// Surplus baker `index`, out of work, waited `keep_alive`: claims its
    /// retirement if the staff still has a surplus and it is still one of
    /// the bakers that go home (see [`may_retire`](Registry::may_retire)).
    pub(crate) fn try_retire_surplus(&self, index: usize) -> bool {
        let mut staff = self.lock_staff();
        if staff.surplus() == 0 || index < staff.target || self.is_closed() {
            return false;
        }
        staff.on_duty -= 1;
        // Claimed: `set_bakers` must not count it again while it leaves.
        self.roster.record(index).set_retire(true);
        self.update_surplus(&staff);
        true
    }

    /// A retiring baker, already `Vacant` (see
    /// [`leave_if_inbox_empty`](Registry::leave_if_inbox_empty)), gives back
    /// its index and its deque's owner end, and never touches its record
    /// again.
    ///
    /// The index it frees may be the one a stand-in (or `set_bakers`) was
    /// refused for at the ceiling: if the staff is short, a baker starts on
    /// it now.
    pub(crate) fn retired(this: &Arc<Registry>, index: usize, worker: Worker<JobRef>) {
        let mut staff = this.lock_staff();
        let record = this.roster.record(index);
        record.set_os_thread(None);
        record.put_worker(worker);
        staff.free.push(Reverse(index));
        if staff.short() && !this.is_closed() {
            let _ = Registry::start_baker(this, &mut staff, Counted::No);
            this.update_surplus(&staff);
        }
    }

    /// A baker on its way home (its deque empty or handed over) says it is
    /// `Vacant`, under the staff lock, if its inbox is empty; otherwise it
    /// must run what the inbox holds first and try again. Under the same
    /// lock as every delivery, so nothing is delivered to it afterwards (see
    /// [`BakerRecord::deliver`]).
    pub(crate) fn leave_if_inbox_empty(&self, index: usize) -> bool {
        let _staff = self.lock_staff();
        let record = self.roster.record(index);
        if record.has_inbox() {
            return false;
        }
        record.set_activity(Activity::Vacant);
        true
    }

    /// Delivers a job made by `job_for` to the inbox of every baker whose
    /// index holds a thread now, in index order, and wakes each. The
    /// protocol is at [`BakerRecord::deliver`].
    pub(crate) fn deliver_to_each(&self, mut job_for: impl FnMut(usize) -> JobRef) {
        let staff = self.lock_staff();
        let served: Vec<usize> = (0..self.roster.len())
            .filter(|&index| self.roster.record(index).activity() != Activity::Vacant)
            .collect();
        for &index in &served {
            self.roster.record(index).deliver(job_for(index));
        }
        drop(staff);
        for &index in &served {
            self.wake_baker(index);
        }
    }

    /// The most bakers the bakery may hold.
    pub(crate) fn max_bakers(&self) -> usize {
        self.lock_staff().max
    }

    /// The staff's counts, for the statistics: the configured number, the
    /// bakers on duty (a thread holds an index and is not retiring), and
    /// how many of them are blocked (declared or detected).
    pub(crate) fn headcount(&self) -> (usize, usize, usize) {
        let staff = self.staff.lock();
        (staff.target, staff.on_duty, staff.blocked)
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
