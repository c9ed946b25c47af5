//! One baker's record: what the other threads may touch of it.
//!
//! A baker's thread keeps its private state on its own stack
//! ([`super::baker_thread`]). Everything another thread needs to reach is
//! here, in one record per baker index, owned by the [roster](super::roster):
//!
//! * the thief's end of its deque, for colleagues that steal;
//! * its name, for [`Baker`](crate::Baker) and the thread;
//! * its sleep slot, for whoever wakes it (see [`super::sleep`]);
//! * what it is doing ([`Activity`]), written only by the baker itself, at
//!   the moments it starts and stops working, never per order: for a
//!   shutdown that reports who is still at work.
//!
//! Per-baker counters belong here too, each written only by its own baker
//! so that counting costs no shared read-modify-write.

use crate::engine::job::JobRef;
use crate::engine::sleep::Slot;
use crate::engine::sync::{AtomicUsize, Ordering, Stealer};
use crossbeam_utils::CachePadded;
use std::sync::Arc;

/// What a baker is doing, as its record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activity {
    /// No thread holds this index yet, or any more.
    Vacant,
    /// Out of work: searching the queues, asleep, or on its way home with
    /// nothing left to run.
    Idle,
    /// Running orders, or a hook.
    Working,
}

/// One baker's record.
pub(crate) struct BakerRecord {
    stealer: Stealer<JobRef>,
    name: Arc<str>,
    /// Written only by the baker itself.
    activity: CachePadded<AtomicUsize>,
    slot: CachePadded<Slot>,
}

impl BakerRecord {
    /// The record of a baker named `name` whose deque's thief end is
    /// `stealer`; no thread holds it yet.
    pub(crate) fn new(stealer: Stealer<JobRef>, name: Arc<str>) -> BakerRecord {
        BakerRecord {
            stealer,
            name,
            activity: CachePadded::new(AtomicUsize::new(Activity::Vacant as usize)),
            slot: CachePadded::new(Slot::new()),
        }
    }

    /// The thief's end of the baker's deque.
    #[inline]
    pub(crate) fn stealer(&self) -> &Stealer<JobRef> {
        &self.stealer
    }

    /// The baker's name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The baker's sleep slot.
    #[inline]
    pub(crate) fn slot(&self) -> &Slot {
        &self.slot
    }

    /// What the baker was doing when it last said so.
    pub(crate) fn activity(&self) -> Activity {
        match self.activity.load(Ordering::Acquire) {
            0 => Activity::Vacant,
            1 => Activity::Idle,
            _ => Activity::Working,
        }
    }

    /// Says what the baker is doing now. Only the baker itself calls this.
    #[inline]
    pub(crate) fn set_activity(&self, activity: Activity) {
        self.activity.store(activity as usize, Ordering::Release);
    }
}
