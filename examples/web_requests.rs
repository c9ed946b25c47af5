//! Many user requests at once: a small HTTP/1.1 server on 127.0.0.1, built on
//! `std::net` alone, whose connections are the bakery's orders.
//!
//! One thread accepts connections and submits each one as an order; a baker
//! reads the request line and headers, builds the response and writes it,
//! then closes the connection (`Connection: close`). The orders are detached
//! (their handles dropped), as a server does not wait for each reply; a panic
//! in one would reach the bakery's panic handler, which counts it.
//!
//! The bakery has two bakers. Reading and writing a socket waits on the
//! client, so each order wraps its socket I/O in `bakehouse::blocking`: while a
//! slow client holds one baker, the bakery starts a stand-in and the other
//! requests keep being served.
//!
//! * `GET /hello/NAME` answers `Hello, NAME!`, a "loaf number" computed from
//!   NAME (its 64-bit FNV-1a hash) and the baker who served it.
//! * `GET /` answers a short usage note; anything else is `404 Not Found`.
//!
//! Without arguments the server prints its address (the port is picked by
//! the system) and serves until Ctrl-C:
//!
//! ```text
//! cargo run --release --example web_requests
//! curl http://127.0.0.1:PORT/hello/you
//! ```
//!
//! With `--self-test` it starts the server and sends a few thousand requests
//! from several client threads at once over loopback, twice: first alone,
//! then beside slow clients that each trickle their request over 300 ms. It
//! checks every response (status line, `Content-Length`, and a body that
//! depends on the request), prints the fast requests' throughput and
//! latency percentiles for both runs side by side, then stops accepting,
//! shuts the bakery down and exits with status 0, or 1 if a check failed.
//! Every socket has read and write timeouts, a client stops after a few
//! failures, and the clients give up after a deadline, so the self-test
//! cannot hang.
//!
//! ```text
//! cargo run --release --example web_requests -- --self-test
//! ```

use bakehouse::{Baker, Bakery};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Read and write timeout of every socket, server and client side.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a request's head (request line and headers) may take.
const MAX_HEAD: u64 = 8 * 1024;
/// The bakers: few, as slow clients are covered by stand-ins.
const BAKERS: usize = 2;
/// The most bakers, stand-ins included.
const MAX_BAKERS: usize = 64;
/// Requests the self-test sends in each of its two runs, and from how many
/// client threads.
const REQUESTS: usize = 4000;
const CLIENTS: usize = 12;
/// Slow clients in the second run, and how long each takes to send its
/// request.
const SLOW_CLIENTS: usize = 8;
const SLOW_SEND: Duration = Duration::from_millis(300);
/// Every tenth self-test request asks for a page that does not exist.
const MISSING_EVERY: usize = 10;
/// The self-test clients give up on requests not sent by then, and a client
/// stops after this many failures.
const DEADLINE: Duration = Duration::from_secs(30);
const MAX_FAILURES: usize = 3;

/// What the server counts.
struct Stats {
    /// Connections answered, by baker index.
    served: Vec<AtomicUsize>,
    /// Connections that failed (a timeout, a reset).
    failed: AtomicUsize,
    /// Orders that panicked, reported by the bakery's panic handler.
    panicked: AtomicUsize,
}

/// FNV-1a, 64 bits: the "loaf number" of a name, recomputed by the clients.
fn loaf_number(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The status line and body for a request.
fn route(method: &str, target: &str, baker: &str) -> (&'static str, String) {
    if method != "GET" {
        return (
            "405 Method Not Allowed",
            format!("{method} is not served here\n"),
        );
    }
    if target == "/" {
        return ("200 OK", "Try GET /hello/NAME\n".to_owned());
    }
    match target.strip_prefix("/hello/") {
        Some(name)
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            let body = format!(
                "Hello, {name}! Your loaf number is {:016x}. Baked by {baker}.\n",
                loaf_number(name)
            );
            ("200 OK", body)
        }
        _ => ("404 Not Found", format!("No such page: {target}\n")),
    }
}

