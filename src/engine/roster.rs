//! The roster: the records of a bakery's bakers, by index, and how a baker
//! joins or leaves a live bakery.
//!
//! # A slab with a fixed maximum
//!
//! The roster has one place per index up to the bakery's ceiling (its
//! `max_bakers`, at most [`MAX_BAKERS`]), fixed when the bakery is built. A
//! place holds a pointer to its [`BakerRecord`], allocated the first time
//! its index is used and kept, at the same address, until the roster is
//! dropped. So any thread may hold a `&BakerRecord` for as long as it holds
//! the registry, with no lock and no reference count: a thief iterating over
//! the deques, a waker looking for a sleeping baker, a latch waking its
//! owner.
//!
//! `len` counts the indices ever used. Records below it are allocated; a
//! reader loads `len` (Acquire) and then the places below it (Acquire),
//! which pairs with the Release stores of whoever added them.
//!
//! # Joining and leaving
//!
//! Indices are reused, lowest first. A baker that leaves a live bakery (it
//! retires) gives its index back; the next baker to join takes the lowest
//! free index and with it the same record, the same deque and the same
//! sleep slot. Nothing on a deque is lost when its baker leaves: the deque
//! belongs to the record, not to the thread, and the thief's end stays
//! reachable by every colleague whether or not a thread holds the index.
//! An index is only ever held by one thread at a time, and its record's
//! counters keep counting across the bakers that held it.
//!
//! The record and its place are only written while the roster's owner holds
//! its growth lock, so two bakers joining at once get different indices.
//!
//! That publication (a place written once, then `len` stored with Release,
//! read with Acquire before the place) is simple enough to stand on its own,
//! so the roster's words are left out of the loom models (see
//! [`crate::engine::sync::unmodelled`]): every look at a deque goes through
//! the roster, and loom explores the protocols around those looks instead.

use crate::engine::baker_record::BakerRecord;
use crate::engine::sleep::{Slot, Slots};
use crate::engine::sync::unmodelled::{AtomicPtr, AtomicUsize};
use crate::engine::sync::Ordering;
use std::ptr;

/// The most bakers any bakery can hold (65,535): the ceiling for
/// [`BakeryBuilder::max_bakers`](crate::BakeryBuilder::max_bakers). Each
/// half of the sleep counter word has 16 bits on every platform.
///
/// # Examples
///
/// ```
/// let error = bakehouse::Bakery::builder().bakers(bakehouse::MAX_BAKERS + 1).build().unwrap_err();
/// assert!(matches!(error, bakehouse::BuildError::TooManyBakers { .. }));
/// ```
pub const MAX_BAKERS: usize = 0xFFFF;

/// The records of one bakery's bakers.
pub(crate) struct Roster {
    places: Box<[AtomicPtr<BakerRecord>]>,
    /// How many indices were ever used.
    len: AtomicUsize,
}

impl Roster {
    /// A roster with room for `capacity` bakers and none on it.
    pub(crate) fn new(capacity: usize) -> Roster {
        assert!(capacity <= MAX_BAKERS);
        Roster {
            places: (0..capacity)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// How many indices were ever used: records `0..len()` exist.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The record at `index`, which must be below [`len`](Self::len).
    #[inline]
    pub(crate) fn record(&self, index: usize) -> &BakerRecord {
        let record = self.places[index].load(Ordering::Acquire);
        debug_assert!(!record.is_null(), "baker {index} has no record");
        // SAFETY: a place below `len` holds a record allocated by `push`,
        // which is freed only when the roster drops; `self` borrows the
        // roster, so the record outlives the reference.
        unsafe { &*record }
    }

    /// Every record so far.
    pub(crate) fn records(&self) -> impl Iterator<Item = &BakerRecord> {
        (0..self.len()).map(|index| self.record(index))
    }

    /// Adds a record at the next index and returns that index. The caller
    /// serializes every call (the registry's growth lock, or the builder
    /// before any baker runs).
    pub(crate) fn push(&self, record: BakerRecord) -> usize {
        let index = self.len.load(Ordering::Relaxed);
        assert!(index < self.places.len(), "the roster is full");
        self.places[index].store(Box::into_raw(Box::new(record)), Ordering::Release);
        self.len.store(index + 1, Ordering::Release);
        index
    }
}

impl Slots for Roster {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn slot(&self, index: usize) -> &Slot {
        self.record(index).slot()
    }
}

impl Drop for Roster {
    fn drop(&mut self) {
        // `&mut self`: nobody else can reach the roster any more, and only
        // the places below `len` were ever filled.
        let len = self.len();
        for place in &self.places[..len] {
            let record = place.swap(ptr::null_mut(), Ordering::Relaxed);
            if !record.is_null() {
                // SAFETY: allocated by `push` with `Box::into_raw`, and freed
                // only here, once: the place is nulled.
                drop(unsafe { Box::from_raw(record) });
            }
        }
    }
}
