//! Failing tests on leaks: run a closure under an audit scope in deny mode.
//!
//! ```
//! use tl_core::ThreadLocal;
//!
//! static CONN: ThreadLocal<String> = ThreadLocal::new().named("CONN");
//!
//! // Passes: the value is unbound before the scope ends.
//! tl_audit::assert_clean(|| {
//!     let _conn = CONN.scope("db-1".to_owned());
//! });
//!
//! // Fails: the closure is a task, and it leaves CONN set.
//! let failure = tl_audit::testing::AuditScope::new()
//!     .run(|| { CONN.set("db-2".to_owned()); })
//!     .unwrap_err();
//! assert!(failure.to_string().contains("THREAD-LOCAL LEAK: task tl_audit::assert_clean, entered at "));
//! # CONN.remove();
//! ```
//!
//! # Shared state
//! tl-core's registry and task-end hook, and the auditor slot, are
//! process-wide, and test harnesses run tests in parallel threads. A scope
//! therefore takes [`serial`]'s lock for its duration, and reports only what
//! happens while it runs: values left by tasks that end inside it, values of
//! keys that die inside it, and growth if thresholds are set. Tests in the
//! same binary that install an [`Auditor`](crate::Auditor) themselves, or
//! that leak on purpose, should hold [`serial`] too (it is reentrant, so a
//! scope may run under it), or live in a test binary of their own.

use core::cell::Cell;
use core::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tl_core::checkpoint::TaskScope;

use crate::config::AuditorBuilder;
use crate::error::AuditError;
use crate::mode::Mode;
use crate::report::Report;

static SERIAL: Mutex<()> = Mutex::new(());

std::thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Holds the test-serialization lock; see [`serial`].
#[must_use = "the lock is released when the guard is dropped"]
pub struct SerialGuard {
    _lock: Option<MutexGuard<'static, ()>>,
}

impl fmt::Debug for SerialGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialGuard").finish_non_exhaustive()
    }
}

/// Serializes tests that use process-wide audit state. Reentrant on one
/// thread; a panic while it is held does not poison it for other tests.
///
/// ```
/// let _serial = tl_audit::testing::serial();
/// tl_audit::assert_clean(|| {}); // does not deadlock
/// ```
pub fn serial() -> SerialGuard {
    let depth = HELD.with(Cell::get);
    let lock = (depth == 0).then(|| SERIAL.lock().unwrap_or_else(PoisonError::into_inner));
    HELD.with(|h| h.set(depth + 1));
    SerialGuard { _lock: lock }
}

impl Drop for SerialGuard {
    fn drop(&mut self) {
        let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(1)));
    }
}

/// Why an [`AuditScope`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuditFailure {
    /// Leaks were found; the report lists them.
    Findings(Report),
    /// The scope's auditor could not be installed (another auditor is).
    Install(AuditError),
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Findings(report) => write!(f, "{report}"),
            Self::Install(e) => write!(f, "tl-audit: cannot start the audit scope: {e}"),
        }
    }
}

impl std::error::Error for AuditFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Install(e) => Some(e),
            Self::Findings(_) => None,
        }
    }
}

/// Runs a closure under a temporary `deny`-mode auditor and fails if it
/// leaked. The closure itself is a task named
/// [`AuditScope::DEFAULT_TASK`] (or [`task_name`](Self::task_name)), so
/// values it leaves bound on the calling thread are unreleased findings; tasks
/// it runs on other threads are audited as they end; after it returns, the
/// final gate reports every task-scoped value bound since the scope began
/// that a thread running no task still holds (a pool thread the closure
/// used, kept alive past it), and values of keys that died during the scope
/// and are still held past the grace period (zero by default).
///
/// Values bound before the scope began are not its doing and are not
/// reported. A test running in parallel that binds a task-scoped value
/// outside any task while the scope runs is reported, naming its thread
/// (test threads are named after their test): hold [`serial`] in such
/// tests, or bind inside a task.
///
/// `TL_AUDIT` is ignored: a test's verdict does not depend on the
/// environment. Events go to the subscriber current on the calling thread.
#[derive(Clone, Debug)]
#[must_use = "nothing is audited until `run` is called"]
pub struct AuditScope {
    builder: AuditorBuilder,
    task: &'static str,
}

impl Default for AuditScope {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditScope {
    /// The default task name of the closure.
    pub const DEFAULT_TASK: &'static str = "tl_audit::assert_clean";

    /// Deny mode, no auditor thread, zero grace period, no thresholds.
    pub fn new() -> Self {
        Self {
            builder: AuditorBuilder::new()
                .mode(Mode::Deny)
                .ignore_env()
                .manual()
                .grace_period(Duration::ZERO)
                .report_earlier_deaths(false)
                .rate_limit(u32::MAX, Duration::from_secs(1)),
            task: Self::DEFAULT_TASK,
        }
    }

    /// Names the closure's task in reports.
    pub fn task_name(mut self, name: &'static str) -> Self {
        self.task = name;
        self
    }

    /// How long a value may outlive its key before the final scan reports it.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.builder = self.builder.grace_period(grace);
        self
    }

    /// Reports threads holding more than `n` values at the final scan.
    pub fn max_entries_per_thread(mut self, n: usize) -> Self {
        self.builder = self.builder.max_entries_per_thread(n);
        self
    }

    /// Reports threads retaining more than `bytes` at the final scan.
    pub fn max_bytes_per_thread(mut self, bytes: usize) -> Self {
        self.builder = self.builder.max_bytes_per_thread(bytes);
        self
    }

    /// Runs `f` under the scope. `Ok` with its result if nothing leaked.
    /// If `f` panics, the panic propagates (after the auditor is removed).
    ///
    /// # Errors
    /// [`AuditFailure::Findings`] listing every finding, or
    /// [`AuditFailure::Install`] if an auditor is already installed.
    #[track_caller]
    pub fn run<R>(self, f: impl FnOnce() -> R) -> Result<R, AuditFailure> {
        let _serial = serial();
        // What is bound before the scope begins is not the scope's doing.
        let builder = self.builder.gate_baseline(crate::scan::bound_binds());
        let auditor = builder.install().map_err(AuditFailure::Install)?;
        let result = {
            let _task = TaskScope::enter(self.task);
            f()
        };
        let report = auditor.finish().map_err(AuditFailure::Install)?;
        if report.is_clean() {
            Ok(result)
        } else {
            Err(AuditFailure::Findings(report))
        }
    }
}

/// Runs `f` under a default [`AuditScope`] and panics, listing every
/// finding, if it leaked a thread-local value. Returns `f`'s result.
///
/// ```should_panic
/// use tl_core::ThreadLocal;
///
/// static TOKEN: ThreadLocal<String> = ThreadLocal::new().named("TOKEN");
///
/// tl_audit::assert_clean(|| {
///     TOKEN.set("secret".to_owned()); // never removed: the test fails
/// });
/// ```
///
/// # Panics
/// On any finding, or if another auditor is installed.
#[track_caller]
pub fn assert_clean<R>(f: impl FnOnce() -> R) -> R {
    match AuditScope::new().run(f) {
        Ok(result) => result,
        Err(failure) => panic!("{failure}"),
    }
}
