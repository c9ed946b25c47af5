//! Working through a pile of files while doing something else: every file
//! under a directory is hashed with SHA-256, one order per file collected in
//! an `OrderSet`, which hands each file back as soon as it is done, while
//! the main thread reports each finished file and keeps reporting progress
//! (an `indicatif` bar on a terminal, plus plain progress lines that also
//! show up in logs). Then the same files
//! are hashed again sequentially on the main thread; both passes must give
//! the same digests, and their times and the speed-up are printed.
//!
//! The directory defaults to this crate's own `src`. A tree that small hashes
//! in about a millisecond, far too fast to time, so when the files hold less
//! than 256 MiB in all, each one is hashed as its content repeated enough
//! times to make about 256 MiB per pass; the output says so, and the digests
//! are then those of the repeated content, not `sha256sum`'s.
//!
//! Run it with `cargo run --release --example checksums [DIRECTORY]`.

use bakehouse::{Baker, Bakery, OrderSet};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Below this many bytes in all, files are hashed several times over.
const TARGET_BYTES: u64 = 256 << 20;
/// How often the main thread reports progress.
const TICK: Duration = Duration::from_millis(40);
/// How many digests to print.
const SHOWN: usize = 25;

/// Lists the regular files under `dir`, recursively, without following
/// symbolic links, sorted by path.
fn files_under(dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push((entry.path(), entry.metadata()?.len()));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The SHA-256 of the file's content repeated `rounds` times (of the file
/// itself when `rounds` is 1), reporting each hashed chunk to `hashed`.
fn hash_file(path: &Path, rounds: u64, hashed: &dyn Fn(u64)) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    if rounds == 1 {
        // Stream it: a directory given on the command line may hold big files.
        let mut file = File::open(path)?;
        let mut buffer = vec![0; 256 << 10];
        loop {
            let read = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(&buffer[..read]);
            hashed(read as u64);
        }
    } else {
        let content = std::fs::read(path)?;
        for _ in 0..rounds {
            hasher.update(&content);
            hashed(content.len() as u64);
        }
    }
    Ok(hasher.finalize().into())
}

/// A file's outcome: its digest, or the kind of error that stopped it.
type Outcome = Result<[u8; 32], io::ErrorKind>;

fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        PathBuf::from,
    );
    let files =
        files_under(&dir).map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    println!(
        "{} files, {:.2} MiB, under {}",
        files.len(),
        mib(total),
        dir.display()
    );
    if files.is_empty() {
        println!("Nothing to hash.");
        return Ok(());
    }
    let rounds = if total >= TARGET_BYTES {
        1
    } else {
        (TARGET_BYTES / total.max(1)).max(1)
    };
    let per_pass = total * rounds;
    if rounds > 1 {
        println!(
            "That is too little to time, so each file is hashed as its content repeated \
             {rounds} times ({:.0} MiB per pass); the digests below are of that repeated content.",
            mib(per_pass)
        );
    }

    let bakery = Bakery::default();
    println!(
        "\nParallel pass: one order per file on {} bakers, biggest files first.",
        bakery.bakers()
    );
    let bar = ProgressBar::new(per_pass);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})",
    )?);
    let hashed = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Big files first, so that no baker is left with a big one at the end.
    let mut by_size: Vec<usize> = (0..files.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(files[i].1));
    let mut set = OrderSet::new();
    for i in by_size {
        let path = files[i].0.clone();
        let bar = bar.clone();
        let hashed = hashed.clone();
        let finished = finished.clone();
        set.submit(&bakery, move || {
            let outcome = hash_file(&path, rounds, &|bytes| {
                hashed.fetch_add(bytes, Ordering::Relaxed);
                bar.inc(bytes);
            });
            finished.fetch_add(1, Ordering::Relaxed);
            let baker = Baker::current().expect("orders run on bakers");
            (i, outcome.map_err(|e| e.kind()), baker.name().to_owned())
        });
    }

    // The main thread takes each file as soon as it is done, whichever it
    // is, never waiting longer than until its next report, and reports every
    // `TICK`.
    let mut parallel: Vec<Option<Outcome>> = vec![None; files.len()];
    let mut by_baker: BTreeMap<String, usize> = BTreeMap::new();
    let mut next_report = started + TICK;
    while !set.is_empty() {
        let wait = next_report.saturating_duration_since(Instant::now());
        if let Some(done) = set.join_next_timeout(wait) {
            let (i, outcome, baker) = done?;
            let shown = files[i].0.strip_prefix(&dir).unwrap_or(&files[i].0);
            match &outcome {
                Ok(digest) => bar.suspend(|| {
                    println!(
                        "  [{:>4} ms] {baker} finished {} ({}...)",
                        started.elapsed().as_millis(),
                        shown.display(),
                        &hex(digest)[..12]
                    )
                }),
                Err(kind) => bar.suspend(|| println!("  cannot read {}: {kind}", shown.display())),
            }
            parallel[i] = Some(outcome);
            *by_baker.entry(baker).or_default() += 1;
        }
        if Instant::now() >= next_report {
            next_report = Instant::now() + TICK;
            let bytes = hashed.load(Ordering::Relaxed);
            let done = finished.load(Ordering::Relaxed);
            bar.suspend(|| {
                println!(
                    "  [{:>4} ms] main thread: {done} of {} files done, {:.0} of {:.0} MiB hashed",
                    started.elapsed().as_millis(),
                    files.len(),
                    mib(bytes),
                    mib(per_pass)
                )
            });
        }
    }
    bar.finish_and_clear();
    let parallel_time = started.elapsed();
    println!(
        "  done in {:.1} ms: {:.0} MiB/s; files per baker: {}",
        parallel_time.as_secs_f64() * 1e3,
        mib(per_pass) / parallel_time.as_secs_f64(),
        by_baker
            .iter()
            .map(|(baker, files)| format!("{baker} {files}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    println!("\nSequential pass: the same files, one after another on the main thread.");
    let started = Instant::now();
    let sequential: Vec<Outcome> = files
        .iter()
        .map(|(path, _)| hash_file(path, rounds, &|_| {}).map_err(|e| e.kind()))
        .collect();
    let sequential_time = started.elapsed();
    println!(
        "  done in {:.1} ms: {:.0} MiB/s",
        sequential_time.as_secs_f64() * 1e3,
        mib(per_pass) / sequential_time.as_secs_f64()
    );

    println!("\nDigests:");
    for ((path, size), outcome) in files.iter().zip(&sequential).take(SHOWN) {
        let shown = path.strip_prefix(&dir).unwrap_or(path).display();
        match outcome {
            Ok(digest) => println!("  {}  {shown} ({size} bytes)", hex(digest)),
            Err(kind) => println!("  {:<64}  {shown}", format!("error: {kind}")),
        }
    }
    if files.len() > SHOWN {
        println!("  ... and {} more", files.len() - SHOWN);
    }

    let mismatches = files
        .iter()
        .zip(parallel.iter().zip(&sequential))
        .filter(|(_, (parallel, sequential))| parallel.as_ref() != Some(sequential))
        .map(|((path, _), _)| path.display().to_string())
        .collect::<Vec<_>>();
    assert!(
        mismatches.is_empty(),
        "the passes disagree on {mismatches:?}"
    );
    println!(
        "\nBoth passes agree on every file ({}). Parallel {:.1} ms, sequential {:.1} ms: \
         a speed-up of {:.2}x on {} bakers.",
        files.len(),
        parallel_time.as_secs_f64() * 1e3,
        sequential_time.as_secs_f64() * 1e3,
        sequential_time.as_secs_f64() / parallel_time.as_secs_f64(),
        bakery.bakers()
    );
    bakery.shutdown();
    Ok(())
}
