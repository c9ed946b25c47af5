//! Side-by-side timings of bakery and four other pools on the same work:
//! rayon, threadpool, executors' crossbeam work-stealing pool, and, for
//! fork-join, chili.
//!
//! Every benchmark id is `<group>/<pool>` (or `<group>/<pool>_<variant>`), so
//! that `benches/ratios.py` can pair bakery with the others. Every pool gets
//! the same number of threads: `BAKERY_BENCH_THREADS` if set, else the
//! number of CPUs. Pools are built once per group, outside the timed loops,
//! and shut down at the end of their group so that no idle pool shares the
//! machine with the next group's pools.
//!
//! The groups:
//!
//! * `tiny_orders`: 100,000 tiny orders submitted from outside the pool,
//!   every result collected. bakery: `submit` each, then `join` each.
//!   `rayon`: `pool.scope` spawning one job per order, each writing its
//!   result into a preallocated `AtomicU64` slot (the scope body runs on a
//!   rayon worker, so those spawns go onto a worker's deque);
//!   `rayon_spawn`: `pool.spawn` from outside plus a channel, the same
//!   shape as threadpool and executors, which use `execute` plus a channel.
//! * `tiny_orders_shared`: the same 100,000 orders from 4 threads at once,
//!   25,000 each, every thread collecting its own results: the shared entry
//!   queue under contention. Same variants as `tiny_orders` (`rayon`: each
//!   thread runs its own `pool.scope`), and a channel per thread where one
//!   is needed. Starting the 4 threads is timed too, the same for every
//!   pool.
//! * `tiny_orders_cold`: the `tiny_orders` burst meeting pools whose
//!   threads are asleep, as a real burst does: each timed burst follows an
//!   untimed 5 ms pause, and is timed from its first submit to its last
//!   result (`iter_custom`). bakery, `rayon` (scope + spawn), threadpool and
//!   executors (`execute` + a channel).
//! * `tiny_orders_submitters`: the same cold burst split over 1, 2, 4 and 8
//!   submitting threads (`<pool>_<n>`), to show how the entry queue copes
//!   with contention as submitters grow.
//! * `fork_join_fib`: fib(25) with a `join` at every call with n >= 2 and
//!   no sequential cutoff (121,392 joins), so it measures the cost of a join.
//!   `sequential` is the same recursion with plain calls. Both pools enter
//!   once with `install` (`Bakery::install`, `ThreadPool::install`), so every
//!   join runs on a worker. `chili`: the same recursion with `Scope::join`
//!   (heartbeat every 100 µs, its default), from a scope made once per
//!   benchmark on the bench thread, which is one of chili's threads.
//! * `fork_join_tree`: the sum of a balanced binary tree of 2^21 - 1 boxed
//!   nodes with a `join` at every node, leaves included (2,097,151 joins):
//!   chili's own benchmark. Same variants and entry as `fork_join_fib`.
//!   A join nobody took runs `a` then `b` on bakery and rayon, but `b` then
//!   `a` on chili, and the tree's nodes are allocated children first, so
//!   visiting the right subtree first walks memory downwards, which the
//!   hardware prefetches: `sequential_b_first` is the plain recursion in
//!   chili's order, and `chili_left_first` is chili with its halves
//!   swapped, visiting nodes in the others' order.
//! * `fork_join_sort`: a quicksort of 500,000 random `u32` that joins the
//!   two halves after each partition and sorts slices of at most 2,048
//!   elements with `sort_unstable`. Same entry as `fork_join_fib`. The copy
//!   of the unsorted input is not timed.
//! * `order_tree`: a binary tree of depth 12 (8,191 orders). bakery: each
//!   node `submit`s its two children from inside a baker and `join`s them;
//!   the root is submitted from outside. The nodes use a `&'static Bakery`
//!   (a leaked handle) so that no handle is cloned per order.
//!   `bakery_scope`: the same tree of scoped orders (`Scope::submit` and
//!   `ScopedOrder::join`). `bakery_join` / `rayon_join`: the same tree with
//!   `join`, for reference. `rayon_scope`: a tree of `Scope::spawn`s that the
//!   scope waits for at the end (rayon's spawns return no handle, so no node
//!   waits for its children: a lower bound for the same tree). threadpool and
//!   executors are left out: a job that blocks waiting for the jobs it
//!   submitted can deadlock them.
//! * `uneven`: 4 long orders of 20 ms and 2,000 short ones of 50 µs of
//!   CPU work (a calibrated busy loop, not a sleep), the long ones at
//!   positions 0, 500, 1000 and 1500 of the submission order, all submitted
//!   at once from outside; the time is the makespan. After each pool the
//!   bench prints its efficiency, (total work / threads) / median makespan
//!   (over every run, warm-up included), with the total work measured by
//!   running every order on one thread.
//!   bakery: submit all, join all; rayon: `pool.scope` + `spawn`;
//!   threadpool and executors: `execute` + a channel.
//! * `round_trip_idle`: one order on a pool whose threads are all asleep:
//!   each timed submit is preceded by a 5 ms untimed pause, and only the
//!   submit → result is timed (`iter_custom`). Criterion sizes its samples
//!   from the wall time of the whole routine, pauses included, so this group
//!   stays short (about 400 round trips per pool).
//! * `round_trip_busy`: the same order back to back, with no pause.
//!   bakery: `submit` + `join`; rayon: `pool.spawn` + a channel; threadpool
//!   and executors: `execute` + a channel.
//!
//! Nothing can hang for ever: channel receives time out, and a watchdog
//! thread aborts the process (saying which benchmark) if one benchmark runs
//! for more than two minutes.

