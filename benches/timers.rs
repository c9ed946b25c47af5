//! Timers side by side: bakehouse's delayed and repeating orders against
//! `scheduled-thread-pool` (the crate r2d2 uses) and a thread per timer
//! sleeping to its deadline with `std::thread::sleep` (the physical
//! reference: what the OS timer gives one sleeping thread).
//!
//! * `timers/lateness`: 1,000 timers with deadlines spread evenly over
//!   1–100 ms from one start; how late each one runs after its deadline.
//!   Criterion's figure is the mean of each round's 99th percentile; the
//!   p50 and p99 over every timer of every round are printed at the end.
//! * `timers/schedule_cancel`: schedule 100,000 timers an hour away, then
//!   cancel them all (no thread-per-timer row: 100,000 threads).
//! * `timers/every_10ms`: a 10 ms repeating order for 1 s; criterion's
//!   figure is the mean of the runs' lateness behind the latest tick of the
//!   10 ms grid; the runs, the runs bunched to catch up on missed ticks,
//!   and the last run's lateness (its drift off the grid after 1 s) are
//!   printed at the end.
//!
//! Both pools get 2 threads (`BAKERY_BENCH_THREADS` to change). Run with `cargo bench --bench timers`.

mod common;

use bakehouse::Bakery;
use criterion::{BenchmarkId, Criterion, SamplingMode};
use scheduled_thread_pool::ScheduledThreadPool;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const TIMERS: usize = 1_000;
const SPREAD_FROM: Duration = Duration::from_millis(1);
const SPREAD_TO: Duration = Duration::from_millis(100);
const CANCELLED: usize = 100_000;
const PERIOD: Duration = Duration::from_millis(10);
const RUN_FOR: Duration = Duration::from_secs(1);

/// Threads per pool: 2, or `BAKERY_BENCH_THREADS`.
fn threads() -> usize {
    common::threads_from_env("BAKERY_BENCH_THREADS", || 2)
}

/// Every lateness measured, by variant, for the summary.
static LATENESS: Mutex<BTreeMap<&'static str, Vec<Duration>>> = Mutex::new(BTreeMap::new());
/// Runs and final drift of each repeating round, by variant.
static PERIODIC: Mutex<BTreeMap<&'static str, Vec<Round>>> = Mutex::new(BTreeMap::new());

/// Timer `i`'s deadline after `start`.
fn deadline(start: Instant, i: usize) -> Instant {
    let span = SPREAD_TO - SPREAD_FROM;
    start + SPREAD_FROM + span * i as u32 / (TIMERS as u32 - 1)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Records one round's lateness and returns its 99th percentile.
fn record(variant: &'static str, mut late: Vec<Duration>) -> Duration {
    late.sort();
    let p99 = percentile(&late, 0.99);
    LATENESS
        .lock()
        .unwrap()
        .entry(variant)
        .or_default()
        .extend(late);
    p99
}

fn round_bakehouse(bakery: &Bakery) -> Vec<Duration> {
    let start = Instant::now();
    let orders: Vec<_> = (0..TIMERS)
        .map(|i| {
            let at = deadline(start, i);
            bakery.submit_at(at, move || Instant::now().saturating_duration_since(at))
        })
        .collect();
    orders.into_iter().map(|o| o.join().unwrap()).collect()
}

fn round_scheduled(pool: &ScheduledThreadPool) -> Vec<Duration> {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for i in 0..TIMERS {
        let at = deadline(start, i);
        let tx = tx.clone();
        pool.execute_after(at.saturating_duration_since(Instant::now()), move || {
            let _ = tx.send(Instant::now().saturating_duration_since(at));
        });
    }
    drop(tx);
    rx.iter().collect()
}

/// One thread per timer, each sleeping to its deadline. The threads are
/// started before the clock starts, so that spawning 1,000 threads does not
/// count as lateness: this is the reference of a sleeping thread's
/// precision, not a contender in cost.
fn round_threads() -> Vec<Duration> {
    let start = Arc::new(OnceLock::new());
    let go = Arc::new(Barrier::new(TIMERS + 1));
    let threads: Vec<_> = (0..TIMERS)
        .map(|i| {
            let (start, go) = (start.clone(), go.clone());
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    go.wait();
                    let at = deadline(*start.get().unwrap(), i);
                    thread::sleep(at.saturating_duration_since(Instant::now()));
                    Instant::now().saturating_duration_since(at)
                })
                .unwrap()
        })
        .collect();
    start.set(Instant::now()).unwrap();
    go.wait();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn lateness(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers/lateness");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    let bakery = Bakery::new(threads());
    group.bench_function(BenchmarkId::new("bakehouse", TIMERS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| record("bakehouse", round_bakehouse(&bakery)))
                .sum()
        })
    });
    bakery.shutdown();
    let pool = ScheduledThreadPool::new(threads());
    group.bench_function(BenchmarkId::new("scheduled-thread-pool", TIMERS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| record("scheduled-thread-pool", round_scheduled(&pool)))
                .sum()
        })
    });
    drop(pool);
    group.bench_function(BenchmarkId::new("thread per timer", TIMERS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| record("thread per timer", round_threads()))
                .sum()
        })
    });
    group.finish();
}

