//! The engine: bakers, queues, sleep, order state. The public face
//! (`Bakery`, the builder, `Order`, scopes) is built on it and this module
//! never imports it. See `src/README.md` for the map.

pub(crate) mod baker_record;
pub(crate) mod baker_thread;
pub(crate) mod fifo;
pub(crate) mod idle;
pub(crate) mod injector;
pub(crate) mod job;
pub(crate) mod join;
pub(crate) mod latch;
pub(crate) mod monitor;
pub(crate) mod probe;
pub(crate) mod promotion;
pub(crate) mod ready_list;
pub(crate) mod registry;
pub(crate) mod roster;
pub(crate) mod sleep;
pub(crate) mod stack_job;
pub(crate) mod submit;
pub(crate) mod sync;
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod unwind;
pub(crate) mod wait;
pub(crate) mod waiter;