mod common;

use bakehouse::{Bakery, Scope};
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode};
use executors::Executor;
use std::cell::OnceCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

type ExecutorsPool = executors::crossbeam_workstealing_pool::ThreadPool<
    executors::parker::StaticParker<executors::parker::SmallThreadData>,
>;

/// How long a channel receive may wait before the bench gives up.
const RECV_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Setup shared by the groups
// ---------------------------------------------------------------------------

fn threads() -> usize {
    common::threads_from_env("BAKERY_BENCH_THREADS", common::cpus)
}

/// The four pools, each with `threads` threads.
struct Pools {
    bakery: Bakery,
    rayon: rayon::ThreadPool,
    threadpool: threadpool::ThreadPool,
    executors: ExecutorsPool,
}

impl Pools {
    fn new(threads: usize) -> Pools {
        Pools {
            bakery: Bakery::builder()
                .bakers(threads)
                .build()
                .expect("bakery builds"),
            rayon: rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("rayon pool builds"),
            threadpool: threadpool::ThreadPool::new(threads),
            executors: executors::crossbeam_workstealing_pool::small_pool(threads),
        }
    }

    fn shutdown(self) {
        self.bakery.shutdown();
        drop(self.rayon);
        self.threadpool.join();
        self.executors
            .shutdown()
            .expect("executors pool shuts down");
    }
}

/// Aborts the process if one benchmark runs for longer than `LIMIT`: a bench
/// that hangs must fail loudly rather than run for ever.
mod watchdog {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(120);

    static CURRENT: Mutex<Option<(String, Instant)>> = Mutex::new(None);

    pub fn start() {
        thread::Builder::new()
            .name("watchdog".into())
            .spawn(|| loop {
                thread::sleep(Duration::from_secs(1));
                let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((name, since)) = &*current {
                    if since.elapsed() > LIMIT {
                        eprintln!("benchmark {name} still running after {LIMIT:?}: it hangs");
                        std::process::abort();
                    }
                }
            })
            .expect("watchdog thread starts");
    }

    /// Runs `f` under the watchdog, as benchmark `name`.
    pub fn watch<R>(name: String, f: impl FnOnce() -> R) -> R {
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((name, Instant::now()));
        let result = f();
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = None;
        result
    }
}

/// `group.bench_function(id, f)` under the watchdog.
fn bench(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group_name: &str,
    id: &str,
    f: impl FnMut(&mut criterion::Bencher<'_>),
) {
    watchdog::watch(format!("{group_name}/{id}"), || {
        group.bench_function(id, f);
    });
}

fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(RECV_TIMEOUT)
        .expect("a result arrives within the timeout")
}

// ---------------------------------------------------------------------------
// tiny_orders
// ---------------------------------------------------------------------------

const TINY_ORDERS: u64 = 100_000;

#[inline]
fn tiny(i: u64) -> u64 {
    black_box(i).wrapping_mul(3).wrapping_add(1)
}

/// The group for a run of `TINY_ORDERS` tiny orders: one iteration is long
/// enough for flat sampling.
fn tiny_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group
}

