//! The blocking monitor: it notices bakers that block without saying so.
//!
//! # Waking only when orders wait
//!
//! Each bakery with a blocking threshold has a monitor thread. It sleeps on
//! a condition variable, with no timeout, until it is *poked*: when an order
//! from outside finds every baker busy (nobody searching, nobody asleep; see
//! [`super::sleep`]), when a baker moves a batch from the injector onto its
//! own deque and finds every baker busy, or when the last searching baker
//! stops searching with nobody asleep and orders waiting in the injector or
//! on its own deque (where the batch it took lands).
//!
//! Orders *wait* when the injector holds some, or when a baker the monitor
//! suspects (see below) has work on its own deque: a batch it took from the
//! injector, orders it submitted. Forks on the deques of bakers that make
//! progress do not count: their owners run them, and a fork-join makes them
//! by the million; a monitor woken for them would take a core from the very
//! bakers it watches. A poke costs one load of the `watching`
//! flag, and only when the flag is off a compare-and-swap and a notify, so
//! a busy bakery pays one load per submit and an idle one nothing.
//!
//! # Telling a blocked baker from a busy one
//!
//! While watching, the monitor wakes every half threshold and samples each
//! baker that is working (not idle, not blocked by its own say): its
//! *progress*, the count of jobs it started, which only the baker writes. A
//! baker whose progress has not moved for a whole threshold is *stuck*, and
//! a *suspect* unless the kernel said it runs; a suspect is looked at only
//! while orders wait (in the injector, or on its own deque). On Linux the monitor then asks the kernel what the
//! thread is doing (`/proc/self/task/<tid>/stat`): running is a long
//! CPU-bound order, which is left alone (and asked about less and less
//! often); sleeping or waiting for a disk is blocked, and the monitor counts
//! it blocked as [`blocking`](crate::blocking()) would, which starts a
//! stand-in. Where the kernel cannot be asked, stuck counts as blocked. A
//! baker counted blocked this way is counted runnable again once its
//! progress moves, it stops working, or the kernel says it runs.
//!
//! # Why no poke is lost
//!
//! The monitor stops watching when, for several samples in a row, no order
//! waits and it counts no baker blocked. It clears `watching`, issues a
//! `SeqCst` fence, and looks once more: work queued while every baker is busy means it watches on. A poker
//! pushed its work, fenced, and then reads `watching`. Of the two fences,
//! whichever comes second makes its thread see the other's write: either
//! the monitor sees the work, or the poker sees `watching` cleared and
//! notifies, under the lock the monitor waits with.

use crate::engine::baker_record::Activity;
use crate::engine::registry::Registry;
use crate::engine::sync::{
    fence, thread, thread::JoinHandle, Arc, AtomicBool, Condvar, Mutex, Ordering,
};
use std::time::{Duration, Instant};

/// How many samples in a row must find no work queued and no baker counted
/// blocked before the monitor stops watching.
const QUIET_SAMPLES: u32 = 8;

/// The monitor's side of the registry: the flag and the wake-up.
pub(crate) struct Monitor {
    watching: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    threshold: Duration,
}

/// What the monitor remembers of one baker between samples.
#[derive(Clone, Copy)]
struct Seen {
    progress: usize,
    /// When `progress` was last seen to move.
    since: Instant,
    /// Counted blocked by the monitor.
    flagged: bool,
    /// When to ask the kernel again about a baker found running.
    next_look: Instant,
    /// How long to wait before the next look at a running baker.
    look_every: Duration,
}

impl Monitor {
    pub(crate) fn new(threshold: Duration) -> Monitor {
        Monitor {
            watching: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            threshold,
        }
    }

    /// Every baker is busy and work may wait: start watching if not yet.
    /// The caller fenced (`SeqCst`) after making the work visible.
    #[inline]
    pub(crate) fn poke(&self) {
        if self.watching.load(Ordering::SeqCst) {
            return;
        }
        self.start_watching();
    }

