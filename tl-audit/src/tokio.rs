//! tokio integration (feature `tokio`): thread start/stop hooks for the
//! runtime's worker and blocking threads, and audited `spawn_blocking`.
//!
//! ```
//! use tl_core::ThreadLocal;
//!
//! static TENANT: ThreadLocal<String> = ThreadLocal::new().named("TENANT");
//!
//! let runtime = tl_audit::tokio::instrument(&mut tokio::runtime::Builder::new_multi_thread())
//!     .worker_threads(1)
//!     .build()
//!     .unwrap();
//! let len = runtime.block_on(async {
//!     tl_audit::tokio::spawn_blocking("load_tenant", || {
//!         let _tenant = TENANT.scope("acme".to_owned());
//!         TENANT.with(|t| t.map(String::len))
//!     })
//!     .await
//!     .unwrap()
//! });
//! assert_eq!(len, Some(4));
//! ```
//!
//! Async tasks move between threads at every `.await`, so a value a task
//! `set`s stays on the worker it was set on, where the next task polled
//! there can read it: the park hook reports such values when the worker
//! next goes idle.

use tokio::runtime::Builder;
use tokio::task::JoinHandle;

use crate::task::{worker_idle, worker_started, worker_stopping, wrap};

/// The pool name reported as the task of values found at thread stop.
pub const POOL: &str = "tokio";

/// Sets `builder`'s `on_thread_start`, `on_thread_stop` and
/// `on_thread_park` hooks:
/// - start and stop, for worker and blocking threads alike, call
///   [`worker_started`] and [`worker_stopping`]`("tokio")`: a blocking
///   thread that idles out, or any thread at runtime shutdown, reports the
///   task-scoped values its tasks left and no other check reported;
/// - park, for worker threads, calls [`worker_idle`]`("tokio")`: a worker
///   parks only between polls, so a task-scoped value still bound then was
///   left by a task that set it and returned or `.await`ed without removing
///   it (the next task polled on that worker can read it), and is reported
///   then, not when the runtime stops.
///
/// Blocking threads have no park hook in tokio: values that closures run by
/// plain `spawn_blocking` leave are reported by the auditor's scans
/// ([`AuditorBuilder::idle_after`](crate::AuditorBuilder::idle_after)) and
/// gate, or at once with [`spawn_blocking`]. (`on_after_task_poll` would
/// see each poll's end, but needs `--cfg tokio_unstable`.) This replaces
/// hooks set before; to keep your own, call these functions from them
/// instead.
pub fn instrument(builder: &mut Builder) -> &mut Builder {
    builder
        .on_thread_start(worker_started)
        .on_thread_stop(|| worker_stopping(POOL))
        .on_thread_park(|| worker_idle(POOL))
}

/// `tokio::task::spawn_blocking` of `f` as a task named `task` (see
/// [`crate::task`]): a value it leaves set on the blocking thread is
/// reported when it returns.
///
/// # Panics
/// Like `spawn_blocking`, outside a tokio runtime.
#[track_caller]
pub fn spawn_blocking<F, R>(task: &'static str, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(wrap(task, f))
}