fn tiny_orders(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "tiny_orders";
    let pools = Pools::new(threads);
    let expected: u64 = (0..TINY_ORDERS).map(tiny).sum();
    let mut group = tiny_group(c, GROUP);

    let bakery = &pools.bakery;
    let mut orders = Vec::with_capacity(TINY_ORDERS as usize);
    bench(&mut group, GROUP, "bakery", |b| {
        b.iter(|| {
            orders.extend((0..TINY_ORDERS).map(|i| bakery.submit(move || tiny(i))));
            let sum: u64 = orders
                .drain(..)
                .map(|order| order.join().expect("a tiny order succeeds"))
                .sum();
            assert_eq!(sum, expected);
        })
    });

    let rayon = &pools.rayon;
    let slots: Vec<AtomicU64> = (0..TINY_ORDERS).map(|_| AtomicU64::new(0)).collect();
    bench(&mut group, GROUP, "rayon", |b| {
        b.iter(|| {
            rayon.scope(|s| {
                for (i, slot) in slots.iter().enumerate() {
                    s.spawn(move |_| slot.store(tiny(i as u64), Ordering::Relaxed));
                }
            });
            let sum: u64 = slots.iter().map(|slot| slot.load(Ordering::Relaxed)).sum();
            assert_eq!(sum, expected);
        })
    });

    let (tx, rx) = mpsc::channel::<u64>();
    bench(&mut group, GROUP, "rayon_spawn", |b| {
        b.iter(|| {
            for i in 0..TINY_ORDERS {
                let tx = tx.clone();
                rayon.spawn(move || {
                    let _ = tx.send(tiny(i));
                });
            }
            let sum: u64 = (0..TINY_ORDERS).map(|_| recv(&rx)).sum();
            assert_eq!(sum, expected);
        })
    });

    let threadpool = &pools.threadpool;
    bench(&mut group, GROUP, "threadpool", |b| {
        b.iter(|| {
            for i in 0..TINY_ORDERS {
                let tx = tx.clone();
                threadpool.execute(move || {
                    let _ = tx.send(tiny(i));
                });
            }
            let sum: u64 = (0..TINY_ORDERS).map(|_| recv(&rx)).sum();
            assert_eq!(sum, expected);
        })
    });

    let executors = &pools.executors;
    bench(&mut group, GROUP, "executors", |b| {
        b.iter(|| {
            for i in 0..TINY_ORDERS {
                let tx = tx.clone();
                executors.execute(move || {
                    let _ = tx.send(tiny(i));
                });
            }
            let sum: u64 = (0..TINY_ORDERS).map(|_| recv(&rx)).sum();
            assert_eq!(sum, expected);
        })
    });

    group.finish();
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// tiny_orders_shared
// ---------------------------------------------------------------------------

const SUBMITTERS: u64 = 4;

/// Submits orders `first..last` with `$submit`, each a closure `$job` that
/// sends its result through a channel, and sums the results. A macro, so
/// that every pool gets its closures unboxed, as in `tiny_orders`.
macro_rules! via_channel {
    ($first:expr, $last:expr, |$job:ident| $submit:expr) => {{
        let (tx, rx) = mpsc::channel::<u64>();
        for i in $first..$last {
            let tx = tx.clone();
            let $job = move || {
                let _ = tx.send(tiny(i));
            };
            $submit;
        }
        ($first..$last).map(|_| recv(&rx)).sum::<u64>()
    }};
}

/// Runs `submitter(first, last)` on `SUBMITTERS` threads at once, each with
/// its own share of the orders, and returns the sum of what they return.
fn shared(submitter: impl Fn(u64, u64) -> u64 + Sync) -> u64 {
    let share = TINY_ORDERS / SUBMITTERS;
    thread::scope(|s| {
        let submitters: Vec<_> = (0..SUBMITTERS)
            .map(|k| {
                let submitter = &submitter;
                s.spawn(move || submitter(k * share, (k + 1) * share))
            })
            .collect();
        submitters
            .into_iter()
            .map(|submitter| submitter.join().expect("a submitter finishes"))
            .sum()
    })
}

fn tiny_orders_shared(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "tiny_orders_shared";
    let pools = Pools::new(threads);
    let expected: u64 = (0..TINY_ORDERS).map(tiny).sum();
    let mut group = tiny_group(c, GROUP);

    let bakery = &pools.bakery;
    bench(&mut group, GROUP, "bakery", |b| {
        b.iter(|| {
            let sum = shared(|first, last| {
                let orders: Vec<_> = (first..last)
                    .map(|i| bakery.submit(move || tiny(i)))
                    .collect();
                orders
                    .into_iter()
                    .map(|order| order.join().expect("a tiny order succeeds"))
                    .sum()
            });
            assert_eq!(sum, expected);
        })
    });

    let rayon = &pools.rayon;
    let slots: Vec<AtomicU64> = (0..TINY_ORDERS).map(|_| AtomicU64::new(0)).collect();
    bench(&mut group, GROUP, "rayon", |b| {
        b.iter(|| {
            let sum = shared(|first, last| {
                let slots = &slots[first as usize..last as usize];
                rayon.scope(|s| {
                    for (i, slot) in (first..).zip(slots) {
                        s.spawn(move |_| slot.store(tiny(i), Ordering::Relaxed));
                    }
                });
                slots.iter().map(|slot| slot.load(Ordering::Relaxed)).sum()
            });
            assert_eq!(sum, expected);
        })
    });

    bench(&mut group, GROUP, "rayon_spawn", |b| {
        b.iter(|| {
            let sum = shared(|first, last| via_channel!(first, last, |job| rayon.spawn(job)));
            assert_eq!(sum, expected);
        })
    });

    let threadpool = &pools.threadpool;
    bench(&mut group, GROUP, "threadpool", |b| {
        b.iter(|| {
            let sum =
                shared(|first, last| via_channel!(first, last, |job| threadpool.execute(job)));
            assert_eq!(sum, expected);
        })
    });

    let executors = &pools.executors;
    bench(&mut group, GROUP, "executors", |b| {
        b.iter(|| {
            let sum = shared(|first, last| via_channel!(first, last, |job| executors.execute(job)));
            assert_eq!(sum, expected);
        })
    });

    group.finish();
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// tiny_orders_cold and tiny_orders_submitters
// ---------------------------------------------------------------------------

/// How long the pools rest before each timed burst: long enough for every
/// pool's threads to stop searching and fall asleep.
const COLD_PAUSE: Duration = Duration::from_millis(5);

/// Times `burst` `iters` times, each after a `COLD_PAUSE` that is not timed:
/// a burst that meets a pool asleep, as a real burst does.
fn cold(iters: u64, mut burst: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        thread::sleep(COLD_PAUSE);
        let start = Instant::now();
        burst();
        total += start.elapsed();
    }
    total
}

/// The group for cold bursts: few samples, since each burst pauses first.
fn cold_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group
}

