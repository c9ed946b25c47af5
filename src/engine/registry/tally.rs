//! The bakery's statistics: what is counted where, and how a snapshot is
//! read.
//!
//! Nothing here is counted with a shared read-modify-write per order:
//!
//! * orders submitted from outside are counted by the injector, under the
//!   lock their push takes anyway (see [`super::super::injector`]);
//! * everything a baker does (orders it submits onto its own deque, runs,
//!   finds cancelled or rejected, jobs it steals, time busy) is counted in
//!   its own record, by itself (see [`super::super::baker_record`]);
//! * what happens off the bakers is rare and counted here, in
//!   [`RareTally`], with shared atomics: orders refused before they reached
//!   a queue, orders cancelled by `shutdown_now`, and orders settled by the
//!   drain that runs when no baker is left.
//!
//! An order is counted as settled once, by whoever settles it (see
//! [`Fate`]). An order cancelled through its handle is counted when the
//! bakery lets go of its queue entry, which the next baker to reach the
//! entry does; until then it still counts as queued.

use super::Registry;
use crate::engine::baker_record::{Activity, TallySnapshot};
use crate::engine::job::Fate;
use crate::engine::sync::unmodelled::AtomicU64;
use crate::engine::sync::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The counts kept off the bakers: rare events, shared atomics.
#[derive(Default)]
pub(crate) struct RareTally {
    refused: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    rejected: AtomicU64,
}

/// One baker index, as a snapshot saw it.
pub(crate) struct BakerView {
    pub(crate) name: Arc<str>,
    pub(crate) activity: Activity,
    /// Whether the blocking monitor found it blocked.
    pub(crate) detected_blocked: bool,
    /// Jobs it started (orders, forks, scoped orders), wrapping.
    pub(crate) jobs: u64,
    pub(crate) tally: TallySnapshot,
}

/// A snapshot of the whole bakery, for `Bakery::stats`.
pub(crate) struct View {
    /// The configured number of bakers.
    pub(crate) target: usize,
    /// The most bakers it may hold.
    pub(crate) max: usize,
    /// Bakers on duty: a thread holds their index and they are not
    /// retiring.
    pub(crate) on_duty: usize,
    /// Jobs in the injector.
    pub(crate) injector: usize,
    /// Jobs on the bakers' deques.
    pub(crate) deques: usize,
    /// Orders submitted from outside (the injector's count) plus orders
    /// refused before any queue.
    pub(crate) outside_submitted: u64,
    /// What was settled off the bakers.
    pub(crate) off_bakers: TallySnapshot,
    pub(crate) bakers: Vec<BakerView>,
}

impl Registry {
    /// Counts `fate`, settled by a thread that is not one of the bakers
    /// (a drain, `shutdown_now`).
    pub(crate) fn count_fate_off_baker(&self, fate: Fate) {
        let counter = match fate {
            Fate::Kept | Fate::Untracked => return,
            Fate::Completed => &self.rare.completed,
            Fate::Panicked => &self.rare.panicked,
            Fate::Cancelled => &self.rare.cancelled,
            Fate::Rejected => &self.rare.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an order refused before it reached any queue: submitted and
    /// rejected at once.
    #[cold]
    pub(crate) fn count_refused(&self) {
        self.rare.rejected.fetch_add(1, Ordering::Relaxed);
        self.rare.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters and of who does what. Each word is read
    /// on its own, so the parts are not one instant's picture; but no
    /// counter ever reads less than in an earlier snapshot (see
    /// [`super::super::baker_record`]).
    pub(crate) fn view(&self) -> View {
        let now = Instant::now();
        let (target, on_duty, _) = self.headcount();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let off_bakers = TallySnapshot {
            completed: load(&self.rare.completed),
            panicked: load(&self.rare.panicked),
            cancelled: load(&self.rare.cancelled),
            rejected: load(&self.rare.rejected),
            ..TallySnapshot::default()
        };
        let bakers = self
            .roster
            .records()
            .map(|record| BakerView {
                name: record.name().clone(),
                activity: record.activity(),
                detected_blocked: record.detected_blocked(),
                jobs: record.progress() as u64,
                tally: record.tally(now),
            })
            .collect();
        View {
            target,
            max: self.max_bakers(),
            on_duty,
            injector: self.injector.len(),
            deques: self
                .roster
                .records()
                .map(|record| record.stealer().len())
                .sum(),
            outside_submitted: self.injector.submitted() + load(&self.rare.refused),
            off_bakers,
            bakers,
        }
    }
}