/// Serves one connection: read the head, answer, close. Returns the request
/// line and the status, for the log.
fn handle(stream: TcpStream, baker: &str) -> io::Result<(String, &'static str)> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = BufReader::new(&stream).take(MAX_HEAD);
    let mut request_line = String::new();
    head.read_line(&mut request_line)?;
    // Read the headers up to the blank line, so that no unread request bytes
    // make the close a reset.
    let mut complete = false;
    let mut line = String::new();
    loop {
        line.clear();
        if head.read_line(&mut line)? == 0 {
            break;
        }
        if line == "\r\n" || line == "\n" {
            complete = true;
            break;
        }
    }
    let request_line = request_line.trim_end().to_owned();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let (status, body) = match parts[..] {
        [method, target, version] if complete && version.starts_with("HTTP/1.") => {
            route(method, target, baker)
        }
        _ => ("400 Bad Request", "Malformed request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut writer = &stream;
    writer.write_all(response.as_bytes())?;
    writer.flush()?;
    // The peer may already be gone; the response was written either way.
    let _ = stream.shutdown(Shutdown::Write);
    Ok((request_line, status))
}

/// Accepts connections until `stop` is set (checked after each accept) or
/// the bakery closes, submitting each connection as an order.
fn accept_loop(
    listener: TcpListener,
    bakery: Bakery,
    stats: Arc<Stats>,
    stop: &AtomicBool,
    log: bool,
) {
    for incoming in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little and go on.
                eprintln!("accept failed: {error}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let stats = stats.clone();
        let order = bakery.try_submit(move || {
            let baker = Baker::current().expect("orders run on bakers");
            // The socket waits on the client: say so, so that a slow client
            // does not hold the other requests up.
            match bakehouse::blocking(|| handle(stream, baker.name())) {
                Ok((request, status)) => {
                    stats.served[baker.index()].fetch_add(1, Ordering::Relaxed);
                    if log {
                        println!("  {}: {} -> {status}", baker.name(), request.escape_debug());
                    }
                }
                Err(error) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    match error.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => eprintln!(
                            "  {}: connection dropped: no data for {} s",
                            baker.name(),
                            IO_TIMEOUT.as_secs()
                        ),
                        _ => eprintln!("  {}: connection failed: {error}", baker.name()),
                    }
                }
            }
        });
        match order {
            // Detach: the order runs on its own and counts its outcome.
            Ok(order) => drop(order),
            Err(_) => break,
        }
    }
}

/// A response as a client saw it.
struct Response {
    status_line: String,
    body: String,
}

/// Describes a client-side I/O error; a timeout reads as one.
fn io_failure(step: &str, error: io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("{step}: timed out after {} s", IO_TIMEOUT.as_secs())
        }
        _ => format!("{step}: {error}"),
    }
}

/// Sends `GET path` on a fresh connection and reads the whole response;
/// with `trickle`, the request goes out a few bytes at a time over that
/// long, as a slow client sends it.
fn fetch_slowly(
    addr: SocketAddr,
    path: &str,
    trickle: Option<Duration>,
) -> Result<Response, String> {
    let stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| io_failure("connect", e))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| io_failure("socket options", e))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    match trickle {
        None => (&stream)
            .write_all(request.as_bytes())
            .map_err(|e| io_failure("write", e))?,
        Some(over) => {
            const PIECES: u32 = 10;
            for piece in request
                .as_bytes()
                .chunks(request.len().div_ceil(PIECES as usize))
            {
                (&stream)
                    .write_all(piece)
                    .map_err(|e| io_failure("write", e))?;
                thread::sleep(over / PIECES);
            }
        }
    }
    let mut raw = Vec::new();
    (&stream)
        .take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| io_failure("read", e))?;
    let raw = String::from_utf8(raw).map_err(|_| "response is not UTF-8".to_owned())?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {raw:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let length = lines
        .filter_map(|line| line.split_once(": "))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    if length != body.len() {
        return Err(format!(
            "Content-Length {length}, but {} body bytes",
            body.len()
        ));
    }
    Ok(Response {
        status_line,
        body: body.to_owned(),
    })
}

/// Sends `GET path` at once and reads the whole response.
fn fetch(addr: SocketAddr, path: &str) -> Result<Response, String> {
    fetch_slowly(addr, path, None)
}

/// Sends request number `i` of the self-test and checks the response.
fn check(addr: SocketAddr, i: usize) -> Result<Response, String> {
    if i % MISSING_EVERY == MISSING_EVERY - 1 {
        let response = fetch(addr, &format!("/stale-bread/{i}"))?;
        if response.status_line != "HTTP/1.1 404 Not Found" {
            return Err(format!("expected 404, got {:?}", response.status_line));
        }
        return Ok(response);
    }
    let name = format!("guest-{i}");
    let response = fetch(addr, &format!("/hello/{name}"))?;
    let greeting = format!(
        "Hello, {name}! Your loaf number is {:016x}.",
        loaf_number(&name)
    );
    if response.status_line != "HTTP/1.1 200 OK" || !response.body.starts_with(&greeting) {
        return Err(format!(
            "expected 200 and {greeting:?}, got {:?} and {:?}",
            response.status_line, response.body
        ));
    }
    Ok(response)
}