/// Runs `submitter(first, last)` on `submitters` threads at once, each with
/// its own share of the orders, and returns the sum of what they return.
/// One submitter runs on the calling thread.
fn shared_by(submitters: u64, submitter: impl Fn(u64, u64) -> u64 + Sync) -> u64 {
    if submitters == 1 {
        return submitter(0, TINY_ORDERS);
    }
    let share = TINY_ORDERS / submitters;
    thread::scope(|s| {
        let threads: Vec<_> = (0..submitters)
            .map(|k| {
                let submitter = &submitter;
                s.spawn(move || submitter(k * share, (k + 1) * share))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a submitter finishes"))
            .sum()
    })
}

/// The tiny orders `first..last` on each pool, every result collected.
fn bakery_burst(bakery: &Bakery, first: u64, last: u64) -> u64 {
    let orders: Vec<_> = (first..last)
        .map(|i| bakery.submit(move || tiny(i)))
        .collect();
    orders
        .into_iter()
        .map(|order| order.join().expect("a tiny order succeeds"))
        .sum()
}

fn rayon_burst(rayon: &rayon::ThreadPool, slots: &[AtomicU64], first: u64, last: u64) -> u64 {
    let slots = &slots[first as usize..last as usize];
    rayon.scope(|s| {
        for (i, slot) in (first..).zip(slots) {
            s.spawn(move |_| slot.store(tiny(i), Ordering::Relaxed));
        }
    });
    slots.iter().map(|slot| slot.load(Ordering::Relaxed)).sum()
}

/// `submitters` threads each submitting their share of `TINY_ORDERS` tiny
/// orders to pools that start asleep, every result collected, timed from
/// the first submit; ids `<pool>_<submitters>`.
fn cold_bursts(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pools: &Pools,
    submitters: u64,
    suffix: &str,
) {
    let expected: u64 = (0..TINY_ORDERS).map(tiny).sum();
    let bakery = &pools.bakery;
    bench(group, name, &format!("bakery{suffix}"), |b| {
        b.iter_custom(|iters| {
            cold(iters, || {
                let sum = shared_by(submitters, |first, last| bakery_burst(bakery, first, last));
                assert_eq!(sum, expected);
            })
        })
    });
    let rayon = &pools.rayon;
    let slots: Vec<AtomicU64> = (0..TINY_ORDERS).map(|_| AtomicU64::new(0)).collect();
    bench(group, name, &format!("rayon{suffix}"), |b| {
        b.iter_custom(|iters| {
            cold(iters, || {
                let sum = shared_by(submitters, |first, last| {
                    rayon_burst(rayon, &slots, first, last)
                });
                assert_eq!(sum, expected);
            })
        })
    });
    let threadpool = &pools.threadpool;
    bench(group, name, &format!("threadpool{suffix}"), |b| {
        b.iter_custom(|iters| {
            cold(iters, || {
                let sum = shared_by(submitters, |first, last| {
                    via_channel!(first, last, |job| threadpool.execute(job))
                });
                assert_eq!(sum, expected);
            })
        })
    });
    let executors = &pools.executors;
    bench(group, name, &format!("executors{suffix}"), |b| {
        b.iter_custom(|iters| {
            cold(iters, || {
                let sum = shared_by(submitters, |first, last| {
                    via_channel!(first, last, |job| executors.execute(job))
                });
                assert_eq!(sum, expected);
            })
        })
    });
}

fn tiny_orders_cold(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "tiny_orders_cold";
    let pools = Pools::new(threads);
    let mut group = cold_group(c, GROUP);
    cold_bursts(&mut group, GROUP, &pools, 1, "");
    group.finish();
    pools.shutdown();
}

fn tiny_orders_submitters(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "tiny_orders_submitters";
    let pools = Pools::new(threads);
    let mut group = cold_group(c, GROUP);
    for submitters in [1, 2, 4, 8] {
        cold_bursts(
            &mut group,
            GROUP,
            &pools,
            submitters,
            &format!("_{submitters}"),
        );
    }
    group.finish();
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// fork_join_fib and fork_join_sort
// ---------------------------------------------------------------------------

/// A way to run two closures, possibly in parallel: the same recursive code
/// runs on every pool.
trait Fork: Sync {
    fn fork<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send;
}

/// Plain calls, one after the other.
struct Sequential;

impl Fork for Sequential {
    #[inline]
    fn fork<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        (a(), b())
    }
}

/// Plain calls, `b` first, as chili runs a join nobody stole.
struct SequentialBFirst;

impl Fork for SequentialBFirst {
    #[inline]
    fn fork<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        let rb = b();
        (a(), rb)
    }
}

impl Fork for Bakery {
    #[inline]
    fn fork<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        self.join(a, b)
    }
}

/// `rayon::join`, in whatever rayon pool the caller runs in.
struct Rayon;

impl Fork for Rayon {
    #[inline]
    fn fork<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        rayon::join(a, b)
    }
}

