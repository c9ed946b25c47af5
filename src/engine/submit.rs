//! Submitting a task: onto the calling baker's own deque, or through the
//! injector, with the closure handed back if the bakery no longer takes it.

use crate::engine::baker_thread::BakerThread;
use crate::engine::registry::Registry;
use crate::engine::task::{NewTask, RawOrder, TaskKind};

/// Whether an order goes through a FIFO queue (see [`super::fifo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fifo {
    /// No: onto the baker's deque or into the injector itself.
    No,
    /// Yes: into the FIFO queue of the submitting baker (or of the bakery,
    /// from outside), with a stand-in where the order would have gone.
    Yes,
}

/// Submits `func` as a task of kind `kind()`. Hands the closure back if
/// the pool no longer takes orders from the calling thread.
///
/// From one of this pool's bakers the order goes onto its own deque, even
/// while the pool closes: that baker does not leave before its deque is
/// empty. From anywhere else it goes into the injector, and only while the
/// pool is open (see [`Registry::inject`] and
/// [`shutdown`](crate::engine::registry::shutdown)).
#[inline]
pub(crate) fn try_submit<F, T, K>(
    registry: &Registry,
    func: F,
    kind: impl FnOnce() -> K,
    fifo: Fifo,
) -> Result<RawOrder<T>, F>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    BakerThread::with_own(registry.id(), |baker| match baker {
        Some(baker) => {
            // A FIFO order's entry on the deque is its queue's stand-in, so
            // a join must not look for the order itself there.
            let home = (fifo == Fifo::No).then(|| baker.index());
            let task = NewTask::new(func, kind(), registry.id(), home);
            if K::COUNTED {
                baker.record().count_submitted();
            }
            // SAFETY: the only queue reference of this task.
            let job = unsafe { task.job_ref() };
            let job = match fifo {
                Fifo::No => job,
                // SAFETY: the baker's record outlives every job queued in
                // its bakery.
                Fifo::Yes => unsafe { baker.record().fifo().push(job) },
            };
            baker.push(job);
            Ok(task.into_handle())
        }
        None => {
            if registry.is_closed() {
                if K::COUNTED {
                    registry.count_refused();
                }
                return Err(func);
            }
            let task = NewTask::new(func, kind(), registry.id(), None);
            // SAFETY: the only queue reference of this task.
            let job = unsafe { task.job_ref() };
            let job = match fifo {
                Fifo::No => job,
                // SAFETY: the registry outlives every job queued in it.
                Fifo::Yes => unsafe { registry.fifo().push(job) },
            };
            // A rejection here is counted when the bakery lets go of the
            // entry (see `registry::tally`).
            let injected = if K::COUNTED {
                registry.inject_order(job, || task.reject())
            } else {
                registry.inject(job, || task.reject())
            };
            match injected {
                Some(Some(func)) => {
                    drop(task.into_handle());
                    Err(func)
                }
                // Open, or a baker claimed it before the rejection could.
                _ => Ok(task.into_handle()),
            }
        }
    })
}

/// Submits one task per baker whose index holds a thread now, to that
/// baker's inbox, for it alone to run (see
/// [`BakerRecord::deliver`](crate::engine::baker_record::BakerRecord::deliver)):
/// `order_for(index)` makes baker `index`'s closure and kind. Returns the
/// handles in index order.
pub(crate) fn submit_to_each<F, T, K>(
    registry: &Registry,
    mut order_for: impl FnMut(usize) -> (F, K),
) -> Vec<RawOrder<T>>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    let mut handles = Vec::new();
    registry.deliver_to_each(|index| {
        let (func, kind) = order_for(index);
        let task = NewTask::new(func, kind, registry.id(), None);
        // SAFETY: the only queue reference of this task.
        let job = unsafe { task.job_ref() };
        handles.push(task.into_handle());
        job
    });
    handles
}
