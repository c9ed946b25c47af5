//! Submitting a task: onto the calling baker's own deque, or through the
//! injector, with the closure handed back if the bakery no longer takes it.

use crate::engine::baker_thread::BakerThread;
use crate::engine::registry::Registry;
use crate::engine::task::{NewTask, RawOrder, TaskKind};

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
) -> Result<RawOrder<T>, F>
where
    F: FnOnce() -> T + Send,
    T: Send,
    K: TaskKind,
{
    BakerThread::with_own(registry.id(), |baker| match baker {
        Some(baker) => {
            let task = NewTask::new(func, kind(), registry.id(), Some(baker.index()));
            if K::COUNTED {
                baker.record().count_submitted();
            }
            // SAFETY: the only queue reference of this task.
            baker.push(unsafe { task.job_ref() });
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