const FIB_N: u64 = 25;

/// fib(n) with a fork at every call with n >= 2.
fn fib(fork: &impl Fork, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = fork.fork(|| fib(fork, n - 1), || fib(fork, n - 2));
    a + b
}

/// fib(n) with chili's `Scope::join` at every call with n >= 2.
fn fib_chili(s: &mut chili::Scope<'_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = s.join(|s| fib_chili(s, n - 1), |s| fib_chili(s, n - 2));
    a + b
}

/// A chili pool of `threads` threads, the caller's included.
fn chili_pool(threads: usize) -> chili::ThreadPool {
    chili::ThreadPool::with_config(chili::Config {
        thread_count: Some(std::num::NonZero::new(threads).expect("at least one thread")),
        heartbeat_interval: Duration::from_micros(100),
    })
}

fn fork_join_fib(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "fork_join_fib";
    let pools = Pools::new(threads);
    let chili = chili_pool(threads);
    let expected = fib(&Sequential, FIB_N);
    let mut group = c.benchmark_group(GROUP);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    bench(&mut group, GROUP, "bakery", |b| {
        b.iter(|| {
            let result = pools
                .bakery
                .install(|| fib(&pools.bakery, black_box(FIB_N)));
            assert_eq!(result, expected);
        })
    });
    bench(&mut group, GROUP, "rayon", |b| {
        b.iter(|| {
            let result = pools.rayon.install(|| fib(&Rayon, black_box(FIB_N)));
            assert_eq!(result, expected);
        })
    });
    bench(&mut group, GROUP, "chili", |b| {
        let mut scope = chili.scope();
        b.iter(|| assert_eq!(fib_chili(&mut scope, black_box(FIB_N)), expected))
    });
    bench(&mut group, GROUP, "sequential", |b| {
        b.iter(|| assert_eq!(fib(&Sequential, black_box(FIB_N)), expected))
    });

    group.finish();
    drop(chili);
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// fork_join_tree
// ---------------------------------------------------------------------------

/// Levels of the summed tree: 2^21 - 1 nodes.
const SUM_TREE_LAYERS: u32 = 21;

/// A node of the summed tree, as in chili's benchmark.
struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

impl Node {
    /// A balanced tree of `layers` levels, every value 1.
    fn tree(layers: u32) -> Node {
        Node {
            value: 1,
            left: (layers > 1).then(|| Box::new(Node::tree(layers - 1))),
            right: (layers > 1).then(|| Box::new(Node::tree(layers - 1))),
        }
    }
}

/// The sum of the tree's values, with a fork at every node.
fn tree_sum(fork: &impl Fork, node: &Node) -> u64 {
    let (left, right) = fork.fork(
        || node.left.as_deref().map_or(0, |n| tree_sum(fork, n)),
        || node.right.as_deref().map_or(0, |n| tree_sum(fork, n)),
    );
    node.value + left + right
}

/// The same with chili's `Scope::join`.
fn tree_sum_chili(s: &mut chili::Scope<'_>, node: &Node) -> u64 {
    let (left, right) = s.join(
        |s| node.left.as_deref().map_or(0, |n| tree_sum_chili(s, n)),
        |s| node.right.as_deref().map_or(0, |n| tree_sum_chili(s, n)),
    );
    node.value + left + right
}

/// The same with the halves swapped, so that chili, which runs its second
/// closure first when nobody took the first, visits the left subtree first
/// as the other pools do.
fn tree_sum_chili_left_first(s: &mut chili::Scope<'_>, node: &Node) -> u64 {
    let (right, left) = s.join(
        |s| {
            node.right
                .as_deref()
                .map_or(0, |n| tree_sum_chili_left_first(s, n))
        },
        |s| {
            node.left
                .as_deref()
                .map_or(0, |n| tree_sum_chili_left_first(s, n))
        },
    );
    node.value + left + right
}

fn fork_join_tree(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "fork_join_tree";
    let pools = Pools::new(threads);
    let chili = chili_pool(threads);
    let tree = Node::tree(SUM_TREE_LAYERS);
    let expected = (1_u64 << SUM_TREE_LAYERS) - 1;
    let mut group = c.benchmark_group(GROUP);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    bench(&mut group, GROUP, "bakery", |b| {
        b.iter(|| {
            let sum = pools.bakery.install(|| tree_sum(&pools.bakery, &tree));
            assert_eq!(sum, expected);
        })
    });
    bench(&mut group, GROUP, "rayon", |b| {
        b.iter(|| {
            let sum = pools.rayon.install(|| tree_sum(&Rayon, &tree));
            assert_eq!(sum, expected);
        })
    });
    bench(&mut group, GROUP, "chili", |b| {
        let mut scope = chili.scope();
        b.iter(|| assert_eq!(tree_sum_chili(&mut scope, &tree), expected))
    });
    bench(&mut group, GROUP, "chili_left_first", |b| {
        let mut scope = chili.scope();
        b.iter(|| assert_eq!(tree_sum_chili_left_first(&mut scope, &tree), expected))
    });
    bench(&mut group, GROUP, "sequential", |b| {
        b.iter(|| assert_eq!(tree_sum(&Sequential, &tree), expected))
    });
    bench(&mut group, GROUP, "sequential_b_first", |b| {
        b.iter(|| assert_eq!(tree_sum(&SequentialBFirst, &tree), expected))
    });

    group.finish();
    drop(chili);
    pools.shutdown();
}

const SORT_LEN: usize = 500_000;
/// Slices this short are sorted with `sort_unstable`, without forking.
const SORT_CUTOFF: usize = 2_048;

/// Lomuto partition around the median of the first, middle and last
/// elements. Returns the pivot's final index.
fn partition(v: &mut [u32]) -> usize {
    let last = v.len() - 1;
    let mid = v.len() / 2;
    if v[mid] < v[0] {
        v.swap(mid, 0);
    }
    if v[last] < v[0] {
        v.swap(last, 0);
    }
    if v[mid] < v[last] {
        v.swap(mid, last);
    }
    let pivot = v[last];
    let mut store = 0;
    for i in 0..last {
        if v[i] < pivot {
            v.swap(i, store);
            store += 1;
        }
    }
    v.swap(store, last);
    store
}

fn quicksort(fork: &impl Fork, v: &mut [u32]) {
    if v.len() <= SORT_CUTOFF {
        v.sort_unstable();
        return;
    }
    let pivot = partition(v);
    let (left, right) = v.split_at_mut(pivot);
    fork.fork(
        || quicksort(fork, left),
        || quicksort(fork, &mut right[1..]),
    );
}

/// Deterministic pseudo-random input (xorshift64).
fn random_u32s(len: usize) -> Vec<u32> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u32
        })
        .collect()
}

