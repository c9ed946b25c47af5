//! A lock-based stand-in for `crossbeam-deque`, compiled only under loom.
//!
//! It offers the subset of `Worker` and `Stealer` the crate uses, with the
//! same ends: the owner pops from the back (LIFO), thieves take from the
//! front. Every operation takes one loom mutex, so loom sees the deques as
//! synchronization points just as the real lock-free deques are. (The
//! injector is the crate's own, in `crate::injector`, and runs unchanged
//! under loom.)

use crossbeam_deque::Steal;
use loom::sync::{Arc, Mutex};
use std::collections::VecDeque;

/// The owner's end of a deque.
pub(crate) struct Worker<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
}

/// A thief's end of a deque.
pub(crate) struct Stealer<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
}

impl<T> Worker<T> {
    pub(crate) fn new_lifo() -> Worker<T> {
        Worker {
            queue: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    pub(crate) fn stealer(&self) -> Stealer<T> {
        Stealer {
            queue: self.queue.clone(),
        }
    }

    pub(crate) fn push(&self, value: T) {
        self.queue.lock().unwrap().push_back(value);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.queue.lock().unwrap().pop_back()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().is_empty()
    }
}

impl<T> Stealer<T> {
    pub(crate) fn steal(&self) -> Steal<T> {
        match self.queue.lock().unwrap().pop_front() {
            Some(value) => Steal::Success(value),
            None => Steal::Empty,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}

impl<T> Clone for Stealer<T> {
    fn clone(&self) -> Self {
        Stealer {
            queue: self.queue.clone(),
        }
    }
}
