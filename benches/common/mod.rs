//! Helpers shared by the bench binaries.

use std::thread;
use std::time::{Duration, Instant};

/// Aborts the process, naming `what`, if it still runs after `limit`: a
/// benchmark that hangs must not hang the machine's run with it.
#[allow(dead_code)] // `pools` watches each benchmark on its own instead
pub fn abort_after(what: &'static str, limit: Duration) {
    let started = Instant::now();
    thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            thread::sleep(Duration::from_secs(1));
            if started.elapsed() > limit {
                eprintln!("the {what} benchmark still runs after {limit:?}: it hangs");
                std::process::abort();
            }
        })
        .expect("watchdog thread starts");
}

/// The thread count from environment variable `var`, else `default()`.
pub fn threads_from_env(var: &str, default: impl FnOnce() -> usize) -> usize {
    match std::env::var(var) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a positive integer")),
        Err(_) => default(),
    }
}

/// One thread per available CPU.
#[allow(dead_code)] // `blocking` runs its pools on two threads
pub fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}
