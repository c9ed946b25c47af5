//! Panics at the pool's boundaries: caught where an order ends, fatal where
//! the pool's own bookkeeping would be left half done.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// What a panic carries.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Runs `f`, turning a panic into `Err(payload)`.
///
/// The closures passed here are the user's orders and drops; the pool never
/// touches their state after a panic except to hand the payload on, so
/// asserting unwind safety is sound.
#[inline]
pub(crate) fn halt_unwinding<F, R>(f: F) -> Result<R, Payload>
where
    F: FnOnce() -> R,
{
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Runs `f` and discards a panic it raises, even one whose payload panics
/// again when dropped: for user code whose failure has nobody left to go
/// to (hooks, a panic handler, a waker, a leftover value).
pub(crate) fn quietly<F: FnOnce()>(f: F) {
    if let Err(payload) = halt_unwinding(f) {
        if let Err(again) = halt_unwinding(move || drop(payload)) {
            std::mem::forget(again);
        }
    }
}

/// Holds a value that is dropped quietly (see [`quietly`]) if an unwinding
/// panic drops it: its destructor, if it panics too, cannot abort the
/// process by panicking during the unwinding. Taking the value back out
/// costs nothing.
pub(crate) struct DropQuietlyOnUnwind<T>(Option<T>);

impl<T> DropQuietlyOnUnwind<T> {
    #[inline]
    pub(crate) fn new(value: T) -> DropQuietlyOnUnwind<T> {
        DropQuietlyOnUnwind(Some(value))
    }

    #[inline]
    pub(crate) fn into_inner(mut self) -> T {
        self.0.take().expect("taken once")
    }
}

impl<T> Drop for DropQuietlyOnUnwind<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            if std::thread::panicking() {
                quietly(move || drop(value));
            } else {
                drop(value);
            }
        }
    }
}

/// Re-raises a caught panic.
pub(crate) fn resume_unwinding(payload: Payload) -> ! {
    panic::resume_unwind(payload)
}

/// The text of a panic: the `&str` or `String` it was raised with.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        String::from("Box<dyn Any>")
    }
}

/// Aborts the process if dropped: armed around code that must not unwind
/// because a panic there would leave a latch unset or a reference count
/// wrong, which could later free memory still in use. Disarm with
/// `std::mem::forget`.
pub(crate) struct AbortIfPanic;

impl Drop for AbortIfPanic {
    fn drop(&mut self) {
        eprintln!("bakery: a panic escaped where it cannot be recovered; aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_reads_str_and_string_payloads() {
        let caught = halt_unwinding(|| panic!("plain")).unwrap_err();
        assert_eq!(message(&*caught), "plain");
        let caught = halt_unwinding(|| panic!("formatted {}", 7)).unwrap_err();
        assert_eq!(message(&*caught), "formatted 7");
        let caught = halt_unwinding(|| std::panic::panic_any(5_u8)).unwrap_err();
        assert_eq!(message(&*caught), "Box<dyn Any>");
    }
}
