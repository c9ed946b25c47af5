//! Many user requests at once: a small HTTP/1.1 server on 127.0.0.1, built on
//! `std::net` alone, whose connections are the bakery's orders.
//!
//! One thread accepts connections and submits each one as an order; a baker
//! reads the request line and headers, builds the response and writes it,
//! then closes the connection (`Connection: close`). The orders are detached
//! (their handles dropped), as a server does not wait for each reply; a panic
//! in one would reach the bakery's panic handler, which counts it.
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
//! With `--self-test` it starts the server, sends a few thousand requests
//! from several client threads at once over loopback, checks every response
//! (status line, `Content-Length`, and a body that depends on the request),
//! prints the throughput and latency percentiles, then stops accepting,
//! shuts the bakery down and exits with status 0, or 1 if a check failed.
//! Every socket has read and write timeouts, a client stops after a few
//! failures, and the clients give up after a deadline, so the self-test
//! cannot hang.
//!
//! ```text
//! cargo run --release --example web_requests -- --self-test
//! ```

use bakery::{Baker, Bakery};
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
/// Requests the self-test sends, and from how many client threads.
const REQUESTS: usize = 4000;
const CLIENTS: usize = 12;
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
            match handle(stream, baker.name()) {
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

/// Sends `GET path` on a fresh connection and reads the whole response.
fn fetch(addr: SocketAddr, path: &str) -> Result<Response, String> {
    let stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| io_failure("connect", e))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| io_failure("socket options", e))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|e| io_failure("write", e))?;
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

/// What the self-test's clients saw.
struct Outcome {
    /// Latencies of the correct responses.
    latencies: Vec<Duration>,
    failures: Vec<String>,
    elapsed: Duration,
    /// The body of the first response.
    sample: String,
}

/// Sends every request of the self-test from `CLIENTS` threads at once.
fn self_test(addr: SocketAddr) -> Outcome {
    let started = Instant::now();
    let sample = Mutex::new(None);
    let results: Vec<(Vec<Duration>, Vec<String>)> = thread::scope(|s| {
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
        clients
            .into_iter()
            .map(|client| client.join().expect("a client thread does not panic"))
            .collect()
    });
    let elapsed = started.elapsed();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    for (l, f) in results {
        latencies.extend(l);
        failures.extend(f);
    }
    let sample = sample.into_inner().unwrap().unwrap_or_default();
    Outcome {
        latencies,
        failures,
        elapsed,
        sample,
    }
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

    // The orders block on their sockets while a client is slow to send or
    // read, so there are twice as many bakers as cores.
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let bakers = (2 * cores).max(4);
    let stats = Arc::new(Stats {
        served: (0..bakers).map(|_| AtomicUsize::new(0)).collect(),
        failed: AtomicUsize::new(0),
        panicked: AtomicUsize::new(0),
    });
    let bakery = Bakery::builder()
        .bakers(bakers)
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
    println!("Serving http://{addr}/ with {bakers} bakers.");

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
         one connection each; every {MISSING_EVERY}th asks for a missing page."
    );
    let Outcome {
        mut latencies,
        failures,
        elapsed,
        sample,
    } = self_test(addr);
    println!("  sample response: {}", sample.trim_end());

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

    latencies.sort();
    let served: Vec<usize> = stats
        .served
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    println!(
        "\n{} of {REQUESTS} responses checked in {:.0} ms: {:.0} requests/s.",
        latencies.len(),
        elapsed.as_secs_f64() * 1e3,
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    if !latencies.is_empty() {
        println!(
            "Latency (connect to last byte): p50 {}, p90 {}, p99 {}, max {}.",
            micros(percentile(&latencies, 50)),
            micros(percentile(&latencies, 90)),
            micros(percentile(&latencies, 99)),
            micros(*latencies.last().expect("not empty"))
        );
    }
    println!(
        "Connections served per baker: {}.",
        served
            .iter()
            .enumerate()
            .map(|(i, n)| format!("baker-{i} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
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
        REQUESTS,
        "every request served once"
    );
    println!("Self-test passed: every response was right, and the server shut down cleanly.");
    Ok(())
}
