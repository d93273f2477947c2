//! rayon integration (feature `rayon`): worker start/exit handlers and
//! audited tasks.
//!
//! ```
//! use tl_core::ThreadLocal;
//!
//! static REQUEST: ThreadLocal<u64> = ThreadLocal::new().named("REQUEST");
//!
//! let pool = tl_audit::rayon::instrument(rayon::ThreadPoolBuilder::new().num_threads(2))
//!     .build()
//!     .unwrap();
//! // Each job is a task: a value it leaves set is reported when it returns.
//! let sum = pool.install(|| tl_audit::task("sum_job", || {
//!     let _req = REQUEST.scope(7);
//!     REQUEST.get().unwrap() * 6
//! }));
//! assert_eq!(sum, 42);
//! tl_audit::rayon::spawn_in(&pool, "background_job", || {
//!     REQUEST.with(|r| assert!(r.is_none()));
//! });
//! ```

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::task::{worker_started, worker_stopping, wrap};

/// The pool name reported as the task of values found at worker exit.
pub const POOL: &str = "rayon";

/// Sets `builder`'s start and exit handlers to [`worker_started`] and
/// [`worker_stopping`]`("rayon")`: when the pool is dropped, each worker
/// reports the task-scoped values its tasks left and no other check
/// reported. This replaces handlers set before; to keep your own, call
/// those two functions from them instead.
///
/// rayon's builder offers start, exit, panic and spawn handlers, and nothing
/// that runs when a worker goes idle (rayon-core 1.13), so values that
/// unwrapped jobs leave on a live pool are found by the other checks: the
/// next task's `set` over them, the auditor's scans
/// ([`AuditorBuilder::idle_after`](crate::AuditorBuilder::idle_after)) and
/// the final gate. Wrapping jobs ([`spawn`], [`crate::task`]) reports them
/// as each job ends.
pub fn instrument<S>(builder: ThreadPoolBuilder<S>) -> ThreadPoolBuilder<S> {
    builder
        .start_handler(|_| worker_started())
        .exit_handler(|_| worker_stopping(POOL))
}

/// `rayon::spawn` of `f` as a task named `task` (see [`crate::task`]).
#[track_caller]
pub fn spawn<F>(task: &'static str, f: F)
where
    F: FnOnce() + Send + 'static,
{
    rayon::spawn(wrap(task, f));
}

/// `pool.spawn` of `f` as a task named `task` (see [`crate::task`]).
#[track_caller]
pub fn spawn_in<F>(pool: &ThreadPool, task: &'static str, f: F)
where
    F: FnOnce() + Send + 'static,
{
    pool.spawn(wrap(task, f));
}