    #[cold]
    fn start_watching(&self) {
        if self
            .watching
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let _lock = self.lock.lock();
            self.wake.notify_all();
        }
    }

    /// Wakes the monitor so that it sees the bakery closed.
    pub(crate) fn close(&self) {
        let _lock = self.lock.lock();
        self.wake.notify_all();
    }
}

/// The monitor thread's body.
pub(crate) fn run(registry: &Arc<Registry>, monitor: &Monitor) {
    let interval = (monitor.threshold / 2).max(Duration::from_micros(100));
    // Room for every baker the bakery may have, so that sampling never
    // allocates.
    let mut seen: Vec<Option<Seen>> = vec![None; registry.max_bakers()];
    let mut quiet = 0;
    loop {
        {
            let mut lock = monitor.lock.lock();
            while !monitor.watching.load(Ordering::SeqCst) && !registry.is_closed() {
                monitor.wake.wait(&mut lock);
            }
            if registry.is_closed() {
                break;
            }
            match Instant::now().checked_add(interval) {
                Some(at) => {
                    let _ = monitor.wake.wait_until(&mut lock, at);
                }
                // A threshold too long to count in an instant: never look.
                None => monitor.wake.wait(&mut lock),
            }
            if registry.is_closed() {
                break;
            }
        }
        let Sample { flagged, waiting } = sample(registry, monitor.threshold, interval, &mut seen);
        if flagged > 0 || waiting {
            quiet = 0;
            continue;
        }
        // Quiet for a while, not for a moment: queues that empty and fill
        // again between two samples would otherwise start and stop the
        // watch (a compare-and-swap, a notify, a wake-up) over and over.
        quiet += 1;
        if quiet >= QUIET_SAMPLES {
            quiet = 0;
            monitor.watching.store(false, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if registry.injector_has_work() && registry.all_busy() {
                monitor.watching.store(true, Ordering::SeqCst);
            }
        }
    }
    // Closing: whoever the monitor counted blocked is counted runnable
    // again, so the counts stay true for anyone who looks.
    for (index, entry) in seen.iter().enumerate() {
        if entry.is_some_and(|entry| entry.flagged) {
            unflag(registry, index);
        }
    }
}

/// What one sample found.
struct Sample {
    /// How many bakers the monitor counts blocked.
    flagged: usize,
    /// Whether orders wait (see the module docs).
    waiting: bool,
}

/// Samples every baker once.
fn sample(
    registry: &Arc<Registry>,
    threshold: Duration,
    interval: Duration,
    seen: &mut [Option<Seen>],
) -> Sample {
    let now = Instant::now();
    // Only while orders wait is a baker that makes no progress holding
    // anyone up.
    let injector_waits = registry.injector_has_work();
    let mut waiting = injector_waits;
    let indices = registry.indices();
    let mut flagged = 0;
    for (index, slot) in seen.iter_mut().enumerate().take(indices) {
        let record = registry.record(index);
        let progress = record.progress();
        // A hook runs outside the baker's work: a start hook that blocks
        // must not start a stand-in whose own start hook blocks, and so on.
        let working = record.activity() == Activity::Working && !record.in_hook();
        let entry = slot.get_or_insert(Seen {
            progress,
            since: now,
            flagged: false,
            next_look: now,
            look_every: interval,
        });
        let moved = entry.progress != progress;
        if moved || !working {
            entry.progress = progress;
            entry.since = now;
            entry.next_look = now;
            entry.look_every = interval;
            if entry.flagged {
                entry.flagged = false;
                unflag(registry, index);
            }
            continue;
        }
        if entry.flagged {
            // Still stuck: runnable again only if the kernel says it runs.
            if os_thread_state(record.os_thread()) == Some(ThreadState::Running) {
                entry.flagged = false;
                unflag(registry, index);
            } else {
                flagged += 1;
            }
            continue;
        }
        if now.duration_since(entry.since) < threshold || now < entry.next_look {
            continue;
        }
        // A suspect: stuck, and not known to be running.
        let own_waits = !record.stealer().is_empty();
        waiting |= own_waits;
        if !injector_waits && !own_waits {
            continue;
        }
        match os_thread_state(record.os_thread()) {
            Some(ThreadState::Running) => {
                // A long CPU-bound order: ask again later, less and less
                // often, while its progress stays put.
                entry.look_every = entry
                    .look_every
                    .saturating_mul(2)
                    .min(interval.saturating_mul(64));
                entry.next_look = now.checked_add(entry.look_every).unwrap_or(now);
            }
            Some(ThreadState::Waiting) | None => {
                entry.flagged = true;
                if Registry::baker_blocks(registry, index) {
                    flagged += 1;
                    record.set_detected_blocked(true);
                } else {
                    // On its way home: look again later.
                    entry.flagged = false;
                    entry.next_look = now.checked_add(interval).unwrap_or(now);
                }
            }
        }
    }
    Sample { flagged, waiting }
}

fn unflag(registry: &Registry, index: usize) {
    registry.record(index).set_detected_blocked(false);
    registry.baker_unblocks(index);
}

/// What the kernel says a thread is doing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ThreadState {
    /// Running, or runnable.
    Running,
    /// Sleeping, or waiting for a disk: blocked.
    Waiting,
}

