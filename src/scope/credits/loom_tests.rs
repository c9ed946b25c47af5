//! Loom models of a scope's credits on their own: tasks created and freed
//! on different threads' pools while the scope closes the pools and waits.
//!
//! Each task sets its `freed` flag just before it gives up its credit, as a
//! task block is freed just before `released`; the scope must not return
//! before every flag is set, and must not wait for ever. Under loom a pool
//! grabs 2 credits at once and keeps at most 2, so the models also take the
//! paths of a pool running dry and of a full pool giving back.
//!
//! The models are known to bite: letting `put_credits` put into a closed
//! pool, letting a full pool empty itself without giving back, or letting
//! the scope skip a pool when it closes them strands a credit, and loom
//! reports a deadlock; letting the scope return before its count is zero
//! fails the `freed` check.

use super::*;
use crate::engine::sync::Arc;
use loom::thread;

/// Caches 0 and 1 stand for two bakers, cache 2 for every other thread.
const BAKERS: usize = 2;
const OUTSIDE: usize = BAKERS;

/// A scope, and a `freed` flag for each of the `TASKS` tasks a model
/// creates in it.
fn scope<const TASKS: usize>() -> (Arc<ScopeData>, Arc<[AtomicBool; TASKS]>) {
    (
        Arc::new(ScopeData::with_caches(BAKERS + 1, RegistryId::none())),
        Arc::new(std::array::from_fn(|_| AtomicBool::new(false))),
    )
}

/// Whether every task was freed.
fn all_freed(freed: &[AtomicBool]) -> bool {
    freed.iter().all(|flag| flag.load(Ordering::Relaxed))
}

/// Frees a task on the thread that owns cache `index`.
fn free(data: &ScopeData, freed: &AtomicBool, index: usize) {
    freed.store(true, Ordering::Relaxed);
    data.put_credits(index, 1);
}

#[test]
fn tasks_freed_on_two_bakers_while_the_scope_closes() {
    loom::model(|| {
        let (data, freed) = scope::<2>();
        // The body creates two tasks.
        data.take_credit(OUTSIDE);
        data.take_credit(OUTSIDE);
        let bakers: Vec<_> = (0..BAKERS)
            .map(|index| {
                let (data, freed) = (data.clone(), freed.clone());
                thread::spawn(move || free(&data, &freed[index], index))
            })
            .collect();
        data.wait_for_tasks();
        assert!(all_freed(&*freed));
        for baker in bakers {
            baker.join().unwrap();
        }
    });
}

#[test]
fn a_task_creates_another_while_the_scope_closes() {
    loom::model(|| {
        let (data, freed) = scope::<2>();
        // The body creates a task, which runs on baker 0, creates a child
        // there and is freed; the child is freed on baker 1.
        data.take_credit(OUTSIDE);
        let parent = {
            let (data, freed) = (data.clone(), freed.clone());
            thread::spawn(move || {
                data.take_credit(0);
                let child = {
                    let (data, freed) = (data.clone(), freed.clone());
                    thread::spawn(move || free(&data, &freed[1], 1))
                };
                free(&data, &freed[0], 0);
                child
            })
        };
        data.wait_for_tasks();
        assert!(all_freed(&*freed));
        parent.join().unwrap().join().unwrap();
    });
}

#[test]
fn a_full_pool_gives_back_while_the_scope_closes() {
    loom::model(|| {
        let (data, freed) = scope::<3>();
        // Three tasks, all freed on baker 0: the third would fill its pool
        // past `KEEP`, so it gives them all back.
        for _ in 0..3 {
            data.take_credit(OUTSIDE);
        }
        let baker = {
            let (data, freed) = (data.clone(), freed.clone());
            thread::spawn(move || {
                for flag in freed.iter() {
                    free(&data, flag, 0);
                }
            })
        };
        data.wait_for_tasks();
        assert!(all_freed(&*freed));
        baker.join().unwrap();
    });
}
