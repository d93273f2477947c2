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
//! Async tasks move between threads at every `.await`, so a thread-local
//! cannot follow one; audit the synchronous parts (blocking closures,
//! handlers annotated with `#[thread_local_scoped]`) instead.

use tokio::runtime::Builder;
use tokio::task::JoinHandle;

use crate::task::{worker_started, worker_stopping, wrap};

/// The pool name reported as the task of values found at thread stop.
pub const POOL: &str = "tokio";

/// Sets `builder`'s `on_thread_start` and `on_thread_stop` to
/// [`worker_started`] and [`worker_stopping`]`("tokio")`, for worker and
/// blocking threads alike: a blocking thread that idles out, or any thread
/// at runtime shutdown, reports the task-scoped values its tasks left and no
/// audited task end reported. This replaces hooks set before; to keep your
/// own, call those two functions from them instead.
pub fn instrument(builder: &mut Builder) -> &mut Builder {
    builder
        .on_thread_start(worker_started)
        .on_thread_stop(|| worker_stopping(POOL))
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