/// The `p`th percentile (nearest rank) of sorted durations.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn micros(duration: Duration) -> String {
    format!("{:.0} µs", duration.as_secs_f64() * 1e6)
}

/// What one run of the self-test's clients saw.
struct Outcome {
    /// Latencies of the correct fast responses.
    latencies: Vec<Duration>,
    failures: Vec<String>,
    elapsed: Duration,
    /// The body of the first response.
    sample: String,
    /// Slow requests answered correctly.
    slow_served: usize,
}

/// What one fast client saw: latencies of correct responses, failures.
type FastResult = (Vec<Duration>, Vec<String>);
/// What one slow client saw: correct responses, failures.
type SlowResult = (usize, Vec<String>);

/// Sends one slow request after another until `done`, checking each.
fn slow_client(addr: SocketAddr, client: usize, done: &AtomicBool) -> SlowResult {
    let (mut served, mut failures) = (0, Vec::new());
    let mut round = 0;
    while !done.load(Ordering::SeqCst) && failures.len() < MAX_FAILURES {
        let name = format!("slow-{client}-{round}");
        round += 1;
        match fetch_slowly(addr, &format!("/hello/{name}"), Some(SLOW_SEND)) {
            Ok(response) if response.body.starts_with(&format!("Hello, {name}!")) => served += 1,
            Ok(response) => failures.push(format!(
                "slow request {name}: got {:?} and {:?}",
                response.status_line, response.body
            )),
            Err(failure) => failures.push(format!("slow request {name}: {failure}")),
        }
    }
    (served, failures)
}

/// Sends every request of one run from `CLIENTS` threads at once, beside
/// `slow` slow clients.
fn self_test(addr: SocketAddr, slow: usize) -> Outcome {
    let started = Instant::now();
    let sample = Mutex::new(None);
    let fast_done = AtomicBool::new(false);
    let (results, slow_results): (Vec<FastResult>, Vec<SlowResult>) = thread::scope(|s| {
        let slow_clients: Vec<_> = (0..slow)
            .map(|client| {
                let fast_done = &fast_done;
                s.spawn(move || slow_client(addr, client, fast_done))
            })
            .collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let sample = &sample;
                s.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut failures = Vec::new();
                    for i in (client..REQUESTS).step_by(CLIENTS) {
                        if failures.len() >= MAX_FAILURES {
                            failures.push(format!("request {i}: not sent, too many failures"));
                            continue;
                        }
                        if started.elapsed() > DEADLINE {
                            failures.push(format!("request {i}: not sent, past the deadline"));
                            continue;
                        }
                        let sent = Instant::now();
                        match check(addr, i) {
                            Ok(response) => {
                                latencies.push(sent.elapsed());
                                if i == 0 {
                                    *sample.lock().unwrap() = Some(response.body);
                                }
                            }
                            Err(failure) => failures.push(format!("request {i}: {failure}")),
                        }
                    }
                    (latencies, failures)
                })
            })
            .collect();
        let results = clients
            .into_iter()
            .map(|client| client.join().expect("a client thread does not panic"))
            .collect();
        fast_done.store(true, Ordering::SeqCst);
        let slow_results = slow_clients
            .into_iter()
            .map(|client| client.join().expect("a slow client does not panic"))
            .collect();
        (results, slow_results)
    });
    let elapsed = started.elapsed();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    for (l, f) in results {
        latencies.extend(l);
        failures.extend(f);
    }
    let mut slow_served = 0;
    for (served, f) in slow_results {
        slow_served += served;
        failures.extend(f);
    }
    latencies.sort();
    let sample = sample.into_inner().unwrap().unwrap_or_default();
    Outcome {
        latencies,
        failures,
        elapsed,
        sample,
        slow_served,
    }
}