fn fork_join_sort(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "fork_join_sort";
    let pools = Pools::new(threads);
    let input = random_u32s(SORT_LEN);
    let mut sorted = input.clone();
    sorted.sort_unstable();
    let check = |v: &[u32]| assert!(v == sorted.as_slice(), "sorted correctly");
    let mut group = c.benchmark_group(GROUP);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    bench(&mut group, GROUP, "bakery", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |v| pools.bakery.install(|| quicksort(&pools.bakery, v)),
            BatchSize::LargeInput,
        )
    });
    let mut v = input.clone();
    quicksort(&pools.bakery, &mut v);
    check(&v);

    bench(&mut group, GROUP, "rayon", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |v| pools.rayon.install(|| quicksort(&Rayon, v)),
            BatchSize::LargeInput,
        )
    });
    let mut v = input.clone();
    pools.rayon.install(|| quicksort(&Rayon, &mut v));
    check(&v);

    bench(&mut group, GROUP, "sequential", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |v| quicksort(&Sequential, v),
            BatchSize::LargeInput,
        )
    });
    let mut v = input.clone();
    quicksort(&Sequential, &mut v);
    check(&v);

    group.finish();
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// order_tree
// ---------------------------------------------------------------------------

const TREE_DEPTH: u32 = 12;
const TREE_NODES: u64 = (1 << (TREE_DEPTH + 1)) - 1;

/// A node submits its two children and joins them; returns the node count.
fn tree_submit(bakery: &'static Bakery, depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let left = bakery.submit(move || tree_submit(bakery, depth - 1));
    let right = bakery.submit(move || tree_submit(bakery, depth - 1));
    1 + left.join().expect("left subtree") + right.join().expect("right subtree")
}

/// The same tree of scoped orders.
fn tree_scope<'scope>(s: &'scope Scope<'scope, '_>, depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let left = s.submit(move || tree_scope(s, depth - 1));
    let right = s.submit(move || tree_scope(s, depth - 1));
    1 + left.join().expect("left subtree") + right.join().expect("right subtree")
}

/// The same tree with fork-join.
fn tree_join(fork: &impl Fork, depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let (left, right) = fork.fork(|| tree_join(fork, depth - 1), || tree_join(fork, depth - 1));
    1 + left + right
}

/// A tree of rayon scope spawns; nobody waits for a node's children except
/// the scope itself at the end.
fn tree_rayon_scope(s: &rayon::Scope<'_>, depth: u32) {
    if depth == 0 {
        black_box(1);
        return;
    }
    s.spawn(move |s| tree_rayon_scope(s, depth - 1));
    s.spawn(move |s| tree_rayon_scope(s, depth - 1));
}

