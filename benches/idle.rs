//! How much CPU an idle pool burns when it has more threads than the machine
//! has cores: bakery, rayon, threadpool, executors' crossbeam work-stealing
//! pool and chili, each with 8 threads (`BAKERY_IDLE_THREADS` to change).
//!
//! This is a plain program, not a criterion benchmark: it prints a table.
//! For each pool, one after the other (the previous pool is shut down
//! first):
//!
//! 1. build the pool and run a burst of 10,000 tiny orders through it, so
//!    that every thread has started and worked;
//! 2. *spin-down*: the process CPU time used in the 100 ms right after the
//!    burst's last result arrived (threads searching for work, yielding,
//!    then falling asleep);
//! 3. let it settle for 500 ms, then measure the process CPU time (user +
//!    system, `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`) and the context
//!    switches (`getrusage(RUSAGE_SELF)`) over three 1 s windows in which
//!    nothing is submitted; the table gives the median window, per second of
//!    wall time.
//!
//! The "bakery + 10,000 timers" row is a bakery with that many delayed
//! orders pending an hour away: its timer thread sleeps until the earliest,
//! so it should burn no more than the plain bakery.
//!
//! The "no pool" row is the floor: this program with no pool at all (its
//! main thread sleeping, plus a watchdog thread that wakes once a second).
//!
//! Fork-join pools burst with a fork-join instead: fib(20), a join at every
//! call. `bakery, after fork-join` runs it after the orders, so that bakers
//! that asked for work (see the engine's promotion) are left asleep.
//! `chili` has no orders: it runs the fork-join from a `Scope` that the
//! program keeps, as a program using chili keeps its scope; chili's
//! heartbeat thread ticks while a scope exists. Its pool is leaked (its
//! scope borrows it), so it comes last.

mod common;

use bakehouse::Bakery;
use executors::Executor;
use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BURST: u64 = 10_000;
const SPIN_DOWN: Duration = Duration::from_millis(100);
const SETTLE: Duration = Duration::from_millis(500);
const WINDOW: Duration = Duration::from_secs(1);
const WINDOWS: usize = 3;
const RECV_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole program normally takes well under a minute.
const WATCHDOG: Duration = Duration::from_secs(300);

