//! [`Auditor`]: the handle, its life cycle (install, the auditor thread,
//! shutdown and the final gate), and [`AuditorBuilder::install`].

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::config::{AuditorBuilder, Config};
use crate::error::AuditError;
use crate::finding::{Counts, Finding};
use crate::global;
use crate::mode::Mode;
use crate::report::Report;
use crate::scan::Gate;
use crate::shared::{Kept, ScanReport, Shared, lock};
use crate::summary::Summary;

/// Finds stranded, unreleased and oversized thread-local values and reports
/// them through `tracing`. At most one is installed per process.
///
/// ```
/// use std::process::ExitCode;
/// use std::time::Duration;
/// use tl_audit::{Auditor, Mode};
///
/// fn main() -> ExitCode {
///     let auditor = Auditor::builder()
///         .mode(Mode::Deny)
///         .interval(Duration::from_millis(250))
///         .install()
///         .expect("audit configuration");
///
///     // ... run the service ...
///
///     let report = auditor.finish().expect("auditor still running");
///     report.exit_code()
/// }
/// ```
///
/// Dropping the auditor shuts it down (stops and joins its thread, removes
/// the hook, emits a summary); so does [`shutdown`](Self::shutdown), after
/// which every method returns [`AuditError::ShutDown`].
pub struct Auditor {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl core::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Auditor")
            .field("mode", &self.shared.config.mode)
            .field("interval", &self.shared.config.interval)
            .field("grace", &self.shared.config.grace)
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

// === impl AuditorBuilder: install ===

impl AuditorBuilder {
    /// Validates the settings, then installs the auditor: tl-core's hooks, a death-notice subscription and (unless [`manual`](AuditorBuilder::manual)
    /// or `off`) the auditor thread. In `off` mode nothing runs, but the
    /// auditor still occupies the process's single auditor slot.
    ///
    /// # Errors
    /// - [`AuditError::Config`] for invalid settings or an invalid `TL_AUDIT`;
    /// - [`AuditError::AlreadyInstalled`] if an auditor is installed;
    /// - [`AuditError::HookInUse`] if something else set tl-core's task-end hook;
    /// - [`AuditError::Spawn`] if the thread could not be started.
    pub fn install(self) -> Result<Auditor, AuditError> {
        let config = self.config()?;
        Auditor::install(config)
    }
}

// === impl Auditor ===

impl Auditor {
    /// A builder with the defaults (see [`AuditorBuilder::new`]).
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder::new()
    }

    pub(crate) fn install(config: Config) -> Result<Self, AuditError> {
        let on = config.mode != Mode::Off;
        let shared = Arc::new(Shared::new(config));
        global::claim(&shared)?;
        let thread = match shared.config.interval {
            Some(interval) if on => {
                let worker = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name(shared.config.thread_name.clone())
                    .spawn(move || worker.run(interval));
                match spawned {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        global::release(&shared);
                        return Err(AuditError::Spawn(e));
                    }
                }
            }
            _ => None,
        };
        Ok(Self {
            shared,
            thread: Mutex::new(thread),
        })
    }

    /// The effective mode (`TL_AUDIT`'s, if it was set to a valid mode).
    pub fn mode(&self) -> Mode {
        self.shared.config.mode
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shut.load(Ordering::Acquire)
    }

    fn check_running(&self) -> Result<(), AuditError> {
        if self.is_shut_down() {
            Err(AuditError::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Scans the registry now, on this thread: drains death notices,
    /// snapshots every thread, and reports stranded values past the grace
    /// period and growth. Ages are measured against the snapshots' times, so
    /// with a zero grace period a test needs no sleep. In `off` mode it
    /// scans nothing and returns an empty report.
    ///
    /// # Errors
    /// [`AuditError::ShutDown`] after shutdown.
    pub fn scan_now(&self) -> Result<ScanReport, AuditError> {
        self.check_running()?;
        Ok(self.shared.scan())
    }

    /// Panics caught in the [`on_finding`](AuditorBuilder::on_finding)
    /// callback since installation.
    pub fn callback_panics(&self) -> u64 {
        self.shared.callback_panics.load(Ordering::Relaxed)
    }

    /// Findings counted since installation, by kind.
    pub fn counts(&self) -> Counts {
        self.shared.lock_state().tallies.totals
    }

    /// The findings kept so far (the first 10,000; later ones are counted).
    ///
    /// # Errors
    /// [`AuditError::ShutDown`] after shutdown.
    pub fn findings(&self) -> Result<Vec<Finding>, AuditError> {
        self.check_running()?;
        Ok(self.shared.lock_state().kept.clone())
    }

    /// Builds a summary (per thread and per key: values held now, bytes,
    /// findings so far) and emits it as INFO events.
    ///
    /// # Errors
    /// [`AuditError::ShutDown`] after shutdown.
    pub fn summary(&self) -> Result<Summary, AuditError> {
        self.check_running()?;
        Ok(self.shared.emit_summary(false, false).0)
    }

    /// Stops and joins the auditor thread, runs the final gate (a scan that
    /// reports every task-scoped value of a live key still bound on a live
    /// thread that is running no task, whatever its age: what an idle pool
    /// still holds after the work is done), removes the hooks, frees the
    /// auditor slot, and emits and returns a final summary. Values on a
    /// thread that is inside a task at that moment are counted in the
    /// summary, not reported.
    ///
    /// # Errors
    /// [`AuditError::ShutDown`] if it was already shut down.
    pub fn shutdown(&self) -> Result<Summary, AuditError> {
        self.stop(false).map(|(summary, _)| summary)
    }

    /// [`shutdown`](Self::shutdown); with `keep`, also the kept findings and
    /// the count of those not kept, taken under the same lock as the
    /// summary's counts, so that the two agree.
    fn stop(&self, keep: bool) -> Result<(Summary, Option<Kept>), AuditError> {
        if self.shared.shut.swap(true, Ordering::AcqRel) {
            return Err(AuditError::ShutDown);
        }
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(handle) = lock(&self.thread).take() {
            // The auditor thread cannot join itself (an auditor dropped by a
            // subscriber it emits to); it exits on its own once woken.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        // The gate: what threads running no task still hold is reported now,
        // whatever its age (the hooks are still installed, so a task ending
        // meanwhile is audited, and each bind is reported once).
        let baseline = self.shared.config.gate_baseline.clone();
        self.shared.scan_with(Gate::Final(baseline.as_deref()));
        global::release(&self.shared);
        *lock(&self.shared.notices) = None;
        Ok(self.shared.emit_summary(keep, true))
    }

    /// The process gate: [`shutdown`](Self::shutdown) (whose final scan
    /// reports stranded values, growth, and every task-scoped value that a
    /// thread running no task still holds), and a [`Report`] of every
    /// finding with an exit code (1 in `deny` mode if anything was found,
    /// else 0). So an idle pool still holding a request's value fails the
    /// gate in `deny` mode.
    ///
    /// The report's counts and findings are taken together: a task end
    /// still being audited on another thread when the auditor shuts down is
    /// in both or in neither.
    ///
    /// # Errors
    /// [`AuditError::ShutDown`] if it was already shut down.
    pub fn finish(self) -> Result<Report, AuditError> {
        self.check_running()?;
        let (summary, kept) = self.stop(true)?;
        let Kept { findings, dropped } = kept.unwrap_or_default();
        Ok(Report::new(
            self.shared.config.mode,
            findings,
            dropped,
            summary,
        ))
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        if !self.is_shut_down() {
            let _ = self.shutdown();
        }
    }
}
