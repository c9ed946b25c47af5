//! Bakers that block, side by side with pools that grow (rusty_pool) and
//! pools that do not (threadpool); and a bakery with many bakers.
//!
//! * `blocking_mix`: 64 orders that each block for 20 ms (a `sleep`) and
//!   2,000 CPU orders of 50 µs each (a calibrated busy loop), interleaved
//!   and submitted together from outside, on pools of 2 threads (or
//!   `BAKERY_BENCH_THREADS`); the time is the makespan, every result
//!   collected. The ideal is the CPU work divided by the threads (the
//!   sleeps need no CPU). Variants:
//!   * `bakery_declared`: each sleep wrapped in `bakehouse::blocking`;
//!   * `bakery`: a plain `sleep`, noticed by the blocking monitor (default
//!     threshold);
//!   * `bakery_threshold_<n>us`: the same with other thresholds, to choose
//!     the default from;
//!   * `bakery_no_detection`: a plain `sleep` with the monitor off, which
//!     is what a pool that does not compensate does;
//!   * `threadpool`: `execute` plus a channel;
//!   * `rusty_pool`: 2 core threads growing up to 512 (the bakery's
//!     `max_bakers`), `evaluate` plus `await_complete`.
//!
//!   After each variant the bench prints the median makespan against the
//!   ideal.
//! * `many_bakers`: a burst of 20,000 tiny orders from outside, every
//!   result collected, on a bakery of 8, 64 and 512 bakers. After each it
//!   prints the process's CPU time per burst (user plus system, all
//!   threads), since a bakery that wakes more bakers than there is work for
//!   burns CPU the wall time hides.

mod common;

use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BLOCKING_ORDERS: usize = 64;
const BLOCKING_WAIT: Duration = Duration::from_millis(20);
const CPU_ORDERS: usize = 2_000;
const CPU_WORK: Duration = Duration::from_micros(50);
const TINY_BURST: u64 = 20_000;

fn threads() -> usize {
    common::threads_from_env("BAKERY_BENCH_THREADS", || 2)
}

/// `units` rounds of a dependent arithmetic chain: CPU work that the
/// optimizer cannot remove.
fn spin(units: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
    for _ in 0..units {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
    black_box(x)
}

/// How many `spin` units take `work` on this machine (the best of a few
/// runs, so that a preempted run does not count).
fn spin_units(work: Duration) -> u64 {
    let units = 2_000_000;
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            spin(units);
            start.elapsed()
        })
        .min()
        .expect("five runs");
    (units as f64 * work.as_secs_f64() / best.as_secs_f64()) as u64
}

/// One order of the mix: `None` blocks, `Some(units)` spins.
type Job = Option<u64>;

/// The mix, the blocking orders spread evenly through the CPU ones.
fn mix(cpu_units: u64) -> Vec<Job> {
    let total = BLOCKING_ORDERS + CPU_ORDERS;
    let mut jobs = vec![Some(cpu_units); total];
    for k in 0..BLOCKING_ORDERS {
        jobs[k * total / BLOCKING_ORDERS] = None;
    }
    jobs
}

fn run_job(job: Job, declare: bool) -> u64 {
    match job {
        Some(units) => spin(units),
        None if declare => {
            bakehouse::blocking(|| thread::sleep(BLOCKING_WAIT));
            0
        }
        None => {
            thread::sleep(BLOCKING_WAIT);
            0
        }
    }
}

/// Makespans recorded by one variant, for the line printed after it.
struct Makespans(Vec<Duration>);

impl Makespans {
    fn time(&mut self, run: impl FnOnce()) -> Duration {
        let start = Instant::now();
        run();
        let makespan = start.elapsed();
        self.0.push(makespan);
        makespan
    }

    fn report(&mut self, variant: &str, ideal: Duration) {
        if self.0.is_empty() {
            return;
        }
        self.0.sort();
        let median = self.0[self.0.len() / 2];
        println!(
            "blocking_mix/{variant}: median makespan {:.1} ms over {} runs, {:.2}x the ideal \
             ({:.1} ms)",
            median.as_secs_f64() * 1e3,
            self.0.len(),
            median.as_secs_f64() / ideal.as_secs_f64(),
            ideal.as_secs_f64() * 1e3,
        );
        self.0.clear();
    }
}

