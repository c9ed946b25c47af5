//! Fork-join on the bakery: a Mandelbrot image rendered by splitting its rows
//! in halves with [`Bakery::join`] until the pieces are small, and again with
//! one scoped order per band of rows ([`Bakery::scope`]). Both borrow the
//! image straight from the caller's stack; no `Arc`, no copying.
//!
//! The image is checked pixel for pixel against a sequential rendering,
//! written as a binary PGM (P5) file in the system's temporary directory, and
//! the times of the three renderings are printed with the speed-ups.
//!
//! Run it with `cargo run --release --example mandelbrot`.

use bakehouse::{Baker, Bakery};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WIDTH: usize = 800;
const HEIGHT: usize = 600;
const MAX_ITERATIONS: u32 = 500;
/// The region of the complex plane: real part from `LEFT`, imaginary part
/// centred on zero, `SPAN` wide.
const LEFT: f64 = -2.2;
const SPAN: f64 = 3.0;
/// `join` stops splitting at this many rows and renders them in place.
const LEAF_ROWS: usize = 4;
/// Rows per scoped order.
const BAND_ROWS: usize = 8;
/// Each rendering runs this many times; the best time is reported.
const RUNS: usize = 3;

/// Rows rendered by each baker (or by the caller, for the sequential run).
type Tally = BTreeMap<String, usize>;

/// The gray level of one pixel: black inside the set, brighter the faster a
/// point escapes.
fn pixel(column: usize, row: usize) -> u8 {
    let scale = SPAN / WIDTH as f64;
    let c_re = LEFT + column as f64 * scale;
    let c_im = (row as f64 - HEIGHT as f64 / 2.0) * scale;
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for iteration in 0..MAX_ITERATIONS {
        let (re2, im2) = (re * re, im * im);
        if re2 + im2 > 4.0 {
            // A square root spreads the quickly escaping points over more
            // gray levels.
            let t = (iteration as f64 / MAX_ITERATIONS as f64).sqrt();
            return 255 - (t * 254.0) as u8;
        }
        im = 2.0 * re * im + c_im;
        re = re2 - im2 + c_re;
    }
    0
}

/// Renders `rows` (whole rows, the first being `first_row`) in place.
fn render_rows(rows: &mut [u8], first_row: usize) {
    for (offset, row) in rows.chunks_mut(WIDTH).enumerate() {
        for (column, value) in row.iter_mut().enumerate() {
            *value = pixel(column, first_row + offset);
        }
    }
}

fn who() -> String {
    Baker::current().map_or_else(|| "main thread".to_owned(), |b| b.name().to_owned())
}

fn sequential(image: &mut [u8]) -> Tally {
    render_rows(image, 0);
    Tally::from([(who(), HEIGHT)])
}

/// Splits the rows in two halves and renders them with `join`, recursively:
/// while one baker renders the top half, an idle one may steal the bottom.
fn fork_join(bakery: &Bakery, rows: &mut [u8], first_row: usize) -> Tally {
    let count = rows.len() / WIDTH;
    if count <= LEAF_ROWS {
        render_rows(rows, first_row);
        return Tally::from([(who(), count)]);
    }
    let half = count / 2;
    let (top, bottom) = rows.split_at_mut(half * WIDTH);
    let (mut tally, other) = bakery.join(
        || fork_join(bakery, top, first_row),
        || fork_join(bakery, bottom, first_row + half),
    );
    for (baker, rows) in other {
        *tally.entry(baker).or_default() += rows;
    }
    tally
}

/// One scoped order per band of `BAND_ROWS` rows, each borrowing its band.
fn scoped_bands(bakery: &Bakery, image: &mut [u8]) -> Tally {
    bakery.scope(|s| {
        let bands: Vec<_> = image
            .chunks_mut(BAND_ROWS * WIDTH)
            .enumerate()
            .map(|(band, rows)| {
                s.submit(move || {
                    render_rows(rows, band * BAND_ROWS);
                    (who(), rows.len() / WIDTH)
                })
            })
            .collect();
        let mut tally = Tally::new();
        for band in bands {
            let (baker, rows) = band.join().expect("rendering does not panic");
            *tally.entry(baker).or_default() += rows;
        }
        tally
    })
}

/// Runs `render` `RUNS` times on a fresh image; returns the last image, the
/// best time and the last tally.
fn timed(mut render: impl FnMut(&mut [u8]) -> Tally) -> (Vec<u8>, Duration, Tally) {
    let mut best = Duration::MAX;
    let mut last = (Vec::new(), Tally::new());
    for _ in 0..RUNS {
        let mut image = vec![0u8; WIDTH * HEIGHT];
        let started = Instant::now();
        let tally = render(&mut image);
        best = best.min(started.elapsed());
        last = (image, tally);
    }
    (last.0, best, last.1)
}

fn describe(tally: &Tally) -> String {
    tally
        .iter()
        .map(|(baker, rows)| format!("{baker} {rows}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bakery = Bakery::default();
    println!(
        "Rendering a {WIDTH}x{HEIGHT} Mandelbrot image (up to {MAX_ITERATIONS} iterations a pixel) \
         with {} bakers; best of {RUNS} runs each.",
        bakery.bakers()
    );

    let (reference, sequential_time, tally) = timed(sequential);
    println!(
        "  sequential:              {:>7.1} ms  (rows: {})",
        ms(sequential_time),
        describe(&tally)
    );

    let (joined, join_time, tally) = timed(|image| fork_join(&bakery, image, 0));
    println!(
        "  fork-join (Bakery::join): {:>6.1} ms  speed-up {:.2}x  (rows: {})",
        ms(join_time),
        sequential_time.as_secs_f64() / join_time.as_secs_f64(),
        describe(&tally)
    );
    assert_eq!(
        tally.values().sum::<usize>(),
        HEIGHT,
        "every row rendered once"
    );

    let (banded, scope_time, tally) = timed(|image| scoped_bands(&bakery, image));
    println!(
        "  scoped orders ({} bands): {:>6.1} ms  speed-up {:.2}x  (rows: {})",
        HEIGHT.div_ceil(BAND_ROWS),
        ms(scope_time),
        sequential_time.as_secs_f64() / scope_time.as_secs_f64(),
        describe(&tally)
    );
    assert_eq!(
        tally.values().sum::<usize>(),
        HEIGHT,
        "every row rendered once"
    );

    assert!(
        joined == reference,
        "fork-join image differs from the sequential one"
    );
    assert!(
        banded == reference,
        "scoped image differs from the sequential one"
    );
    println!("  all three images are identical, pixel for pixel");

    let inside = reference.iter().filter(|&&p| p == 0).count();
    println!(
        "  {:.1}% of the pixels are inside the set",
        100.0 * inside as f64 / reference.len() as f64
    );

    let path = std::env::temp_dir().join("bakery-mandelbrot.pgm");
    let mut file = format!("P5\n{WIDTH} {HEIGHT}\n255\n").into_bytes();
    file.extend_from_slice(&reference);
    std::fs::write(&path, &file)?;
    println!("Wrote {} ({} bytes).", path.display(), file.len());

    bakery.shutdown();
    Ok(())
}
