//! A snapshot of what a bakery is doing and has done: `Bakery::stats`.

use crate::bakery::Bakery;
use crate::engine::baker_record::Activity;
use std::fmt;
use std::time::Duration;

/// What a bakery is doing and has done, as [`Bakery::stats`] saw it.
///
/// The counters count the orders of [`Bakery::submit`] and
/// [`Bakery::try_submit`] (and of an [`OrderSet`](crate::OrderSet), which
/// submits through them). Work inside a [`scope`](Bakery::scope) or a
/// [`join`](Bakery::join) shows in each baker's `jobs` and `steals`
/// instead. Each counter only ever grows, so a later snapshot never shows
/// less than an earlier one; but the snapshot is read word by word while
/// the bakery works, so its parts may be a moment apart. Taken while the
/// bakery is idle (after [`wait_idle`](Bakery::wait_idle)), it is exact:
/// `submitted` is then `completed + panicked + cancelled + rejected`.
///
/// An order cancelled through its handle is counted as cancelled once the
/// bakery lets go of it: when a baker next reaches its queue entry, which
/// it still counts as queued until then.
///
/// `Debug` shows every field; `Display` prints a table.
///
/// # Examples
///
/// ```
/// let bakery = bakehouse::Bakery::new(2);
/// let burnt = bakery.submit(|| panic!("the oven caught fire"));
/// let bread = bakery.submit(|| "bread");
/// assert!(burnt.join().is_err());
/// assert_eq!(bread.join().unwrap(), "bread");
/// bakery.wait_idle();
/// let stats = bakery.stats();
/// assert_eq!(stats.submitted, 2);
/// assert_eq!(stats.completed, 1);
/// assert_eq!(stats.panicked, 1);
/// assert_eq!(stats.per_baker.len(), 2);
/// println!("{stats}");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Stats {
    /// The configured number of bakers ([`Bakery::bakers`]).
    pub bakers: usize,
    /// The most bakers the bakery may hold ([`Bakery::max_bakers`]).
    pub max_bakers: usize,
    /// Bakers whose thread is alive: `running + blocked + searching +
    /// asleep`.
    pub alive: usize,
    /// Bakers on duty beyond the configured number: stand-ins started for
    /// blocked bakers (and, for a moment, bakers on their way home after
    /// [`set_bakers`](Bakery::set_bakers) lowered the number).
    pub stand_ins: usize,
    /// Bakers running an order (or a hook) and not blocked.
    pub running: usize,
    /// Bakers blocked in an order: inside [`blocking`](crate::blocking()),
    /// or found blocked by the bakery's blocking monitor.
    pub blocked: usize,
    /// Bakers awake and looking for work.
    pub searching: usize,
    /// Bakers asleep for want of work.
    pub asleep: usize,
    /// Jobs waiting in the shared queue, orders from outside the bakery.
    pub queued_injector: usize,
    /// Jobs waiting on the bakers' own deques: orders submitted by bakers,
    /// batches taken from the shared queue, halves of joins.
    pub queued_deques: usize,
    /// Orders submitted, accepted or not.
    pub submitted: u64,
    /// Orders that ran and returned a value.
    pub completed: u64,
    /// Orders that ran and panicked.
    pub panicked: u64,
    /// Orders cancelled before they started (by their handle, an
    /// [`OrderSet`](crate::OrderSet), or
    /// [`shutdown_now`](Bakery::shutdown_now)).
    pub cancelled: u64,
    /// Orders refused because the bakery no longer took orders.
    pub rejected: u64,
    /// Jobs (orders, halves of joins, scoped orders) bakers stole from each
    /// other.
    pub steals: u64,
    /// One entry per baker place, in index order: a place is kept, with
    /// its counts, when its baker goes home, and the next baker to join
    /// takes it over and counts on.
    pub per_baker: Vec<BakerStats>,
}

/// One baker's part of [`Stats`].
///
/// # Examples
///
/// ```
/// let bakery = bakehouse::Bakery::new(1);
/// bakery.submit(|| ()).join().unwrap();
/// bakery.wait_idle();
/// let baker = &bakery.stats().per_baker[0];
/// assert_eq!(baker.name, "baker-0");
/// assert_eq!(baker.orders, 1);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BakerStats {
    /// The baker's name.
    pub name: String,
    /// What it is doing.
    pub state: BakerState,
    /// Orders it ran (completed or panicked).
    pub orders: u64,
    /// Jobs it started: orders, halves of joins, scoped orders.
    pub jobs: u64,
    /// Jobs it stole from other bakers.
    pub steals: u64,
    /// How long it was busy, in all: awake, running jobs or looking for
    /// work between them (as tokio counts a worker's busy time), not
    /// asleep for want of work.
    pub busy: Duration,
}

/// What a baker is doing, in [`BakerStats`].
///
/// # Examples
///
/// ```
/// use bakehouse::BakerState;
///
/// let bakery = bakehouse::Bakery::new(1);
/// let front_door = bakery.clone();
/// bakery.shutdown(); // waits for the bakers to go home
/// assert_eq!(front_door.stats().per_baker[0].state, BakerState::Gone);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BakerState {
    /// Running an order or a hook.
    Running,
    /// Blocked in an order (declared, or found by the monitor).
    Blocked,
    /// Awake and looking for work.
    Searching,
    /// Asleep for want of work.
    Asleep,
    /// No thread holds this place now: its baker went home.
    Gone,
}

