//! Whether the bakery is idle, and waiting until it is (the protocol is in
//! [`crate::engine::idle`]).

use super::Registry;
use crate::engine::baker_record::Activity;
use crate::engine::sync::{fence, Ordering};
use std::time::Instant;

impl Registry {
    /// A baker said it is `Idle` or `Vacant` and fenced after saying so:
    /// wakes whoever waits for an idle bakery, if anyone does.
    #[inline]
    pub(crate) fn baker_stopped(&self) {
        self.idle.baker_stopped();
    }

    /// Whether there was a moment, during this call, with no job queued and
    /// no baker running one (see [`crate::engine::idle`] for why the three
    /// looks prove it).
    pub(crate) fn is_idle(&self) -> bool {
        let first: Option<Vec<usize>> = self.idle_bakers();
        let Some(first) = first else {
            return false;
        };
        fence(Ordering::SeqCst);
        if self.has_work() {
            return false;
        }
        fence(Ordering::SeqCst);
        self.idle_bakers().is_some_and(|second| second == first)
    }

    /// The job counts of every baker, if every one is idle or vacant.
    fn idle_bakers(&self) -> Option<Vec<usize>> {
        self.roster
            .records()
            .map(|record| {
                matches!(record.activity(), Activity::Idle | Activity::Vacant)
                    .then(|| record.progress())
            })
            .collect()
    }

    /// Waits until the bakery is idle, or `deadline` passes; returns
    /// whether it was idle. The caller is not one of this bakery's bakers.
    pub(crate) fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        self.idle.wait(|| self.is_idle(), deadline)
    }
}