fn order_tree(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "order_tree";
    let pools = Pools::new(threads);
    // A handle that lives as long as the program, so that `'static` orders
    // can submit more orders without cloning a handle each time. Shutting
    // down `pools.bakery` below stops its bakers all the same.
    let bakery: &'static Bakery = Box::leak(Box::new(pools.bakery.clone()));
    let mut group = c.benchmark_group(GROUP);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    bench(&mut group, GROUP, "bakery", |b| {
        b.iter(|| {
            let root = bakery.submit(move || tree_submit(bakery, TREE_DEPTH));
            assert_eq!(root.join().expect("the root"), TREE_NODES);
        })
    });
    bench(&mut group, GROUP, "bakery_scope", |b| {
        b.iter(|| {
            let nodes = bakery.scope(|s| {
                s.submit(move || tree_scope(s, TREE_DEPTH))
                    .join()
                    .expect("the root")
            });
            assert_eq!(nodes, TREE_NODES);
        })
    });
    bench(&mut group, GROUP, "bakery_join", |b| {
        b.iter(|| assert_eq!(tree_join(bakery, TREE_DEPTH), TREE_NODES))
    });
    bench(&mut group, GROUP, "rayon_scope", |b| {
        b.iter(|| pools.rayon.scope(|s| tree_rayon_scope(s, TREE_DEPTH)))
    });
    bench(&mut group, GROUP, "rayon_join", |b| {
        b.iter(|| {
            let nodes = pools.rayon.install(|| tree_join(&Rayon, TREE_DEPTH));
            assert_eq!(nodes, TREE_NODES);
        })
    });

    group.finish();
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// uneven
// ---------------------------------------------------------------------------

const LONG_ORDERS: usize = 4;
const LONG_WORK: Duration = Duration::from_millis(20);
const SHORT_ORDERS: usize = 2_000;
const SHORT_WORK: Duration = Duration::from_micros(50);

/// `units` rounds of a dependent arithmetic chain: CPU work that the
/// optimizer cannot remove.
fn spin(units: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
    for _ in 0..units {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
    black_box(x)
}

/// How many `spin` units take one microsecond on this machine (the best of
/// a few runs, so that a preempted run does not count).
fn spin_units_per_micro() -> f64 {
    let units = 2_000_000;
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            spin(units);
            start.elapsed()
        })
        .min()
        .expect("five runs");
    units as f64 / (best.as_nanos() as f64 / 1_000.0)
}

/// The work of each order of the `uneven` batch, in spin units: the long
/// ones spread through the submission order.
fn uneven_batch() -> Vec<u64> {
    let per_micro = spin_units_per_micro();
    let units = |work: Duration| (work.as_secs_f64() * 1e6 * per_micro) as u64;
    let total = LONG_ORDERS + SHORT_ORDERS;
    let mut batch = vec![units(SHORT_WORK); total];
    for k in 0..LONG_ORDERS {
        batch[k * total / LONG_ORDERS] = units(LONG_WORK);
    }
    batch
}

/// Criterion prints times; the efficiency is printed separately.
struct Makespans(Vec<Duration>);

impl Makespans {
    fn record(&mut self, run: impl FnOnce()) -> Duration {
        let start = Instant::now();
        run();
        let makespan = start.elapsed();
        self.0.push(makespan);
        makespan
    }

    /// Prints the efficiency of the runs recorded since the last report, if
    /// any (none when the benchmark was filtered out).
    fn report(&mut self, pool: &str, total_work: impl FnOnce() -> Duration, threads: usize) {
        if self.0.is_empty() {
            return;
        }
        let total_work = total_work();
        self.0.sort();
        let median = self.0[self.0.len() / 2];
        let ideal = total_work.as_secs_f64() / threads as f64;
        println!(
            "uneven/{pool}: median makespan {:.1} ms over {} runs, efficiency {:.2} \
             (ideal {:.1} ms = {:.1} ms of work / {threads} threads)",
            median.as_secs_f64() * 1e3,
            self.0.len(),
            ideal / median.as_secs_f64(),
            ideal * 1e3,
            total_work.as_secs_f64() * 1e3,
        );
        self.0.clear();
    }
}

/// The `uneven` batch and its total work, measured on first use (so that a
/// filtered-out group costs nothing).
struct UnevenWork {
    batch: Vec<u64>,
    total_work: Duration,
}

impl UnevenWork {
    fn measure() -> UnevenWork {
        let batch = uneven_batch();
        // The total work, run on this thread alone (the best of three).
        let total_work = (0..3)
            .map(|_| {
                let start = Instant::now();
                for &units in &batch {
                    spin(units);
                }
                start.elapsed()
            })
            .min()
            .expect("three runs");
        println!(
            "uneven: {LONG_ORDERS} x {LONG_WORK:?} + {SHORT_ORDERS} x {SHORT_WORK:?} of work; \
             all of it on one thread takes {:.1} ms",
            total_work.as_secs_f64() * 1e3
        );
        UnevenWork { batch, total_work }
    }
}