fn schedule_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers/schedule_cancel");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    let hour = Duration::from_secs(3600);
    group.bench_function(BenchmarkId::new("bakehouse", CANCELLED), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let bakery = Bakery::new(threads());
                let start = Instant::now();
                let orders: Vec<_> = (0..CANCELLED)
                    .map(|i| bakery.submit_after(hour, move || black_box(i)))
                    .collect();
                for order in &orders {
                    black_box(order.cancel());
                }
                total += start.elapsed();
                drop(orders);
                bakery.shutdown();
            }
            total
        })
    });
    group.bench_function(BenchmarkId::new("scheduled-thread-pool", CANCELLED), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pool = ScheduledThreadPool::new(threads());
                let start = Instant::now();
                let handles: Vec<_> = (0..CANCELLED)
                    .map(|i| {
                        pool.execute_after(hour, move || {
                            black_box(i);
                        })
                    })
                    .collect();
                for handle in &handles {
                    handle.cancel();
                }
                total += start.elapsed();
                drop(handles);
                drop(pool);
            }
            total
        })
    });
    group.finish();
}

/// What a repeating round saw: each run's lateness behind the latest tick
/// of the grid `start + k * PERIOD` (a skipped tick does not count as
/// lateness ever after), and how many runs came less than half a period
/// after the one before (bunched, catching up on missed ticks).
struct Ticks {
    start: Instant,
    last: Option<Instant>,
    late: Vec<Duration>,
    bunched: u64,
}

impl Ticks {
    fn new() -> Ticks {
        Ticks {
            start: Instant::now(),
            last: None,
            late: Vec::new(),
            bunched: 0,
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let phase = now.duration_since(self.start).as_nanos() % PERIOD.as_nanos();
        self.late.push(Duration::from_nanos(phase as u64));
        if self.last.is_some_and(|last| now - last < PERIOD / 2) {
            self.bunched += 1;
        }
        self.last = Some(now);
    }
}

/// One round's summary: runs, bunched runs, the last run's lateness.
type Round = (u64, u64, Duration);

/// Records the round; returns the mean lateness, criterion's figure.
fn record_periodic(variant: &'static str, ticks: &Ticks) -> Duration {
    let runs = ticks.late.len() as u64;
    let last = ticks.late.last().copied().unwrap_or_default();
    PERIODIC
        .lock()
        .unwrap()
        .entry(variant)
        .or_default()
        .push((runs, ticks.bunched, last));
    ticks.late.iter().sum::<Duration>() / (runs.max(1) as u32)
}

fn every_10ms(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers/every_10ms");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(10));
    group.measurement_time(Duration::from_secs(10));
    let bakery = Bakery::new(threads());
    group.bench_function("bakehouse", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let ticks = Arc::new(Mutex::new(Ticks::new()));
                    let recorder = ticks.clone();
                    let repeating =
                        bakery.submit_every(PERIOD, move || recorder.lock().unwrap().tick());
                    thread::sleep(RUN_FOR);
                    repeating.cancel();
                    let ticks = ticks.lock().unwrap();
                    record_periodic("bakehouse", &ticks)
                })
                .sum()
        })
    });
    bakery.shutdown();
    let pool = ScheduledThreadPool::new(threads());
    group.bench_function("scheduled-thread-pool", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let ticks = Arc::new(Mutex::new(Ticks::new()));
                    let recorder = ticks.clone();
                    let handle = pool.execute_at_fixed_rate(PERIOD, PERIOD, move || {
                        recorder.lock().unwrap().tick()
                    });
                    thread::sleep(RUN_FOR);
                    handle.cancel();
                    let ticks = ticks.lock().unwrap();
                    record_periodic("scheduled-thread-pool", &ticks)
                })
                .sum()
        })
    });
    drop(pool);
    group.bench_function("thread sleeping to each tick", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let mut ticks = Ticks::new();
                    let end = ticks.start + RUN_FOR;
                    let mut next = ticks.start + PERIOD;
                    while next <= end {
                        thread::sleep(next.saturating_duration_since(Instant::now()));
                        ticks.tick();
                        next += PERIOD;
                    }
                    record_periodic("thread sleeping to each tick", &ticks)
                })
                .sum()
        })
    });
    group.finish();
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn summary() {
    println!();
    println!(
        "Lateness of {TIMERS} timers over 1–100 ms, {} threads per pool:",
        threads()
    );
    println!();
    println!("| variant | timers | p50 (µs) | p99 (µs) | max (µs) |");
    println!("|---|---:|---:|---:|---:|");
    for (variant, late) in LATENESS.lock().unwrap().iter_mut() {
        late.sort();
        println!(
            "| {variant} | {} | {:.0} | {:.0} | {:.0} |",
            late.len(),
            micros(percentile(late, 0.5)),
            micros(percentile(late, 0.99)),
            micros(*late.last().unwrap()),
        );
    }
    println!();
    println!("A 10 ms repeating order for 1 s:");
    println!();
    println!("| variant | rounds | runs per round (min–max) | bunched runs per round (max) | lateness of the last run behind its tick, median (µs) |");
    println!("|---|---:|---:|---:|---:|");
    for (variant, rounds) in PERIODIC.lock().unwrap().iter() {
        let min = rounds.iter().map(|r| r.0).min().unwrap();
        let max = rounds.iter().map(|r| r.0).max().unwrap();
        let bunched = rounds.iter().map(|r| r.1).max().unwrap();
        let mut drift: Vec<_> = rounds.iter().map(|r| r.2).collect();
        drift.sort();
        println!(
            "| {variant} | {} | {min}–{max} | {bunched} | {:.0} |",
            rounds.len(),
            micros(percentile(&drift, 0.5))
        );
    }
}

fn main() {
    common::abort_after("timers", Duration::from_secs(10 * 60));
    let mut c = Criterion::default().configure_from_args();
    lateness(&mut c);
    schedule_cancel(&mut c);
    every_10ms(&mut c);
    c.final_summary();
    summary();
}
