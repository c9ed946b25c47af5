//! The state one bakery's handles and bakers share: the queues, the sleep
//! state, the shutdown flags, the bakers' names and threads.
//!
//! # Submitting
//!
//! An order from outside the pool enters the global [`Injector`]; an order
//! submitted by one of the pool's own bakers goes onto that baker's local
//! deque. Either way the submitter then issues a `SeqCst` fence and reads two
//! things: the sleep counters (to wake a baker, see [`crate::sleep`]) and the
//! `closed` flag.
//!
//! # Shutting down, and why no accepted order is lost
//!
//! Shutdown stores `closed = true`, issues a `SeqCst` fence and wakes every
//! baker. A baker leaves for good only from its main loop, when it is out of
//! work, has seen `closed`, and, after its own `SeqCst` fence, finds every
//! queue empty (its own deque included).
//!
//! A submitter reads `closed` before pushing (and refuses the order at once
//! if it is set) and again after its push and fence. If that second read
//! still says "open", the push came before the shutdown's store in the fences'
//! total order, so every baker's final check, which follows its own read of
//! `closed == true`, sees the pushed order: it is run. If the second read says
//! "closed", the submitter tries to reject the order with the compare-and-swap
//! that also decides whether a baker started it (see [`crate::task`]): either
//! the submitter wins and hands back a `Rejected` outcome (or, for
//! `try_submit`, the closure itself), or a baker won and runs it. Exactly one
//! outcome, in every interleaving.
//!
//! A rejected order's queue entry stays where it was pushed until a baker pops
//! it (and only drops the reference). So that no entry outlives the bakers,
//! the last baker to leave drains the injector, and a submitter that finds
//! the pool closed after its push drains it too if no baker is left: of the
//! two, whoever comes second in the fences' order sees the other's work.
//! Draining rejects what is still pending, except work that cannot be
//! refused (a scoped order, or a fork-join or `install` carried in from
//! outside), which runs on the draining thread.
//!
//! Orders submitted by the pool's own bakers while it closes (work in
//! progress making more work) are still accepted onto their own deques: a
//! baker leaves only with an empty deque.
//!
//! Orders already queued when the shutdown starts still run; with
//! `shutdown_now` (`cancel_queued`) the bakers cancel each order they take
//! instead, so its handle reports `Cancelled`. Forks of a `join` in progress
//! always run.

use crate::builder::Hook;
use crate::injector::Injector;
use crate::job::{JobRef, Mode};
use crate::sleep::Sleep;
use crate::sync::{
    fence, thread::JoinHandle, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, Stealer,
};
use crate::task::{NewTask, RawOrder, TaskKind};
use crossbeam_deque::Steal;
use std::time::Instant;

/// The state shared by a bakery's handles and bakers.
pub(crate) struct Registry {
    /// Unique in the process and never reused (see [`Registry::id`]).
    id: usize,
    pub(crate) injector: Injector,
    pub(crate) stealers: Box<[Stealer<JobRef>]>,
    pub(crate) sleep: Sleep,
    closed: AtomicBool,
    cancel_queued: AtomicBool,
    names: Box<[std::sync::Arc<str>]>,
    pub(crate) panic_handler: Option<std::sync::Arc<crate::builder::PanicHandler>>,
    pub(crate) start_hook: Option<Hook>,
    pub(crate) stop_hook: Option<Hook>,
    /// Live `Bakery` handles; the last one to go shuts the pool down.
    pub(crate) handles: AtomicUsize,
    /// Bakers that have not left their main loop; the last one out drains
    /// the injector (see the module docs).
    present: AtomicUsize,
    /// Bakers whose thread has not finished its main loop yet.
    alive: Mutex<usize>,
    gone: Condvar,
    threads: Mutex<Threads>,
    /// Signalled when the bakers' threads have all been joined.
    joined: Condvar,
}

/// The bakers' threads and who joins them: the first shutdown to get here
/// joins them; every other one waits until that is done, so that every
/// shutdown that returns means the threads are gone.
#[derive(Default)]
struct Threads {
    handles: Vec<JoinHandle<()>>,
    joining: bool,
    joined: bool,
}

/// Everything [`Registry::new`] needs.
pub(crate) struct RegistryParts {
    pub(crate) stealers: Vec<Stealer<JobRef>>,
    pub(crate) names: Vec<String>,
    pub(crate) panic_handler: Option<std::sync::Arc<crate::builder::PanicHandler>>,
    pub(crate) start_hook: Option<Hook>,
    pub(crate) stop_hook: Option<Hook>,
}

