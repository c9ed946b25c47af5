//! Heap allocations per submitted and joined order, for bakery and the other
//! pools, counted by a `#[global_allocator]` that wraps the system allocator.
//!
//! This is a plain program, not a criterion benchmark: it prints a table.
//! Every scenario runs 100 rounds of 1,000 orders after 10 rounds of
//! warm-up, and divides what the whole process allocated during those
//! 100,000 orders (on every thread: the submitter and the pool's threads) by
//! 100,000. `alloc`, `alloc_zeroed` and `realloc` each count as one
//! allocation; the bytes are those requested (a `realloc` counts its new
//! size).
//!
//! Results come back through a `std::sync::mpsc` channel for the pools whose
//! jobs return nothing (threadpool, executors, rayon's `spawn`). An
//! unbounded channel allocates one block per 31 messages, so the first row
//! measures the channel alone for reference. Handle vectors are reused, so
//! they allocate nothing after the warm-up. Every pool has one thread per CPU
//! (`BAKERY_BENCH_THREADS` to change).

mod common;

use bakehouse::Bakery;
use executors::Executor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The system allocator, counting.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees hold; the counting touches only atomics and never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract,
        // and `ptr` came from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BATCH: usize = 1_000;
const ROUNDS: usize = 100;
const WARM_UP_ROUNDS: usize = 10;
const ORDERS: usize = BATCH * ROUNDS;
const RECV_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole program normally takes a few seconds.
const WATCHDOG: Duration = Duration::from_secs(300);

#[inline]
fn tiny(i: u64) -> u64 {
    black_box(i).wrapping_mul(3).wrapping_add(1)
}

fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(RECV_TIMEOUT)
        .expect("a result arrives within the timeout")
}

struct Row {
    scenario: &'static str,
    allocations: f64,
    bytes: f64,
}

/// Runs `round` (which must handle `BATCH` orders) for the warm-up, then
/// counts the allocations of `ROUNDS` more rounds.
fn measure(scenario: &'static str, mut round: impl FnMut()) -> Row {
    for _ in 0..WARM_UP_ROUNDS {
        round();
    }
    let (allocations, bytes) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
    );
    for _ in 0..ROUNDS {
        round();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - allocations;
    let bytes = BYTES.load(Ordering::SeqCst) - bytes;
    let row = Row {
        scenario,
        allocations: allocations as f64 / ORDERS as f64,
        bytes: bytes as f64 / ORDERS as f64,
    };
    eprintln!(
        "{scenario}: {:.3} allocations, {:.1} bytes per order",
        row.allocations, row.bytes
    );
    row
}