impl BakerState {
    fn label(self) -> &'static str {
        match self {
            BakerState::Running => "running",
            BakerState::Blocked => "blocked",
            BakerState::Searching => "searching",
            BakerState::Asleep => "asleep",
            BakerState::Gone => "gone",
        }
    }
}

impl fmt::Display for BakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.label())
    }
}

impl Bakery {
    /// A snapshot of what the bakery is doing and has done: its bakers and
    /// what each is doing, the orders queued, submitted, completed,
    /// panicked, cancelled and rejected, the steals, and each baker's
    /// orders, steals and time busy. See [`Stats`].
    ///
    /// Reading it costs a walk over the bakers and one lock of the shared
    /// queue; keeping the counts costs the bakers no shared
    /// read-modify-write: each baker counts in its own words.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(2);
    /// for i in 0..10 {
    ///     bakery.submit(move || i * 2).detach();
    /// }
    /// bakery.wait_idle();
    /// let stats = bakery.stats();
    /// assert_eq!((stats.submitted, stats.completed), (10, 10));
    /// assert_eq!(stats.queued_injector + stats.queued_deques, 0);
    /// print!("{stats}");
    /// ```
    pub fn stats(&self) -> Stats {
        let view = self.registry().view();
        let mut stats = Stats {
            bakers: view.target,
            max_bakers: view.max,
            alive: 0,
            stand_ins: view.on_duty.saturating_sub(view.target),
            running: 0,
            blocked: 0,
            searching: 0,
            asleep: 0,
            queued_injector: view.injector,
            queued_deques: view.deques,
            submitted: view.outside_submitted,
            completed: view.off_bakers.completed,
            panicked: view.off_bakers.panicked,
            cancelled: view.off_bakers.cancelled,
            rejected: view.off_bakers.rejected,
            steals: 0,
            per_baker: Vec::with_capacity(view.bakers.len()),
        };
        for baker in view.bakers {
            let state = match baker.activity {
                Activity::Vacant => BakerState::Gone,
                Activity::Blocked => BakerState::Blocked,
                Activity::Working if baker.detected_blocked => BakerState::Blocked,
                Activity::Working => BakerState::Running,
                Activity::Searching => BakerState::Searching,
                Activity::Idle => BakerState::Asleep,
            };
            match state {
                BakerState::Running => stats.running += 1,
                BakerState::Blocked => stats.blocked += 1,
                BakerState::Searching => stats.searching += 1,
                BakerState::Asleep => stats.asleep += 1,
                BakerState::Gone => {}
            }
            let tally = baker.tally;
            stats.submitted += tally.submitted;
            stats.completed += tally.completed;
            stats.panicked += tally.panicked;
            stats.cancelled += tally.cancelled;
            stats.rejected += tally.rejected;
            stats.steals += tally.steals;
            stats.per_baker.push(BakerStats {
                name: baker.name.to_string(),
                state,
                orders: tally.completed + tally.panicked,
                jobs: baker.jobs,
                steals: tally.steals,
                busy: tally.busy,
            });
        }
        stats.alive = stats.running + stats.blocked + stats.searching + stats.asleep;
        stats
    }
}

impl Stats {
    /// Jobs waiting in any queue: `queued_injector + queued_deques`.
    ///
    /// # Examples
    ///
    /// ```
    /// let bakery = bakehouse::Bakery::new(1);
    /// bakery.wait_idle();
    /// assert_eq!(bakery.stats().queued(), 0);
    /// ```
    pub fn queued(&self) -> usize {
        self.queued_injector + self.queued_deques
    }
}

impl fmt::Display for Stats {
    /// A table: the bakery, its bakers, its orders, then one row per baker.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bakers: {} configured (at most {}), {} alive, {} stand-in{}",
            self.bakers,
            self.max_bakers,
            self.alive,
            self.stand_ins,
            if self.stand_ins == 1 { "" } else { "s" },
        )?;
        writeln!(
            f,
            "        {} running, {} blocked, {} searching, {} asleep",
            self.running, self.blocked, self.searching, self.asleep,
        )?;
        writeln!(
            f,
            "orders: {} submitted, {} completed, {} panicked, {} cancelled, {} rejected",
            self.submitted, self.completed, self.panicked, self.cancelled, self.rejected,
        )?;
        writeln!(
            f,
            "queued: {} ({} shared, {} on deques); {} steals",
            self.queued(),
            self.queued_injector,
            self.queued_deques,
            self.steals,
        )?;
        let width = self
            .per_baker
            .iter()
            .map(|baker| baker.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("baker".len());
        writeln!(
            f,
            "{:<width$}  {:<9}  {:>9}  {:>9}  {:>8}  {:>10}",
            "baker", "state", "orders", "jobs", "steals", "busy",
        )?;
        for baker in &self.per_baker {
            writeln!(
                f,
                "{:<width$}  {:<9}  {:>9}  {:>9}  {:>8}  {:>10}",
                baker.name,
                baker.state,
                baker.orders,
                baker.jobs,
                baker.steals,
                format!("{:.1?}", baker.busy),
            )?;
        }
        Ok(())
    }
}
