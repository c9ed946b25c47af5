//! Background tasks next to the day's work, held by no baker while they
//! wait: an oven check every 50 ms ([`Bakery::submit_every`]) and a
//! reminder to take the bread out 150 ms after opening
//! ([`Bakery::submit_after`]), while the bakers bake waves of bread.
//!
//! Between checks no baker is kept: each check is a delayed order that
//! waits in the bakery's timer and then queues for whichever baker is free,
//! so while every baker is busy with a loaf a check may come late (a tick
//! it misses is skipped, not made up). A loaf's bake is a sleep here, which
//! the bakery notices as blocking and may start a stand-in (`helper-3`)
//! for.
//! At closing time a second reminder, for tomorrow morning, is still
//! waiting: the shutdown cancels it (its handle says so) instead of waiting
//! for it, and stops the oven check. The example asserts that the check ran
//! several times, that the first reminder ran and the second was cancelled,
//! that every loaf was baked (including those still queued when the
//! shutdown began), and that the check stopped.
//!
//! Run it with `cargo run --release --example background`.

use bakehouse::{Baker, Bakery, OrderError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(50);
const REMINDER: Duration = Duration::from_millis(150);
const WAVES: usize = 3;
const LOAVES_PER_WAVE: usize = 8;
/// Loaves ordered right before closing time; still queued when the shutdown
/// begins.
const LAST_LOAVES: usize = 4;

/// The oven warms up from room temperature to 180 °C in about 300 ms, and
/// loses 3 °C each time its door opens for a loaf.
fn temperature(since_open: Duration, door_opened: usize) -> i64 {
    let warming = (since_open.as_millis() as i64 * 160 / 300).min(160);
    20 + warming - 3 * door_opened as i64
}

/// One oven check, on whichever baker is free; `loaves_before` is the
/// check's own state, kept from one run to the next.
fn check_the_oven(opened: Instant, baked: &AtomicUsize, loaves_before: &mut usize, checks: usize) {
    let me = Baker::current().expect("the check runs on a baker");
    let now = opened.elapsed();
    let loaves = baked.load(Ordering::SeqCst);
    let degrees = temperature(now, loaves - *loaves_before);
    *loaves_before = loaves;
    let verdict = if degrees >= 170 {
        "at temperature"
    } else {
        "warming up"
    };
    println!(
        "  [{:>4} ms] check {checks:>2} by {}: oven at {degrees} °C, {verdict}; {loaves} loaves baked so far",
        now.as_millis(),
        me.name()
    );
}

fn bake_loaf(number: usize, baked: &AtomicUsize) -> (usize, String) {
    let me = Baker::current().expect("loaves are baked by bakers");
    // 30 to 50 ms a loaf.
    thread::sleep(Duration::from_millis(30 + (number % 3) as u64 * 10));
    baked.fetch_add(1, Ordering::SeqCst);
    (number, me.name().to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names = ["Ada", "Bruno", "Chloe"];
    let bakery = Bakery::builder()
        .bakers(names.len())
        .baker_name(move |i| {
            names
                .get(i)
                .map_or_else(|| format!("helper-{i}"), |name| (*name).to_owned())
        })
        .build()?;
    let opened = Instant::now();
    let baked = Arc::new(AtomicUsize::new(0));
    println!(
        "The bakery opens with {} bakers; the oven is checked every {} ms.",
        bakery.bakers(),
        PERIOD.as_millis()
    );

    // The oven check: every PERIOD, on some baker, until the bakery closes.
    // Runs never overlap, so its state needs no lock of its own.
    let oven = {
        let baked = baked.clone();
        let mut loaves_before = 0;
        let mut checks = 0;
        bakery.submit_every(PERIOD, move || {
            checks += 1;
            check_the_oven(opened, &baked, &mut loaves_before, checks);
        })
    };
    // A reminder, once, later today; and one for tomorrow morning, which
    // the shutdown will cancel.
    let reminder = bakery.submit_after(REMINDER, move || {
        println!(
            "  [{:>4} ms] reminder: take the first bread out",
            opened.elapsed().as_millis()
        );
        "bread out"
    });
    let tomorrow = bakery.submit_after(Duration::from_secs(12 * 3600), || "order flour");

    // Foreground: waves of customers, each wave baked by the other bakers
    // while the checks go on.
    let mut loaves = 0;
    for wave in 1..=WAVES {
        let orders: Vec<_> = (0..LOAVES_PER_WAVE)
            .map(|i| {
                let number = loaves + i;
                let baked = baked.clone();
                bakery.submit(move || bake_loaf(number, &baked))
            })
            .collect();
        loaves += LOAVES_PER_WAVE;
        let mut by: Vec<String> = Vec::new();
        for (expected, order) in (loaves - LOAVES_PER_WAVE..).zip(orders) {
            let (number, baker) = order.join()?;
            assert_eq!(number, expected);
            by.push(baker);
        }
        by.sort();
        by.dedup();
        println!(
            "  [{:>4} ms] wave {wave}: {LOAVES_PER_WAVE} loaves ready, baked by {}",
            opened.elapsed().as_millis(),
            by.join(" and ")
        );
    }

    // Closing time: a last few loaves go in, then the bakery closes. The
    // shutdown lets the bakers finish them, stops the oven check and cancels
    // tomorrow's reminder, so it does not wait for either.
    let last: Vec<_> = (loaves..loaves + LAST_LOAVES)
        .map(|number| {
            let baked = baked.clone();
            bakery.submit(move || bake_loaf(number, &baked))
        })
        .collect();
    loaves += LAST_LOAVES;
    println!(
        "  [{:>4} ms] closing time: {LAST_LOAVES} last loaves ordered, shutting down",
        opened.elapsed().as_millis()
    );
    let closing = Instant::now();
    bakery.shutdown_timeout(Duration::from_secs(5))?;
    println!(
        "  [{:>4} ms] shutdown returned after {} ms",
        opened.elapsed().as_millis(),
        closing.elapsed().as_millis()
    );

    for order in last {
        order.join()?;
    }
    assert_eq!(reminder.join()?, "bread out");
    assert!(
        matches!(tomorrow.join(), Err(OrderError::Cancelled)),
        "the shutdown cancelled tomorrow's reminder instead of waiting for it"
    );
    assert!(oven.is_stopped(), "the shutdown stopped the oven check");
    let checks = oven.runs();
    let total = baked.load(Ordering::SeqCst);
    println!(
        "\n{checks} oven checks in {} ms; {total} of {loaves} loaves baked; tomorrow's reminder cancelled.",
        opened.elapsed().as_millis()
    );
    assert!(checks >= 5, "the oven was checked several times ({checks})");
    assert_eq!(total, loaves, "every loaf was baked");
    assert_eq!(total, WAVES * LOAVES_PER_WAVE + LAST_LOAVES);
    Ok(())
}