/// Asks the kernel about thread `tid` of this process; `None` where it
/// cannot be asked. Allocates nothing: the path and the answer live on the
/// stack.
fn os_thread_state(tid: Option<usize>) -> Option<ThreadState> {
    use std::io::{Read, Write};

    let tid = tid?;
    let mut path = [0_u8; 64];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut path[..]);
        write!(cursor, "/proc/self/task/{tid}/stat").ok()?;
        cursor.position() as usize
    };
    let path = std::str::from_utf8(&path[..len]).ok()?;
    let mut stat = [0_u8; 512];
    let read = std::fs::File::open(path).ok()?.read(&mut stat).ok()?;
    let stat = &stat[..read];
    // `tid (name) S ...`: the name may hold spaces and parentheses, so the
    // state is the first field after the last `)`.
    let after = stat.iter().rposition(|&byte| byte == b')')? + 1;
    let state = *stat[after..]
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())?;
    Some(match state {
        b'S' | b'D' => ThreadState::Waiting,
        _ => ThreadState::Running,
    })
}

/// Starts the monitor thread of `registry`.
pub(crate) fn spawn(registry: Arc<Registry>) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("bakery-monitor".into())
        .stack_size(256 << 10)
        .spawn(move || {
            if let Some(monitor) = registry.monitor() {
                run(&registry, monitor);
            }
        })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_says_a_sleeping_thread_waits_and_a_spinning_one_runs() {
        let Some(_) = std::fs::read_link("/proc/thread-self").ok() else {
            return; // not Linux: nothing to ask
        };
        let tid = |tx: std::sync::mpsc::Sender<usize>| {
            let link = std::fs::read_link("/proc/thread-self").unwrap();
            tx.send(link.file_name().unwrap().to_str().unwrap().parse().unwrap())
                .unwrap();
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = {
            let (tx, stop) = (tx.clone(), stop.clone());
            std::thread::spawn(move || {
                tid(tx);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let sleeping = rx.recv().unwrap();
        let spinner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                tid(tx);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            })
        };
        let spinning = rx.recv().unwrap();
        let waited = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            os_thread_state(Some(sleeping)) == Some(ThreadState::Waiting)
        });
        let ran = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            os_thread_state(Some(spinning)) == Some(ThreadState::Running)
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        sleeper.join().unwrap();
        spinner.join().unwrap();
        assert!(waited, "a sleeping thread was seen waiting");
        assert!(ran, "a spinning thread was seen running");
        assert_eq!(os_thread_state(None), None);
    }
}
