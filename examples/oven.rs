//! The story's pitfall: bakers crowding one oven.
//!
//! Four bakers share an oven with two slots and a stack of numbered order
//! tickets. Each baker takes the next ticket, walks to the oven, waits for a
//! free slot, bakes the cake and takes it out, until the tickets run out.
//!
//! First without coordination. Every step is a single atomic operation
//! (even `SeqCst`), but "read the ticket number, then advance it" and "see a
//! free slot, then put the cake in" are two steps each, and another baker can
//! act in between: two bakers take the same ticket and bake a cake twice, or
//! both see the last free slot and overfill the oven. These races depend on
//! timing, so the example reports what it observed rather than asserting it.
//!
//! Then with a `parking_lot::Mutex` around the oven and the ticket stack,
//! and a `parking_lot::Condvar` on which bakers wait for a free slot: check
//! and act happen under one lock. That version asserts that every cake is
//! baked exactly once and that the oven never holds more than two cakes.
//!
//! The bakers' shifts are scoped orders ([`Bakery::scope`]), so they borrow
//! the oven from `main`'s stack.
//!
//! Run it with `cargo run --release --example oven`.

use bakehouse::{Baker, Bakery};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

const BAKERS: usize = 4;
const SLOTS: usize = 2;
const CAKES: usize = 60;
/// Reading a ticket's number before crossing it off.
const READING: Duration = Duration::from_micros(20);
/// Walking from the counter to the oven.
const WALKING: Duration = Duration::from_micros(200);
/// How long a cake bakes: 2 ms, a little more for some cakes.
fn baking(ticket: usize) -> Duration {
    Duration::from_micros(2_000 + 300 * (ticket % 4) as u64)
}
/// The uncoordinated bakers give up after this many cakes in all: their
/// ticket counter can be set back, and this bounds how long that goes on.
const MAX_TRIES: usize = 10 * CAKES;

fn baker_name() -> String {
    Baker::current()
        .expect("shifts run on bakers")
        .name()
        .to_owned()
}

/// What a run of the day observed.
struct Day {
    /// How many times each ticket's cake was baked.
    baked: Vec<usize>,
    /// The most cakes the oven held at once.
    max_inside: usize,
    /// How many cakes went into an oven that was already full.
    into_full_oven: usize,
    /// Cakes baked by each baker.
    by_baker: BTreeMap<String, usize>,
    elapsed: Duration,
}

