//! A background task next to the day's work: one baker checks the oven's
//! temperature every 50 ms while the others bake waves of bread.
//!
//! The check is an ordinary order that loops until its bakery closes
//! ([`Baker::is_closing`]), sleeping between checks. Because a shutdown
//! finishes every accepted order, a loop that never looked would keep the
//! shutdown waiting forever; this one notices it within one period and
//! returns how many checks it made. It holds no `Bakery` handle of its own,
//! so dropping the last handle would close the bakery just as well. The
//! example asserts that the check ran several times, that every loaf was
//! baked (including those still queued when the shutdown began), and that the
//! shutdown returned in time.
//!
//! Run it with `cargo run --release --example background`.

use bakehouse::{Baker, Bakery};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(50);
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

/// Checks the oven every `PERIOD` until the bakery closes; returns the
/// number of checks.
fn watch_the_oven(opened: Instant, baked: Arc<AtomicUsize>) -> usize {
    let me = Baker::current().expect("the check runs on a baker");
    let mut checks = 0;
    let mut next = Instant::now();
    let mut loaves_before = 0;
    while !me.is_closing() {
        checks += 1;
        let now = opened.elapsed();
        let loaves = baked.load(Ordering::SeqCst);
        let degrees = temperature(now, loaves - loaves_before);
        loaves_before = loaves;
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
        // Keep a steady rhythm: aim at the next tick, not `PERIOD` after
        // this check finished.
        next += PERIOD;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    println!(
        "  [{:>4} ms] {} sees the bakery closing and stops checking",
        opened.elapsed().as_millis(),
        me.name()
    );
    checks
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
        .baker_name(move |i| names[i].to_owned())
        .build()?;
    let opened = Instant::now();
    let baked = Arc::new(AtomicUsize::new(0));
    println!(
        "The bakery opens with {} bakers; one of them will watch the oven every {} ms.",
        bakery.bakers(),
        PERIOD.as_millis()
    );

    // The background check asks its baker whether the bakery is closing.
    let watcher = {
        let baked = baked.clone();
        bakery.submit(move || watch_the_oven(opened, baked))
    };

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
    // shutdown lets the bakers finish them, and the check loop notices the
    // closing and returns, so the shutdown does not wait forever.
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
    let checks = watcher.join()?;
    let total = baked.load(Ordering::SeqCst);
    println!(
        "\n{checks} oven checks in {} ms; {total} of {loaves} loaves baked.",
        opened.elapsed().as_millis()
    );
    assert!(checks >= 5, "the oven was checked several times ({checks})");
    assert_eq!(total, loaves, "every loaf was baked");
    assert_eq!(total, WAVES * LOAVES_PER_WAVE + LAST_LOAVES);
    Ok(())
}