/// One line of the side-by-side latency table.
fn latency_row(label: &str, outcome: &Outcome) -> String {
    let latencies = &outcome.latencies;
    if latencies.is_empty() {
        return format!("  {label:<32} no correct response");
    }
    format!(
        "  {label:<32} {:>7.0} req/s  p50 {:>8}  p90 {:>8}  p99 {:>8}  max {:>8}",
        latencies.len() as f64 / outcome.elapsed.as_secs_f64(),
        micros(percentile(latencies, 50)),
        micros(percentile(latencies, 90)),
        micros(percentile(latencies, 99)),
        micros(*latencies.last().expect("not empty")),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_testing = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--self-test") => true,
        Some(other) => {
            eprintln!("unknown argument {other:?}; usage: web_requests [--self-test]");
            std::process::exit(2);
        }
    };

    let stats = Arc::new(Stats {
        served: (0..MAX_BAKERS).map(|_| AtomicUsize::new(0)).collect(),
        failed: AtomicUsize::new(0),
        panicked: AtomicUsize::new(0),
    });
    let bakery = Bakery::builder()
        .bakers(BAKERS)
        .max_bakers(MAX_BAKERS)
        .panic_handler({
            let stats = stats.clone();
            move |panic| {
                stats.panicked.fetch_add(1, Ordering::Relaxed);
                eprintln!("  a request panicked: {}", panic.message());
            }
        })
        .build()?;

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("Serving http://{addr}/ with {BAKERS} bakers.");

    if !self_testing {
        println!("Try: curl http://{addr}/hello/you    (Ctrl-C to stop)");
        accept_loop(listener, bakery, stats, &AtomicBool::new(false), true);
        return Ok(());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let front_door = {
        let (bakery, stats, stop) = (bakery.clone(), stats.clone(), stop.clone());
        thread::Builder::new()
            .name("front-door".into())
            .spawn(move || accept_loop(listener, bakery, stats, &stop, false))?
    };

    println!(
        "Self-test: {REQUESTS} requests from {CLIENTS} client threads at once, \
         one connection each, every {MISSING_EVERY}th for a missing page; first alone, \
         then beside {SLOW_CLIENTS} slow clients sending theirs over {} ms each.",
        SLOW_SEND.as_millis()
    );
    let alone = self_test(addr, 0);
    let beside = self_test(addr, SLOW_CLIENTS);
    println!("  sample response: {}", alone.sample.trim_end());

    // Close the front door: set the flag, then wake the accept loop with one
    // last connection, which it drops unanswered.
    stop.store(true, Ordering::SeqCst);
    TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    front_door.join().expect("the accept loop does not panic");
    let closing = Instant::now();
    bakery.shutdown_timeout(Duration::from_secs(10))?;
    println!(
        "  server stopped: accept loop joined, bakery shut down in {} ms",
        closing.elapsed().as_millis()
    );

    let served: Vec<usize> = stats
        .served
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    println!(
        "\nFast requests, connect to last byte ({} and {} of {REQUESTS} checked):",
        alone.latencies.len(),
        beside.latencies.len()
    );
    println!("{}", latency_row("alone:", &alone));
    println!(
        "{}",
        latency_row(&format!("beside {SLOW_CLIENTS} slow clients:"), &beside)
    );
    if let (Some(_), Some(_)) = (alone.latencies.last(), beside.latencies.last()) {
        let ratio = percentile(&beside.latencies, 99).as_secs_f64()
            / percentile(&alone.latencies, 99).as_secs_f64();
        println!(
            "  p99 beside slow clients / alone: {ratio:.2} ({} slow requests answered meanwhile)",
            beside.slow_served
        );
    }
    println!(
        "Connections served per baker (stand-ins from baker-{BAKERS} on): {}.",
        served
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, n)| format!("baker-{i} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let failures: Vec<String> = alone.failures.into_iter().chain(beside.failures).collect();
    let failed = stats.failed.load(Ordering::Relaxed);
    let panicked = stats.panicked.load(Ordering::Relaxed);
    for failure in failures.iter().take(10) {
        println!("  FAILED: {failure}");
    }
    if !failures.is_empty() || failed > 0 || panicked > 0 {
        println!(
            "Self-test FAILED: {} bad responses, {failed} failed connections, {panicked} panics on the server.",
            failures.len()
        );
        std::process::exit(1);
    }
    assert_eq!(
        served.iter().sum::<usize>(),
        2 * REQUESTS + beside.slow_served,
        "every request served once"
    );
    println!("Self-test passed: every response was right, and the server shut down cleanly.");
    Ok(())
}