fn bench_bakery(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    bakery: bakehouse::Bakery,
    jobs: &[Job],
    declare: bool,
    ideal: Duration,
) {
    let mut makespans = Makespans(Vec::new());
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    makespans.time(|| {
                        let orders: Vec<_> = jobs
                            .iter()
                            .map(|&job| bakery.submit(move || run_job(job, declare)))
                            .collect();
                        for order in orders {
                            black_box(order.join().expect("an order runs"));
                        }
                    })
                })
                .sum()
        })
    });
    makespans.report(name, ideal);
    bakery.shutdown();
}

fn blocking_mix(c: &mut Criterion) {
    const GROUP: &str = "blocking_mix";
    let threads = threads();
    let cpu_units = spin_units(CPU_WORK);
    let jobs = mix(cpu_units);
    let ideal = CPU_WORK * CPU_ORDERS as u32 / threads as u32;
    let mut group = c.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    let built = |threshold: Option<Duration>| {
        bakehouse::Bakery::builder()
            .bakers(threads)
            .blocking_threshold(threshold)
            .build()
            .expect("bakery builds")
    };
    let default = Some(bakehouse::DEFAULT_BLOCKING_THRESHOLD);
    bench_bakery(
        &mut group,
        "bakery_declared",
        built(default),
        &jobs,
        true,
        ideal,
    );
    bench_bakery(&mut group, "bakery", built(default), &jobs, false, ideal);
    for micros in [500_u64, 1_000, 5_000, 10_000] {
        let name = format!("bakery_threshold_{micros}us");
        let threshold = Some(Duration::from_micros(micros));
        bench_bakery(&mut group, &name, built(threshold), &jobs, false, ideal);
    }
    bench_bakery(
        &mut group,
        "bakery_no_detection",
        built(None),
        &jobs,
        false,
        ideal,
    );

    let pool = threadpool::ThreadPool::new(threads);
    let mut makespans = Makespans(Vec::new());
    group.bench_function("threadpool", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    makespans.time(|| {
                        let (tx, rx) = mpsc::channel();
                        for &job in &jobs {
                            let tx = tx.clone();
                            pool.execute(move || {
                                let _ = tx.send(run_job(job, false));
                            });
                        }
                        for _ in &jobs {
                            black_box(rx.recv().expect("an order runs"));
                        }
                    })
                })
                .sum()
        })
    });
    makespans.report("threadpool", ideal);
    pool.join();

    let pool = rusty_pool::ThreadPool::new(threads, 512, Duration::from_secs(10));
    group.bench_function("rusty_pool", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    makespans.time(|| {
                        let handles: Vec<_> = jobs
                            .iter()
                            .map(|&job| pool.evaluate(move || run_job(job, false)))
                            .collect();
                        for handle in handles {
                            black_box(handle.await_complete());
                        }
                    })
                })
                .sum()
        })
    });
    makespans.report("rusty_pool", ideal);
    pool.shutdown_join();
    group.finish();
}

/// The CPU time this process used so far, all threads, user and system.
fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed one we own.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| {
        Duration::from_secs(time.tv_sec as u64) + Duration::from_micros(time.tv_usec as u64)
    };
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn many_bakers(c: &mut Criterion) {
    const GROUP: &str = "many_bakers";
    let mut group = c.benchmark_group(GROUP);
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for bakers in [8, 64, 512] {
        let bakery = bakehouse::Bakery::builder()
            .bakers(bakers)
            .build()
            .expect("bakery builds");
        let mut bursts = 0_u32;
        let mut cpu = Duration::ZERO;
        group.bench_function(format!("bakery_{bakers}"), |b| {
            b.iter(|| {
                let before = process_cpu_time();
                let orders: Vec<_> = (0..TINY_BURST)
                    .map(|i| bakery.submit(move || black_box(i) * 2))
                    .collect();
                let total: u64 = orders
                    .into_iter()
                    .map(|order| order.join().expect("an order runs"))
                    .sum();
                cpu += process_cpu_time() - before;
                bursts += 1;
                black_box(total)
            })
        });
        if bursts > 0 {
            println!(
                "many_bakers/bakery_{bakers}: {:.2} ms of CPU per burst of {TINY_BURST}",
                cpu.as_secs_f64() * 1e3 / f64::from(bursts)
            );
        }
        bakery.shutdown();
    }
    group.finish();
}

fn main() {
    common::abort_after("blocking", Duration::from_secs(20 * 60));
    let mut c = Criterion::default().sample_size(20).configure_from_args();
    blocking_mix(&mut c);
    many_bakers(&mut c);
    c.final_summary();
}