fn main() {
    let started = Instant::now();
    common::abort_after("allocations", WATCHDOG);
    let threads = common::threads_from_env("BAKERY_BENCH_THREADS", common::cpus);
    let mut rows = Vec::new();

    // The channel alone, as a reference for the rows that use one.
    let (tx, rx) = mpsc::channel::<u64>();
    rows.push(measure("std mpsc channel alone: send + recv", || {
        for i in 0..BATCH as u64 {
            tx.send(tiny(i)).expect("the receiver is alive");
        }
        for _ in 0..BATCH {
            black_box(recv(&rx));
        }
    }));

    let bakery = Bakery::builder()
        .bakers(threads)
        .build()
        .expect("bakery builds");

    let mut orders = Vec::with_capacity(BATCH);
    rows.push(measure("bakery: submit + join, from outside", || {
        orders.extend((0..BATCH as u64).map(|i| bakery.submit(move || tiny(i))));
        for order in orders.drain(..) {
            black_box(order.join().expect("an order succeeds"));
        }
    }));

    // One outer order per round submits and joins the batch from inside a
    // baker; the outer order's own allocation adds 1 / BATCH per order.
    let mut inner = Some(Vec::with_capacity(BATCH));
    rows.push(measure(
        "bakery: submit + join, inside a baker (+ 1 outer order per 1,000)",
        || {
            let mut orders = inner.take().expect("the vector is back");
            let door = bakery.clone();
            let outer = bakery.submit(move || {
                orders.extend((0..BATCH as u64).map(|i| door.submit(move || tiny(i))));
                for order in orders.drain(..) {
                    black_box(order.join().expect("an order succeeds"));
                }
                orders
            });
            inner = Some(outer.join().expect("the outer order succeeds"));
        },
    ));

    rows.push(measure(
        "bakery: scope submit + join, from outside (+ 1 scope and 1 vector per 1,000)",
        || {
            bakery.scope(|s| {
                let orders: Vec<_> = (0..BATCH as u64)
                    .map(|i| s.submit(move || tiny(i)))
                    .collect();
                for order in orders {
                    black_box(order.join().expect("a scoped order succeeds"));
                }
            });
        },
    ));

    rows.push(measure(
        "bakery: join, inside a baker (per join, + 1 outer order per 1,000)",
        || {
            let door = bakery.clone();
            let outer = bakery.submit(move || {
                let mut sum = 0;
                for i in 0..BATCH as u64 {
                    let (a, b) = door.join(|| tiny(i), || tiny(i + 1));
                    sum += a + b;
                }
                sum
            });
            black_box(outer.join().expect("the outer order succeeds"));
        },
    ));

    rows.push(measure("bakery: join, from outside (cold path)", || {
        for i in 0..BATCH as u64 {
            black_box(bakery.join(|| tiny(i), || tiny(i + 1)));
        }
    }));
    bakery.shutdown();

    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool builds");
    rows.push(measure("rayon: spawn + channel, from outside", || {
        for i in 0..BATCH as u64 {
            let tx = tx.clone();
            rayon.spawn(move || {
                let _ = tx.send(tiny(i));
            });
        }
        for _ in 0..BATCH {
            black_box(recv(&rx));
        }
    }));

    let mut slots = vec![0u64; BATCH];
    rows.push(measure(
        "rayon: scope + spawn (body on a worker, + 1 scope per 1,000)",
        || {
            rayon.scope(|s| {
                for (i, slot) in slots.iter_mut().enumerate() {
                    s.spawn(move |_| *slot = tiny(i as u64));
                }
            });
            black_box(&slots);
        },
    ));

    rows.push(measure(
        "rayon: join, inside the pool (per join, + 1 install per 1,000)",
        || {
            let sum = rayon.install(|| {
                let mut sum = 0;
                for i in 0..BATCH as u64 {
                    let (a, b) = rayon::join(|| tiny(i), || tiny(i + 1));
                    sum += a + b;
                }
                sum
            });
            black_box(sum);
        },
    ));
    drop(rayon);

    let threadpool = threadpool::ThreadPool::new(threads);
    rows.push(measure("threadpool: execute + channel", || {
        for i in 0..BATCH as u64 {
            let tx = tx.clone();
            threadpool.execute(move || {
                let _ = tx.send(tiny(i));
            });
        }
        for _ in 0..BATCH {
            black_box(recv(&rx));
        }
    }));
    threadpool.join();

    let executors = executors::crossbeam_workstealing_pool::small_pool(threads);
    rows.push(measure(
        "executors: execute + channel, from outside",
        || {
            for i in 0..BATCH as u64 {
                let tx = tx.clone();
                executors.execute(move || {
                    let _ = tx.send(tiny(i));
                });
            }
            for _ in 0..BATCH {
                black_box(recv(&rx));
            }
        },
    ));
    executors.shutdown().expect("executors pool shuts down");

    println!();
    println!(
        "Heap allocations per order, {threads} threads per pool, \
         averaged over {ORDERS} orders after a warm-up of {} orders:",
        WARM_UP_ROUNDS * BATCH
    );
    println!();
    println!("| scenario | allocations per order | bytes per order |");
    println!("|---|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {:.3} | {:.1} |",
            row.scenario, row.allocations, row.bytes
        );
    }
    println!();
    println!("finished in {:.1} s", started.elapsed().as_secs_f64());
}
