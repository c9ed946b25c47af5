//! Telling the bakery that an order is about to block.

use crate::engine::baker_thread::BakerThread;

/// Runs `f`, telling the bakery that the calling baker is about to block
/// in it (a socket read, a file, a lock, a channel, a `sleep`), so that the
/// others do not wait for it.
///
/// While `f` runs, the baker does not count towards the bakery's
/// [`bakers`](crate::Bakery::bakers): if fewer than that many would be left
/// runnable, the bakery starts another baker to stand in (up to its
/// [`max_bakers`](crate::Bakery::max_bakers)), and a sleeping baker is woken
/// for the work queued meanwhile, this baker's own deque included, which
/// stays stealable. When `f` returns, the baker finishes its order as
/// usual; a baker beyond the configured number then goes home once it has
/// been out of work for the bakery's
/// [`keep_alive`](crate::BakeryBuilder::keep_alive).
///
/// Called from a thread that is not a baker, it simply runs `f`. Calls
/// nest (only the outermost one counts), and `f` may do anything an order
/// may: submit and join orders, fork-join, open scopes. If `f` panics, the
/// baker counts as runnable again and the panic goes on.
///
/// Blocking that nobody declares is noticed too, a little later: see
/// [`BakeryBuilder::blocking_threshold`](crate::BakeryBuilder::blocking_threshold).
///
/// # Examples
///
/// On one baker, an order that waits for a second order submitted after it
/// would wait for ever, unless the bakery knows it blocks:
///
/// ```
/// use std::sync::mpsc;
///
/// let bakery = bakehouse::Bakery::new(1);
/// let (tx, rx) = mpsc::channel();
/// let waiting = bakery.submit(move || bakehouse::blocking(|| rx.recv().unwrap()));
/// let sending = bakery.submit(move || tx.send("flour").unwrap());
/// assert_eq!(waiting.join().unwrap(), "flour");
/// sending.join().unwrap();
/// ```
#[doc(alias = "block_in_place")]
#[doc(alias = "spawn_blocking")]
pub fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    BakerThread::with_current(|baker| match baker {
        Some(baker) => baker.blocking(f),
        None => f(),
    })
}
