//! A work-stealing pool of named worker threads, its *bakers*, with a handle
//! for every order.
//!
//! ```
//! use bakehouse::Bakery;
//!
//! let bakery = Bakery::new(4);
//! let cake = bakery.submit(|| "birthday cake");
//! assert_eq!(cake.join()?, "birthday cake");
//! # Ok::<(), bakehouse::OrderError>(())
//! ```
//!
//! A [`Bakery`] owns its bakers. Each baker has a work-stealing deque
//! (crossbeam-deque); an idle baker takes orders from a busy one, so nobody
//! stands idle while work waits. [`Bakery::submit`] returns an [`Order`]
//! whose [`join`](Order::join) gives back the value, or an [`OrderError`]
//! saying the order panicked, was cancelled or was rejected.
#![doc = include_str!("guide.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The map of the source, for whoever works on it, is `src/README.md`.

mod baker;
mod bakery;
mod blocking;
mod broadcast;
mod builder;
mod current;
mod engine;
mod error;
mod global;
mod idle;
mod order;
mod order_set;
mod scope;
mod stats;
mod timer;

pub use crate::baker::Baker;
pub use crate::bakery::Bakery;
pub use crate::blocking::blocking;
pub use crate::builder::{
    BakeryBuilder, DEFAULT_BLOCKING_THRESHOLD, DEFAULT_KEEP_ALIVE, DEFAULT_MAX_BAKERS,
};
pub use crate::current::{join, scope, submit, yield_now, Yield};
pub use crate::engine::roster::MAX_BAKERS;
pub use crate::error::{
    BuildError, JoinTimeoutError, OrderError, PanicError, SetBakersError, ShutdownTimeoutError,
    TryJoinError, TrySubmitError,
};
pub use crate::order::Order;
pub use crate::order_set::OrderSet;
pub use crate::scope::{Scope, ScopedOrder};
pub use crate::stats::{BakerState, BakerStats, Stats};
pub use crate::timer::Repeating;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
