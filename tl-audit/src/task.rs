//! Task boundaries for code that is not annotated with
//! `#[thread_local_scoped]`: a wrapper for any closure, and the start/stop
//! calls that pool integrations make on each worker thread.

use core::cell::{Cell, RefCell};
use core::panic::Location;

use tl_core::checkpoint::{self, Leftover, Mark, TaskScope};

use crate::detection::Detection;
use crate::global;
use crate::mode::Mode;

std::thread_local! {
    /// The mark taken by [`worker_started`].
    static WORKER_MARK: Cell<Option<Mark>> = const { Cell::new(None) };
    /// The binds [`worker_idle`] last found on this thread, `(key, bind_seq)`.
    static LAST_IDLE: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` as a task named `name`: when it returns (or panics), the
/// auditor checks that it left no task-scoped value set on this thread.
///
/// ```
/// use tl_core::ThreadLocal;
///
/// static USER: ThreadLocal<String> = ThreadLocal::new().named("USER");
///
/// let len = tl_audit::task("handle_request", || {
///     let _user = USER.scope("alice".to_owned());
///     USER.with(|u| u.map(String::len))
/// });
/// assert_eq!(len, Some(5));
/// ```
#[track_caller]
#[inline]
pub fn task<R>(name: &'static str, f: impl FnOnce() -> R) -> R {
    let _task = TaskScope::enter(name);
    f()
}

/// Wraps `f` so that it runs as a task named `name` wherever it is called:
/// for `spawn`-style pool APIs. The task is reported as entered here. The
/// wrapper is `Send` and `'static` when `f` is.
///
/// ```
/// let job = tl_audit::wrap("nightly_report", || 6 * 7);
/// assert_eq!(std::thread::spawn(job).join().unwrap(), 42);
/// ```
#[track_caller]
pub fn wrap<F, R>(name: &'static str, f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    let site = Location::caller();
    move || run_wrapped(name, site, f)
}

fn run_wrapped<R>(
    name: &'static str,
    site: &'static Location<'static>,
    f: impl FnOnce() -> R,
) -> R {
    let _task = TaskScope::enter_at(name, site);
    f()
}

/// Call at the start of a pool worker thread (a thread-start handler):
/// remembers what is bound now, so that [`worker_stopping`] can tell what
/// the thread's tasks left behind. The [`rayon`](crate::rayon) and
/// [`tokio`](crate::tokio) integrations call it for you.
pub fn worker_started() {
    let mark = checkpoint::mark();
    let _ = WORKER_MARK.try_with(|m| m.set(Some(mark)));
}

/// Call when a pool worker thread stops (a thread-exit handler): every
/// task-scoped value bound since [`worker_started`] and still bound is
/// reported as unreleased ([`Detection::WorkerStop`]), attributed to the task
/// it was bound in if the thread remembers it, else to `pool`, unless another
/// check already reported it. This catches what sampling missed and what
/// unwrapped tasks left. Does nothing without an installed auditor, in `off`
/// mode, or if `worker_started` was not called on this thread.
pub fn worker_stopping(pool: &'static str) {
    let Some(mark) = WORKER_MARK.try_with(Cell::take).ok().flatten() else {
        return;
    };
    report(pool, Detection::WorkerStop, || mark.leftovers());
}

/// Call when a pool worker thread goes idle (it finished its work and waits
/// for more): every task-scoped value of a live key still bound on it is
/// reported as unreleased ([`Detection::Park`]), once per bind. Does nothing
/// while the thread is inside a task, without an installed auditor, or in
/// `off` mode.
///
/// The [`tokio`](crate::tokio) integration calls it from `on_thread_park`.
/// For a pool of your own, call it where a worker waits for its next job:
///
/// ```
/// use std::sync::mpsc;
///
/// let (jobs, queue) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
/// let worker = std::thread::spawn(move || {
///     while let Ok(job) = queue.recv() {
///         job();
///         tl_audit::worker_idle("my-pool");
///     }
/// });
/// jobs.send(Box::new(|| {})).unwrap();
/// drop(jobs);
/// worker.join().unwrap();
/// ```
///
/// Cheap when nothing is left: one walk of the thread's own entries, no
/// lock; a bind it already reported is not looked at again.
pub fn worker_idle(pool: &'static str) {
    if checkpoint::in_task() || !checkpoint::has_task_end_hook() {
        return;
    }
    let leftovers = checkpoint::bound();
    if leftovers.is_empty() {
        return;
    }
    // Each bind is reported once: skip the lock when every leftover is one
    // this thread already handed over.
    let fresh = LAST_IDLE
        .try_with(|last| {
            let binds: Vec<(u64, u64)> = leftovers
                .iter()
                .map(|l| (l.entry.key.id, l.entry.bind_seq))
                .collect();
            let mut last = last.borrow_mut();
            let fresh = binds.iter().any(|b| !last.contains(b));
            *last = binds;
            fresh
        })
        .unwrap_or(true);
    if fresh {
        report(pool, Detection::Park, || leftovers);
    }
}

/// Hands what `leftovers` finds to the installed auditor, if there is one
/// and it is not `off`. As in the task-end hook, user code (revealing
/// `Debug`, the subscriber) must not unwind out of a pool's handler.
fn report(pool: &'static str, found_by: Detection, leftovers: impl FnOnce() -> Vec<Leftover>) {
    let Some(shared) = global::active() else {
        return;
    };
    if shared.config.mode == Mode::Off {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.worker_idle(pool, found_by, leftovers());
    }));
}