impl Day {
    fn report(&self) {
        let twice = self.baked.iter().filter(|&&n| n > 1).count();
        let extra: usize = self.baked.iter().map(|&n| n.saturating_sub(1)).sum();
        let never = self.baked.iter().filter(|&&n| n == 0).count();
        println!(
            "  {} cakes baked for {CAKES} tickets in {} ms by {}",
            self.baked.iter().sum::<usize>(),
            self.elapsed.as_millis(),
            self.by_baker
                .iter()
                .map(|(baker, cakes)| format!("{baker} {cakes}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  tickets baked more than once: {twice} ({extra} cakes too many); never baked: {never}"
        );
        println!(
            "  the oven held up to {} cakes at once (it has {SLOTS} slots); \
             {} cakes went into a full oven",
            self.max_inside, self.into_full_oven
        );
    }
}

/// The uncoordinated kitchen: only atomics, each step correct on its own.
struct RacyKitchen {
    next_ticket: AtomicUsize,
    inside: AtomicUsize,
    max_inside: AtomicUsize,
    into_full_oven: AtomicUsize,
    tries: AtomicUsize,
    baked: Vec<AtomicUsize>,
}

impl RacyKitchen {
    /// One baker's shift; returns how many cakes this baker baked.
    fn shift(&self) -> usize {
        let mut cakes = 0;
        while self.tries.fetch_add(1, SeqCst) < MAX_TRIES {
            // Take a ticket: read the number, then advance it. Another baker
            // may read the same number in between.
            let ticket = self.next_ticket.load(SeqCst);
            if ticket >= CAKES {
                break;
            }
            thread::sleep(READING);
            self.next_ticket.store(ticket + 1, SeqCst);

            // Wait until the oven has a free slot, then walk over and put the
            // cake in. Another baker may take the slot in between.
            while self.inside.load(SeqCst) >= SLOTS {
                thread::sleep(Duration::from_micros(50));
            }
            thread::sleep(WALKING);
            let now_inside = self.inside.fetch_add(1, SeqCst) + 1;
            if now_inside > SLOTS {
                self.into_full_oven.fetch_add(1, SeqCst);
            }
            self.max_inside.fetch_max(now_inside, SeqCst);

            thread::sleep(baking(ticket));
            self.baked[ticket].fetch_add(1, SeqCst);
            self.inside.fetch_sub(1, SeqCst);
            cakes += 1;
        }
        cakes
    }
}

/// The coordinated kitchen: one lock over the tickets and the oven.
struct Kitchen {
    state: Mutex<KitchenState>,
    slot_free: Condvar,
}

struct KitchenState {
    next_ticket: usize,
    inside: usize,
    max_inside: usize,
    into_full_oven: usize,
    baked: Vec<usize>,
}

impl Kitchen {
    fn shift(&self) -> usize {
        let mut cakes = 0;
        loop {
            // Take a ticket: read and advance under the lock.
            let ticket = {
                let mut state = self.state.lock();
                if state.next_ticket >= CAKES {
                    break;
                }
                state.next_ticket += 1;
                state.next_ticket - 1
            };
            thread::sleep(WALKING);

            // Wait for a free slot and take it in the same critical section:
            // nobody can take it between the check and the act.
            {
                let mut state = self.state.lock();
                while state.inside >= SLOTS {
                    self.slot_free.wait(&mut state);
                }
                state.inside += 1;
                if state.inside > SLOTS {
                    state.into_full_oven += 1;
                }
                state.max_inside = state.max_inside.max(state.inside);
            }

            thread::sleep(baking(ticket));
            {
                let mut state = self.state.lock();
                state.baked[ticket] += 1;
                state.inside -= 1;
            }
            // One slot is free: wake one waiting baker.
            self.slot_free.notify_one();
            cakes += 1;
        }
        cakes
    }
}

/// Runs as many shifts as there are bakers, as scoped orders that borrow
/// the kitchen through `shift`; returns the cakes baked by each baker.
fn work_the_day(bakery: &Bakery, shift: impl Fn() -> usize + Sync) -> BTreeMap<String, usize> {
    let shift = &shift;
    bakery.scope(|s| {
        let shifts: Vec<_> = (0..bakery.bakers())
            .map(|_| s.submit(move || (baker_name(), shift())))
            .collect();
        let mut by_baker = BTreeMap::new();
        for order in shifts {
            let (baker, cakes) = order.join().expect("a shift does not panic");
            *by_baker.entry(baker).or_default() += cakes;
        }
        by_baker
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names = ["Ada", "Bruno", "Chloe", "Dmitri"];
    let bakery = Bakery::builder()
        .bakers(BAKERS)
        // Stand-ins for bakers blocked at the oven get numbered names.
        .baker_name(move |i| {
            names
                .get(i)
                .map_or_else(|| format!("stand-in-{i}"), |name| (*name).to_owned())
        })
        .build()?;
    println!(
        "{BAKERS} bakers, one oven with {SLOTS} slots, {CAKES} tickets; \
         2 to 3 ms to bake a cake."
    );

    println!("\nWithout coordination (atomic steps, but check and act apart):");
    let racy = RacyKitchen {
        next_ticket: AtomicUsize::new(0),
        inside: AtomicUsize::new(0),
        max_inside: AtomicUsize::new(0),
        into_full_oven: AtomicUsize::new(0),
        tries: AtomicUsize::new(0),
        baked: (0..CAKES).map(|_| AtomicUsize::new(0)).collect(),
    };
    let started = Instant::now();
    let by_baker = work_the_day(&bakery, || racy.shift());
    let day = Day {
        baked: racy.baked.iter().map(|n| n.load(SeqCst)).collect(),
        max_inside: racy.max_inside.load(SeqCst),
        into_full_oven: racy.into_full_oven.load(SeqCst),
        by_baker,
        elapsed: started.elapsed(),
    };
    day.report();
    if racy.tries.load(SeqCst) > MAX_TRIES {
        println!(
            "  the bakers gave up after {MAX_TRIES} cakes: the ticket counter kept being set back"
        );
    }
    if day.max_inside > SLOTS || day.baked.iter().any(|&n| n != 1) {
        println!("  -> the bakers stepped on each other's toes (this time)");
    } else {
        println!("  -> no collision this time: the races are real, but timing decides");
    }

    println!("\nWith a Mutex around the oven and a Condvar to wait for a free slot:");
    let kitchen = Kitchen {
        state: Mutex::new(KitchenState {
            next_ticket: 0,
            inside: 0,
            max_inside: 0,
            into_full_oven: 0,
            baked: vec![0; CAKES],
        }),
        slot_free: Condvar::new(),
    };
    let started = Instant::now();
    let by_baker = work_the_day(&bakery, || kitchen.shift());
    let state = kitchen.state.into_inner();
    let day = Day {
        baked: state.baked,
        max_inside: state.max_inside,
        into_full_oven: state.into_full_oven,
        by_baker,
        elapsed: started.elapsed(),
    };
    day.report();
    assert!(
        day.baked.iter().all(|&n| n == 1),
        "every ticket is baked exactly once"
    );
    assert!(day.max_inside <= SLOTS, "the oven is never overfilled");
    assert_eq!(day.into_full_oven, 0);
    assert_eq!(day.by_baker.values().sum::<usize>(), CAKES);
    println!("  -> every cake baked exactly once, never more than {SLOTS} in the oven");

    bakery.shutdown();
    Ok(())
}