/// CPU time used by the whole process so far (every thread, user + system).
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`, and
    // `CLOCK_PROCESS_CPUTIME_ID` is a clock every supported Unix provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Voluntary plus involuntary context switches of the process so far.
fn context_switches() -> u64 {
    // SAFETY: `rusage` is plain old data, for which all zero bytes is a
    // valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) failed");
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

#[inline]
fn tiny(i: u64) -> u64 {
    black_box(i).wrapping_mul(3).wrapping_add(1)
}

/// A pool under test: it can run a burst of tiny orders and shut down.
trait Pool {
    fn burst(&self);
    fn shutdown(self: Box<Self>);
}

struct NoPool;

impl Pool for NoPool {
    fn burst(&self) {}
    fn shutdown(self: Box<Self>) {}
}

impl Pool for Bakery {
    fn burst(&self) {
        let orders: Vec<_> = (0..BURST).map(|i| self.submit(move || tiny(i))).collect();
        for order in orders {
            black_box(order.join().expect("a tiny order succeeds"));
        }
    }

    fn shutdown(self: Box<Self>) {
        Bakery::shutdown(*self);
    }
}

impl Pool for rayon::ThreadPool {
    fn burst(&self) {
        self.scope(|s| {
            for i in 0..BURST {
                s.spawn(move |_| {
                    black_box(tiny(i));
                });
            }
        });
    }

    fn shutdown(self: Box<Self>) {
        drop(self);
    }
}

/// Sends `BURST` tiny orders through `execute` and waits for every result.
fn burst_with_channel(execute: impl Fn(Box<dyn FnOnce() + Send>)) {
    let (tx, rx) = mpsc::channel();
    for i in 0..BURST {
        let tx = tx.clone();
        execute(Box::new(move || {
            let _ = tx.send(tiny(i));
        }));
    }
    for _ in 0..BURST {
        black_box(
            rx.recv_timeout(RECV_TIMEOUT)
                .expect("a result arrives within the timeout"),
        );
    }
}

impl Pool for threadpool::ThreadPool {
    fn burst(&self) {
        burst_with_channel(|job| self.execute(job));
    }

    fn shutdown(self: Box<Self>) {
        self.join();
    }
}

type ExecutorsPool = executors::crossbeam_workstealing_pool::ThreadPool<
    executors::parker::StaticParker<executors::parker::SmallThreadData>,
>;

impl Pool for ExecutorsPool {
    fn burst(&self) {
        burst_with_channel(|job| self.execute(job));
    }

    fn shutdown(self: Box<Self>) {
        Executor::shutdown(*self).expect("executors pool shuts down");
    }
}

/// A bakery with `PENDING_TIMERS` delayed orders an hour away: the timer
/// thread sleeps until the earliest, so they should cost no idle CPU.
struct WithTimers {
    bakery: Bakery,
    _timers: Vec<bakehouse::Order<()>>,
}

const PENDING_TIMERS: usize = 10_000;

impl WithTimers {
    fn new(bakery: Bakery) -> WithTimers {
        let hour = Duration::from_secs(3600);
        let timers = (0..PENDING_TIMERS)
            .map(|i| bakery.submit_after(hour + Duration::from_millis(i as u64), || ()))
            .collect();
        WithTimers {
            bakery,
            _timers: timers,
        }
    }
}

impl Pool for WithTimers {
    fn burst(&self) {
        self.bakery.burst();
    }

    fn shutdown(self: Box<Self>) {
        // Cancels the pending timers without waiting for them.
        self.bakery.shutdown();
    }
}

fn fib(bakery: &Bakery, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = bakery.join(|| fib(bakery, n - 1), || fib(bakery, n - 2));
    a + b
}

fn fib_chili(s: &mut chili::Scope<'_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = s.join(|s| fib_chili(s, n - 1), |s| fib_chili(s, n - 2));
    a + b
}

const FIB_N: u64 = 20;
const FIB: u64 = 6_765;

/// A bakery whose burst ends with a fork-join.
struct BakeryForkJoin(Bakery);

impl Pool for BakeryForkJoin {
    fn burst(&self) {
        self.0.burst();
        assert_eq!(self.0.install(|| fib(&self.0, FIB_N)), FIB);
    }

    fn shutdown(self: Box<Self>) {
        Bakery::shutdown(self.0);
    }
}

/// A chili pool and the scope the program keeps.
struct Chili(std::cell::RefCell<chili::Scope<'static>>);

impl Pool for Chili {
    fn burst(&self) {
        assert_eq!(fib_chili(&mut self.0.borrow_mut(), FIB_N), FIB);
    }

    fn shutdown(self: Box<Self>) {}
}

struct Row {
    pool: &'static str,
    spin_down_ms: f64,
    cpu_ms_per_s: Vec<f64>,
    switches_per_s: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn measure(pool: &'static str, make: impl FnOnce() -> Box<dyn Pool>) -> Row {
    let pool_under_test = make();
    pool_under_test.burst();
    let cpu_after_burst = process_cpu_time();
    thread::sleep(SPIN_DOWN);
    let spin_down = process_cpu_time() - cpu_after_burst;
    thread::sleep(SETTLE);

    let mut cpu_ms_per_s = Vec::new();
    let mut switches_per_s = Vec::new();
    for _ in 0..WINDOWS {
        let (wall, cpu, switches) = (Instant::now(), process_cpu_time(), context_switches());
        thread::sleep(WINDOW);
        let (cpu, switches) = (process_cpu_time() - cpu, context_switches() - switches);
        let seconds = wall.elapsed().as_secs_f64();
        cpu_ms_per_s.push(cpu.as_secs_f64() * 1e3 / seconds);
        switches_per_s.push(switches as f64 / seconds);
    }
    pool_under_test.shutdown();
    // Let the threads of a pool whose shutdown does not wait for them go.
    thread::sleep(Duration::from_millis(200));
    let row = Row {
        pool,
        spin_down_ms: spin_down.as_secs_f64() * 1e3,
        cpu_ms_per_s,
        switches_per_s,
    };
    eprintln!(
        "{pool}: spin-down {:.2} ms, idle CPU {:?} ms/s, context switches {:?} /s",
        row.spin_down_ms, row.cpu_ms_per_s, row.switches_per_s
    );
    row
}

fn main() {
    let started = Instant::now();
    common::abort_after("idle", WATCHDOG);
    let threads = common::threads_from_env("BAKERY_IDLE_THREADS", || 8);
    let cores = common::cpus();
    eprintln!("idle pools of {threads} threads on {cores} CPUs");

    let rows = [
        measure("no pool", || Box::new(NoPool)),
        measure("bakery", || {
            Box::new(
                Bakery::builder()
                    .bakers(threads)
                    .build()
                    .expect("bakery builds"),
            )
        }),
        measure("bakery + 10,000 timers (1 h)", || {
            Box::new(WithTimers::new(
                Bakery::builder()
                    .bakers(threads)
                    .build()
                    .expect("bakery builds"),
            ))
        }),
        measure("rayon", || {
            Box::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("rayon pool builds"),
            )
        }),
        measure("threadpool", || {
            Box::new(threadpool::ThreadPool::new(threads))
        }),
        measure("executors", || {
            Box::new(executors::crossbeam_workstealing_pool::small_pool(threads))
        }),
        measure("bakery, after fork-join", || {
            Box::new(BakeryForkJoin(
                Bakery::builder()
                    .bakers(threads)
                    .build()
                    .expect("bakery builds"),
            ))
        }),
        measure("chili, a scope kept", || {
            let pool: &'static chili::ThreadPool =
                Box::leak(Box::new(chili::ThreadPool::with_config(chili::Config {
                    thread_count: std::num::NonZero::new(threads),
                    ..chili::Config::default()
                })));
            Box::new(Chili(std::cell::RefCell::new(pool.scope())))
        }),
    ];

    println!();
    println!("Idle pools, {threads} threads each, on {cores} CPUs (median of {WINDOWS} windows of {WINDOW:?}):");
    println!();
    println!(
        "| pool | CPU in the {} ms after a burst (ms) | idle CPU (ms per s) | idle context switches (per s) |",
        SPIN_DOWN.as_millis()
    );
    println!("|---|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {:.2} | {:.3} | {:.1} |",
            row.pool,
            row.spin_down_ms,
            median(&row.cpu_ms_per_s),
            median(&row.switches_per_s)
        );
    }
    println!();
    println!("finished in {:.1} s", started.elapsed().as_secs_f64());
}