impl Registry {
    pub(crate) fn new(parts: RegistryParts) -> Registry {
        let bakers = parts.stealers.len();
        // Starts at 1: 0 means "no bakery" in a thread's home slot.
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        Registry {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            injector: Injector::new(),
            stealers: parts.stealers.into_boxed_slice(),
            sleep: Sleep::new(bakers),
            closed: AtomicBool::new(false),
            cancel_queued: AtomicBool::new(false),
            names: parts.names.into_iter().map(Into::into).collect(),
            panic_handler: parts.panic_handler,
            start_hook: parts.start_hook,
            stop_hook: parts.stop_hook,
            handles: AtomicUsize::new(1),
            present: AtomicUsize::new(bakers),
            alive: Mutex::new(bakers),
            gone: Condvar::new(),
            threads: Mutex::new(Threads::default()),
            joined: Condvar::new(),
        }
    }

    /// An identity for this pool, compared against an order's and against
    /// a thread's home (see [`crate::sync::local::home`]). Unlike the
    /// registry's address it is never reused, so a thread that outlives
    /// its bakery can never mistake a later one for its own.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn bakers(&self) -> usize {
        self.stealers.len()
    }

    pub(crate) fn name(&self, index: usize) -> &std::sync::Arc<str> {
        &self.names[index]
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How a baker should treat the jobs it takes now.
    #[inline]
    pub(crate) fn mode(&self) -> Mode {
        if self.cancel_queued.load(Ordering::Relaxed) {
            Mode::Cancel
        } else {
            Mode::Run
        }
    }

    /// Submits `func` as a task of kind `kind()`. Hands the closure back if
    /// the pool no longer takes orders (see the module docs).
    #[inline]
    pub(crate) fn try_submit<F, T, K>(
        &self,
        func: F,
        kind: impl FnOnce() -> K,
    ) -> Result<RawOrder<T>, F>
    where
        F: FnOnce() -> T + Send,
        T: Send,
        K: TaskKind,
    {
        crate::baker::BakerThread::with_current(|baker| {
            // From one of this pool's bakers the order goes onto its own
            // deque, even while the pool closes: that baker does not leave
            // before its deque is empty. From anywhere else it goes into the
            // injector, and only while the pool is open.
            let local = baker.filter(|baker| baker.belongs_to(self.id()));
            if local.is_none() && self.is_closed() {
                return Err(func);
            }
            let home = local.map(|baker| baker.index());
            let task = NewTask::new(func, kind(), self.id(), home);
            // SAFETY: the only queue reference of this task.
            let job = unsafe { task.job_ref() };
            match local {
                Some(baker) => baker.push(job),
                None => self.injector.push(job),
            }
            fence(Ordering::SeqCst);
            if local.is_none() && self.closed.load(Ordering::Relaxed) {
                let refused = task.reject();
                self.drain_if_deserted();
                if let Some(func) = refused {
                    drop(task.into_handle());
                    return Err(func);
                }
            }
            self.sleep.new_work(|| self.holds_one(home));
            Ok(task.into_handle())
        })
    }

    /// Whether the queue a job was just pushed to holds only that job
    /// (baker `Some(index)`'s deque, or the injector).
    pub(crate) fn holds_one(&self, queue: Option<usize>) -> bool {
        match queue {
            Some(index) => self.stealers[index].len() <= 1,
            None => self.injector.len() <= 1,
        }
    }

    /// Whether any queue holds a job.
    pub(crate) fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|stealer| !stealer.is_empty())
    }

    /// How many jobs the queues hold (a snapshot).
    pub(crate) fn queued(&self) -> usize {
        self.injector.len() + self.stealers.iter().map(Stealer::len).sum::<usize>()
    }

    /// Stops taking orders and wakes every baker so they finish the queues
    /// (or, with `cancel_queued`, cancel them) and leave.
    pub(crate) fn close(&self, cancel_queued: bool) {
        if cancel_queued {
            self.cancel_queued.store(true, Ordering::SeqCst);
        }
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.sleep.wake_all();
    }

    /// Cancels every queued order right away, from the calling thread
    /// (`shutdown_now`), so that handles report `Cancelled` even while every
    /// baker is busy. Jobs that cannot be cancelled (the forks of a `join`
    /// under way, a cold fork-join) are moved to the injector, where any
    /// baker, including their waiting owner, picks them up.
    pub(crate) fn cancel_queued_now(&self) {
        let mut keep = Vec::new();
        let mut drain = |steal: &dyn Fn() -> Steal<JobRef>| loop {
            match steal() {
                Steal::Success(job) => {
                    if let Err(job) = job.try_cancel() {
                        keep.push(job);
                    }
                }
                Steal::Empty => break,
                Steal::Retry => {}
            }
        };
        drain(&|| self.injector.pop().map_or(Steal::Empty, Steal::Success));
        for stealer in self.stealers.iter() {
            drain(&|| stealer.steal());
        }
        if !keep.is_empty() {
            for job in keep {
                self.injector.push(job);
            }
            // Wake every baker, including one waiting deep in a join for one
            // of these forks (it sleeps as `Waiting`, which work alone does
            // not wake; see `BakerThread::wait_own_work_only`). If they all
            // left meanwhile, nobody else will take what was put back.
            self.sleep.wake_all();
            self.drain_if_deserted();
        }
    }

    /// A baker is leaving its main loop for good. The last one out drains
    /// the injector, so that nothing pushed there while the bakers were
    /// leaving is stranded.
    pub(crate) fn baker_leaving(&self) {
        if self.present.fetch_sub(1, Ordering::SeqCst) == 1 {
            fence(Ordering::SeqCst);
            self.drain_injector();
        }
    }

    /// After pushing to the injector and finding the pool closed: if every
    /// baker has left, drain the injector here. Either this reads `present`
    /// after the last baker's decrement and drains, or that baker's drain
    /// comes after this push in the fences' order and sees it.
    pub(crate) fn drain_if_deserted(&self) {
        fence(Ordering::SeqCst);
        if self.present.load(Ordering::SeqCst) == 0 {
            self.drain_injector();
        }
    }

    /// Empties the injector with no baker left to run what is in it:
    /// orders still pending are rejected, work that cannot be refused (a
    /// scoped order, a fork-join or `install` carried in from outside) runs
    /// on the calling thread, and entries of orders that already ran only
    /// give up their reference.
    fn drain_injector(&self) {
        while let Some(job) = self.injector.pop() {
            job.execute(Mode::Reject);
        }
    }

    /// Records the bakers' threads, to be joined at shutdown.
    pub(crate) fn set_threads(&self, threads: Vec<JoinHandle<()>>) {
        self.threads.lock().handles = threads;
    }

    /// Forgets `count` bakers that never started.
    pub(crate) fn never_started(&self, count: usize) {
        let mut alive = self.alive.lock();
        *alive -= count;
        self.gone.notify_all();
    }

    /// Called by each baker as its main loop ends.
    pub(crate) fn baker_left(&self) {
        let mut alive = self.alive.lock();
        *alive -= 1;
        self.gone.notify_all();
    }

    /// How many bakers have not finished their loop yet.
    pub(crate) fn alive(&self) -> usize {
        *self.alive.lock()
    }

    /// Waits until every baker left (or `deadline` passes), then until
    /// their threads are joined: by this call, or by a concurrent one that
    /// got there first. Returns `Err(bakers still at work)` on timeout.
    ///
    /// Must not be called from one of this pool's own threads, which would
    /// wait for itself.
    pub(crate) fn wait_for_bakers(&self, deadline: Option<Instant>) -> Result<(), usize> {
        debug_assert_ne!(
            crate::sync::local::home(),
            self.id,
            "a baker waiting for itself"
        );
        {
            let mut alive = self.alive.lock();
            while *alive > 0 {
                match deadline {
                    None => self.gone.wait(&mut alive),
                    Some(deadline) => {
                        if self.gone.wait_until(&mut alive, deadline).timed_out() && *alive > 0 {
                            return Err(*alive);
                        }
                    }
                }
            }
        }
        let mut threads = self.threads.lock();
        if threads.joining {
            while !threads.joined {
                match deadline {
                    None => self.joined.wait(&mut threads),
                    Some(deadline) => {
                        if self.joined.wait_until(&mut threads, deadline).timed_out()
                            && !threads.joined
                        {
                            // Every baker left its loop; only their threads'
                            // last moments (thread-local destructors) remain.
                            return Err(0);
                        }
                    }
                }
            }
            return Ok(());
        }
        threads.joining = true;
        let handles = std::mem::take(&mut threads.handles);
        drop(threads);
        for thread in handles {
            // A baker's thread never unwinds (its loop aborts instead), so
            // there is no panic to report here.
            let _ = thread.join();
        }
        self.threads.lock().joined = true;
        self.joined.notify_all();
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Every baker has left and drained the injector on its way out;
        // whatever a submitter pushed since was drained by that submitter.
        // This is the last safety net.
        self.drain_injector();
    }
}