fn uneven(c: &mut Criterion, threads: usize) {
    const GROUP: &str = "uneven";
    let pools = Pools::new(threads);
    let work = OnceCell::new();
    let work = || work.get_or_init(UnevenWork::measure);
    let mut group = c.benchmark_group(GROUP);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let mut makespans = Makespans(Vec::new());

    let bakery = &pools.bakery;
    let mut orders = Vec::new();
    bench(&mut group, GROUP, "bakery", |b| {
        let batch = &work().batch;
        b.iter(|| {
            makespans.record(|| {
                orders.extend(
                    batch
                        .iter()
                        .map(|&units| bakery.submit(move || spin(units))),
                );
                for order in orders.drain(..) {
                    black_box(order.join().expect("an uneven order succeeds"));
                }
            })
        })
    });
    makespans.report("bakery", || work().total_work, threads);

    bench(&mut group, GROUP, "rayon", |b| {
        let batch = &work().batch;
        b.iter(|| {
            makespans.record(|| {
                pools.rayon.scope(|s| {
                    for &units in batch {
                        s.spawn(move |_| {
                            spin(units);
                        });
                    }
                })
            })
        })
    });
    makespans.report("rayon", || work().total_work, threads);

    let (tx, rx) = mpsc::channel::<u64>();
    bench(&mut group, GROUP, "threadpool", |b| {
        let batch = &work().batch;
        b.iter(|| {
            makespans.record(|| {
                for &units in batch {
                    let tx = tx.clone();
                    pools.threadpool.execute(move || {
                        let _ = tx.send(spin(units));
                    });
                }
                for _ in 0..batch.len() {
                    black_box(recv(&rx));
                }
            })
        })
    });
    makespans.report("threadpool", || work().total_work, threads);

    bench(&mut group, GROUP, "executors", |b| {
        let batch = &work().batch;
        b.iter(|| {
            makespans.record(|| {
                for &units in batch {
                    let tx = tx.clone();
                    pools.executors.execute(move || {
                        let _ = tx.send(spin(units));
                    });
                }
                for _ in 0..batch.len() {
                    black_box(recv(&rx));
                }
            })
        })
    });
    makespans.report("executors", || work().total_work, threads);

    group.finish();
    pools.shutdown();
}

// ---------------------------------------------------------------------------
// round_trip_idle and round_trip_busy
// ---------------------------------------------------------------------------

/// The untimed pause before each idle round trip: long enough for every
/// pool's threads to stop searching and fall asleep.
const IDLE_PAUSE: Duration = Duration::from_millis(5);
/// Times `round_trip` `iters` times, each after an untimed idle pause.
fn idle_round_trips(iters: u64, mut round_trip: impl FnMut()) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        thread::sleep(IDLE_PAUSE);
        let start = Instant::now();
        round_trip();
        timed += start.elapsed();
    }
    timed
}

/// The four round trips: one tiny order, submitted and waited for.
struct RoundTrips<'a> {
    pools: &'a Pools,
    tx: mpsc::Sender<u64>,
    rx: mpsc::Receiver<u64>,
}

fn bakery_trip(trips: &RoundTrips<'_>) {
    let order = trips.pools.bakery.submit(|| tiny(7));
    black_box(order.join().expect("a round trip succeeds"));
}

fn rayon_trip(trips: &RoundTrips<'_>) {
    let tx = trips.tx.clone();
    trips.pools.rayon.spawn(move || {
        let _ = tx.send(tiny(7));
    });
    black_box(recv(&trips.rx));
}

fn threadpool_trip(trips: &RoundTrips<'_>) {
    let tx = trips.tx.clone();
    trips.pools.threadpool.execute(move || {
        let _ = tx.send(tiny(7));
    });
    black_box(recv(&trips.rx));
}

fn executors_trip(trips: &RoundTrips<'_>) {
    let tx = trips.tx.clone();
    trips.pools.executors.execute(move || {
        let _ = tx.send(tiny(7));
    });
    black_box(recv(&trips.rx));
}

type RoundTrip = fn(&RoundTrips<'_>);

const ROUND_TRIPS: [(&str, RoundTrip); 4] = [
    ("bakery", bakery_trip),
    ("rayon", rayon_trip),
    ("threadpool", threadpool_trip),
    ("executors", executors_trip),
];

fn round_trip(c: &mut Criterion, threads: usize) {
    let pools = Pools::new(threads);
    let (tx, rx) = mpsc::channel();
    let trips = RoundTrips {
        pools: &pools,
        tx,
        rx,
    };

    const IDLE: &str = "round_trip_idle";
    let mut group = c.benchmark_group(IDLE);
    // Criterion sizes the samples from the routine's wall time, pauses
    // included: about 20 round trips per sample, 20 samples.
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(2));
    for (pool, trip) in ROUND_TRIPS {
        bench(&mut group, IDLE, pool, |b| {
            b.iter_custom(|iters| idle_round_trips(iters, || trip(&trips)))
        });
    }
    group.finish();

    const BUSY: &str = "round_trip_busy";
    let mut group = c.benchmark_group(BUSY);
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (pool, trip) in ROUND_TRIPS {
        bench(&mut group, BUSY, pool, |b| b.iter(|| trip(&trips)));
    }
    group.finish();

    drop(trips);
    pools.shutdown();
}

// ---------------------------------------------------------------------------

fn main() {
    watchdog::start();
    let threads = threads();
    let mut c = Criterion::default()
        .sample_size(20)
        .nresamples(20_000)
        .configure_from_args();
    println!("every pool runs {threads} threads");
    tiny_orders(&mut c, threads);
    tiny_orders_shared(&mut c, threads);
    tiny_orders_cold(&mut c, threads);
    tiny_orders_submitters(&mut c, threads);
    fork_join_fib(&mut c, threads);
    fork_join_tree(&mut c, threads);
    fork_join_sort(&mut c, threads);
    order_tree(&mut c, threads);
    uneven(&mut c, threads);
    round_trip(&mut c, threads);
    c.final_summary();
}
