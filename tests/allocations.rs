//! One heap allocation per order: the closure, its state, the slot for its
//! value and the handle's state share a single block.
//!
//! A counting global allocator counts every allocation made by any thread
//! while the orders are submitted and joined. This file holds one test so
//! that no other test allocates at the same time.
//!
//! Each thread also allocates a few things once in its life (crossbeam's
//! epoch registration on its first steal, parking_lot's thread data on its
//! first sleep), and the queues grow to their working size. Those can land
//! in any round, so each case is measured in several rounds and the steady
//! state, the smallest round, is checked.

use bakehouse::Bakery;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; counting
// is a side effect on an atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ORDERS: usize = 10_000;

#[test]
fn one_allocation_per_order() {
    let bakery = Arc::new(Bakery::new(2));

    // Inside a baker: the order goes onto the baker's own deque, and the
    // join takes it straight back. Exactly one allocation per order.
    let door = bakery.clone();
    let inside = bakery.submit(move || {
        let round = |n: usize| {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for i in 0..n {
                let value = door.submit(move || i * 2).join().unwrap();
                assert_eq!(value, i * 2);
            }
            ALLOCATIONS.load(Ordering::SeqCst) - before
        };
        (0..3).map(|_| round(ORDERS)).min().unwrap()
    });
    assert_eq!(
        inside.join().unwrap(),
        ORDERS,
        "allocations for {ORDERS} orders"
    );

    // From outside, one at a time: the order goes into the shared
    // injector, a ring that keeps its capacity, so again only the order's
    // own block is allocated.
    let one_by_one = |n: usize| {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for i in 0..n {
            assert_eq!(bakery.submit(move || i + 1).join().unwrap(), i + 1);
        }
        ALLOCATIONS.load(Ordering::SeqCst) - before
    };
    let outside = (0..3).map(|_| one_by_one(ORDERS)).min().unwrap();
    assert_eq!(
        outside, ORDERS,
        "allocations for {ORDERS} orders from outside"
    );

    // From outside, all at once and then every result: the injector's ring
    // grows to hold the most orders ever queued at once, which depends on
    // how far the bakers fall behind, so some rounds grow it (a doubling
    // each time, bounded by the burst). Once it is big enough, a round
    // allocates only the orders' blocks.
    let mut orders = Vec::with_capacity(ORDERS);
    let mut burst = |n: usize| {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        orders.extend((0..n).map(|i| bakery.submit(move || i + 3)));
        for (i, order) in orders.drain(..).enumerate() {
            assert_eq!(order.join().unwrap(), i + 3);
        }
        ALLOCATIONS.load(Ordering::SeqCst) - before
    };
    let rounds: Vec<usize> = (0..20)
        .map(|_| burst(ORDERS))
        .scan(false, |steady, count| {
            let first = !*steady;
            *steady |= count == ORDERS;
            first.then_some(count)
        })
        .collect();
    assert_eq!(
        rounds.last(),
        Some(&ORDERS),
        "allocations per round for bursts of {ORDERS} orders: {rounds:?}"
    );

    // Through an order set, reused: its places, its free list and its
    // ready list keep their capacity, so once they are big enough a round
    // allocates only the orders' blocks.
    let mut set = bakehouse::OrderSet::new();
    let mut through_a_set = |n: usize| {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for i in 0..n {
            set.submit(&bakery, move || i);
        }
        let mut total = 0;
        while let Some(outcome) = set.join_next() {
            total += outcome.unwrap();
        }
        assert_eq!(total, n * (n - 1) / 2);
        ALLOCATIONS.load(Ordering::SeqCst) - before
    };
    let rounds: Vec<usize> = (0..20)
        .map(|_| through_a_set(ORDERS))
        .scan(false, |steady, count| {
            let first = !*steady;
            *steady |= count == ORDERS;
            first.then_some(count)
        })
        .collect();
    assert_eq!(
        rounds.last(),
        Some(&ORDERS),
        "allocations per round through an order set of {ORDERS} orders: {rounds:?}"
    );
}
