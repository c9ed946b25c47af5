//! A lock-based stand-in for `crossbeam-deque`, compiled only under loom.
//!
//! It offers the subset of `Worker`, `Stealer` and `Injector` the crate uses,
//! with the same ends: the owner pops from the back (LIFO), thieves and the
//! injector's consumers take from the front. Every operation takes one loom
//! mutex, so loom sees the queues as synchronization points just as the real
//! lock-free deques are.

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

/// The queue for work from outside the pool.
pub(crate) struct Injector<T> {
    queue: Mutex<VecDeque<T>>,
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

    pub(crate) fn len(&self) -> usize {
        self.queue.lock().unwrap().len()
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

impl<T> Injector<T> {
    pub(crate) fn new() -> Injector<T> {
        Injector {
            queue: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn push(&self, value: T) {
        self.queue.lock().unwrap().push_back(value);
    }

    pub(crate) fn steal(&self) -> Steal<T> {
        match self.queue.lock().unwrap().pop_front() {
            Some(value) => Steal::Success(value),
            None => Steal::Empty,
        }
    }

    /// Takes one value for the caller and moves up to one more into `dest`,
    /// so the model also covers a batch landing in a local deque.
    pub(crate) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
        let mut queue = self.queue.lock().unwrap();
        match queue.pop_front() {
            Some(value) => {
                if let Some(extra) = queue.pop_front() {
                    dest.push(extra);
                }
                Steal::Success(value)
            }
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
