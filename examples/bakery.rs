//! The bakery from the story: named bakers take the day's orders, hand work
//! off to each other when one of them is swamped, keep the counter going
//! when one of them has to wait, and close the shop without losing an order.
//!
//! Run it with `cargo run --release --example bakery`.

use bakehouse::{Baker, Bakery, OrderError};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The bakers on the payroll; anyone the bakery calls in to cover is a
/// stand-in.
const NAMES: [&str; 3] = ["Ada", "Bruno", "Chloe"];

/// One "minute" of kneading, shaping and baking is a millisecond of work
/// here: the baker is busy, not waiting.
fn work(minutes: u64) {
    let until = Instant::now() + Duration::from_millis(minutes);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Who baked what, for the end-of-day summary.
type Ledger = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

fn bake(item: &str, minutes: u64, ledger: &Ledger) -> String {
    let me = Baker::current().expect("orders run on bakers");
    work(minutes);
    ledger
        .lock()
        .unwrap()
        .entry(me.name().to_owned())
        .or_default()
        .push(item.to_owned());
    println!("  {:<8} baked {item} ({minutes} min)", me.name());
    me.name().to_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (gone_tx, stand_in_gone) = mpsc::channel::<String>();
    let gone_tx = Mutex::new(gone_tx);
    let bakery = Arc::new(
        Bakery::builder()
            .bakers(NAMES.len())
            .baker_name(|i| match NAMES.get(i) {
                Some(name) => (*name).to_owned(),
                None => format!("stand-in-{}", i - NAMES.len() + 1),
            })
            // A stand-in goes home after 50 ms without work.
            .keep_alive(Duration::from_millis(50))
            .on_baker_start(|i| {
                if i >= NAMES.len() {
                    let me = Baker::current().expect("hooks run on bakers");
                    println!("  {} comes in to cover the counter", me.name());
                }
            })
            .on_baker_stop(move |i| {
                if i >= NAMES.len() {
                    let me = Baker::current().expect("hooks run on bakers");
                    let _ = gone_tx.lock().unwrap().send(me.name().to_owned());
                }
            })
            .build()?,
    );
    let ledger: Ledger = Arc::default();
    // Keep the story readable: one line per panic instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let who = thread::current().name().unwrap_or("someone").to_owned();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("?");
        println!("  (panic on {who}: {message})");
    }));
    let opened = Instant::now();
    println!(
        "The bakery opens with {} bakers: {}.",
        bakery.bakers(),
        NAMES.join(", ")
    );

    // Customers place orders at the counter. Each order gets a handle.
    println!("\nMorning rush: customers order at the counter.");
    let counter = [
        ("birthday cake", 40),
        ("cupcakes", 15),
        ("sourdough bread", 25),
        ("croissants", 10),
        ("apple pie", 30),
    ];
    let morning: Vec<_> = counter
        .iter()
        .map(|&(item, minutes)| {
            let ledger = ledger.clone();
            (item, bakery.submit(move || bake(item, minutes, &ledger)))
        })
        .collect();
    for (item, order) in morning {
        println!("  ready: {item}, baked by {}", order.join()?);
    }

    // A wedding cake is too much for one baker: whoever takes it splits the
    // tiers into orders of their own. They land on that baker's own counter,
    // and idle colleagues come and take some of them.
    println!("\nA wedding cake: its baker hands tiers out to idle colleagues.");
    let door = bakery.clone();
    let wedding_ledger = ledger.clone();
    let wedding = bakery.submit(move || {
        let head = Baker::current().unwrap();
        println!(
            "  {} takes the wedding cake and splits it into 6 tiers",
            head.name()
        );
        let tiers: Vec<_> = (1..=6)
            .map(|tier| {
                let ledger = wedding_ledger.clone();
                let head_name = head.name().to_owned();
                door.submit(move || {
                    let baker = bake(&format!("wedding cake tier {tier}"), 20, &ledger);
                    (tier, baker != head_name, baker)
                })
            })
            .collect();
        // Joining inside a baker never deadlocks: an unstarted tier is baked
        // right here, a started one is awaited while doing other work.
        let mut stolen = 0;
        for tier in tiers {
            let (number, was_stolen, baker) = tier.join().expect("tiers do not burn");
            if was_stolen {
                stolen += 1;
                println!(
                    "  tier {number} was taken off {}'s counter by {baker}",
                    head.name()
                );
            }
        }
        (head.name().to_owned(), stolen)
    });
    let (head, stolen) = wedding.join()?;
    println!(
        "  the wedding cake is assembled by {head}; {stolen} of 6 tiers were baked by colleagues"
    );

    // Fork-join: two halves of a big tray, in parallel when a baker is free.
    let (left, right) = bakery.join(
        || bake("left half of the tray of scones", 12, &ledger),
        || bake("right half of the tray of scones", 12, &ledger),
    );
    println!("\nThe tray of scones: halves by {left} and {right}.");

    // An order that goes wrong reports its panic; the bakers keep working.
    println!("\nSomeone forgets the cake in the oven.");
    let burnt = bakery.submit(|| -> String { panic!("the black forest cake burnt") });
    match burnt.join() {
        Err(OrderError::Panicked(panic)) => println!("  order failed: {}", panic.message()),
        other => println!("  unexpected: {other:?}"),
    }
    let rescue_ledger = ledger.clone();
    let rescue = bakery.submit(move || bake("replacement black forest cake", 35, &rescue_ledger));
    println!("  the replacement is baked by {}", rescue.join()?);

    // "Maybe a cake takes longer to bake": one baker has to wait at the back
    // door for a delivery of flour. It says so (`blocking`), and the bakery
    // calls in a stand-in, so the counter keeps going with three bakers.
    println!("\nThe flour runs low: a baker waits at the back door for the delivery.");
    let (deliver, delivery) = mpsc::channel::<&str>();
    let (waiting_tx, waiting_now) = mpsc::channel();
    let back_door = bakery.submit(move || {
        let me = Baker::current().expect("orders run on bakers");
        println!(
            "  {} goes to the back door to wait for the flour",
            me.name()
        );
        waiting_tx.send(()).expect("main waits for this");
        let flour = bakehouse::blocking(|| delivery.recv().expect("the flour comes"));
        println!("  {} is back with {flour}", me.name());
        me.name().to_owned()
    });
    waiting_now.recv()?;
    let counter: Vec<_> = [
        "rye bread",
        "pretzels",
        "focaccia",
        "lemon tart",
        "brioche",
        "bagels",
    ]
    .into_iter()
    .map(|item| {
        let ledger = ledger.clone();
        bakery.submit(move || bake(item, 8, &ledger))
    })
    .collect();
    let covered: Vec<String> = counter
        .into_iter()
        .map(|order| order.join())
        .collect::<Result<_, _>>()?;
    let stand_ins = covered
        .iter()
        .filter(|name| !NAMES.contains(&name.as_str()))
        .count();
    println!(
        "  while one baker waited, {stand_ins} of the 6 counter orders were baked by a stand-in"
    );
    deliver.send("two sacks of flour")?;
    let waited = back_door.join()?;
    match stand_in_gone.recv_timeout(Duration::from_secs(10)) {
        Ok(name) => println!("  {waited} is back at the counter, and {name} goes home"),
        Err(_) => println!("  {waited} is back at the counter; the stand-in stays for now"),
    }
    println!(
        "  the bakery is configured for {} bakers, as before",
        bakery.bakers()
    );

    // A customer changes their mind before their order is started.
    println!("\nA customer cancels an order that is still waiting.");
    let busy: Vec<_> = (0..NAMES.len())
        .map(|_| {
            let ledger = ledger.clone();
            bakery.submit(move || bake("a batch of baguettes", 30, &ledger))
        })
        .collect();
    let eclairs = bakery.submit(|| "eclairs");
    if eclairs.cancel() {
        println!("  the eclairs were cancelled before any baker started them");
    }
    match eclairs.join() {
        Err(OrderError::Cancelled) => println!("  and their handle says so: cancelled"),
        other => println!("  unexpected: {other:?}"),
    }
    for order in busy {
        order.join()?;
    }

    // Before closing, the bakery settles down and the day's counts are read.
    bakery.wait_idle();
    println!("\nThe day so far, once every order is done:");
    for line in bakery.stats().to_string().lines() {
        println!("  {line}");
    }

    // Closing time: the last orders of the day are accepted, then the shop
    // closes; every accepted order is still baked before the bakers go home.
    println!("\nClosing time: the last orders go in, then the door is locked.");
    let last: Vec<_> = ["muffins", "brownies", "cinnamon rolls", "macarons"]
        .into_iter()
        .map(|item| {
            let ledger = ledger.clone();
            bakery.submit(move || bake(item, 10, &ledger))
        })
        .collect();
    let bakery = Arc::try_unwrap(bakery).expect("no other handle is left");
    let late = bakery.clone();
    bakery.shutdown();
    for order in last {
        order.join()?;
    }
    match late.try_submit(|| "a late pizza") {
        Err(refused) => println!("  a late customer is turned away: {refused}"),
        Ok(_) => println!("  unexpected: the bakery still took an order"),
    }

    println!("\nEnd of the day ({} ms):", opened.elapsed().as_millis());
    for (baker, items) in ledger.lock().unwrap().iter() {
        let noun = if items.len() == 1 { "item " } else { "items" };
        println!(
            "  {baker:<10} baked {:>2} {noun}: {}",
            items.len(),
            items.join(", ")
        );
    }
    Ok(())
}
