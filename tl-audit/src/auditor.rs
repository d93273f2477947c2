//! [`Auditor`]: the background scanner, the task-end auditing it installs,
//! and its life cycle.
//!
//! # Design
//! All findings flow through [`Shared`]: the auditor thread and
//! [`Auditor::scan_now`] scan the registry (one scan at a time), and tl-core's
//! task-end hook reports leftovers from whichever thread ends a task. Each
//! path computes its findings under the state lock, then releases it before
//! emitting, so a subscriber that itself uses thread-locals (and so ends up
//! back in the hook) cannot deadlock.

use core::panic::Location;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tl_core::checkpoint::{Leftover, TaskId};
use tl_core::clock;
use tl_core::death::{self, DeathNotices};
use tl_core::registry::{self, ThreadInfo};
use tracing::Dispatch;
use tracing::subscriber::NoSubscriber;

use crate::config::{AuditorBuilder, Config};
use crate::detection::Detection;
use crate::emit;
use crate::error::AuditError;
use crate::finding::{Finding, FindingKind};
use crate::global;
use crate::mode::Mode;
use crate::report::Report;
use crate::scan::{self, Gate, ScanStats, ThreadDigest};
use crate::state::{LeftBy, State};
use crate::summary::{Counts, Summary};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The result of one scan.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScanReport {
    /// What the scan saw.
    pub stats: ScanStats,
    /// New findings (stranded values and growth), each also emitted as an
    /// event unless rate-limited.
    pub findings: Vec<Finding>,
    /// How long the scan took, snapshots included.
    pub took: Duration,
}

/// State shared by the auditor handle, its thread and the task-end hook.
pub(crate) struct Shared {
    pub(crate) config: Config,
    dispatch: Option<Dispatch>,
    state: Mutex<State>,
    notices: Mutex<Option<DeathNotices>>,
    /// Serializes scans: a scan's notices must meet its own snapshots.
    scan_lock: Mutex<()>,
    stop: Mutex<bool>,
    wake: Condvar,
    shut: AtomicBool,
    /// Panics caught in the `on_finding` callback.
    callback_panics: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Metrics,
}

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

// === impl Auditor ===

impl Auditor {
    /// A builder with the defaults (see [`AuditorBuilder::new`]).
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder::new()
    }

    pub(crate) fn install(config: Config) -> Result<Self, AuditError> {
        let dispatch = config.dispatch.clone().or_else(|| {
            tracing::dispatcher::get_default(|d| (!d.is::<NoSubscriber>()).then(|| d.clone()))
        });
        let on = config.mode != Mode::Off;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config.rate_events, config.rate_window)),
            notices: Mutex::new(on.then(death::subscribe_remote)),
            scan_lock: Mutex::new(()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            shut: AtomicBool::new(false),
            callback_panics: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Metrics::new(config.metrics_max_keys),
            dispatch,
            config,
        });
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
        self.shared.lock_state().counts
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

// === impl Shared ===

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The auditor thread: a scan every `interval` until told to stop.
    fn run(&self, interval: Duration) {
        let mut stopped = lock(&self.stop);
        loop {
            let deadline = Instant::now() + interval;
            while !*stopped {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                stopped = self
                    .wake
                    .wait_timeout(stopped, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if *stopped {
                return;
            }
            drop(stopped);
            // A panicking subscriber must not end the auditing.
            let _ = catch_unwind(AssertUnwindSafe(|| self.scan()));
            stopped = lock(&self.stop);
        }
    }

    pub(crate) fn scan(&self) -> ScanReport {
        self.scan_with(Gate::Periodic)
    }

    /// A scan; `gate` says which values held by threads running no task it
    /// reports.
    fn scan_with(&self, gate: Gate<'_>) -> ScanReport {
        if self.config.mode == Mode::Off {
            return ScanReport {
                stats: ScanStats::default(),
                findings: Vec::new(),
                took: Duration::ZERO,
            };
        }
        let _one_at_a_time = lock(&self.scan_lock);
        let start = clock::refresh();
        let (notices, lost) = lock(&self.notices)
            .as_ref()
            .map(|n| (n.drain(), n.overflowed()))
            .unwrap_or_default();
        let notices_lost = {
            let mut state = self.lock_state();
            // The subscription is to keys whose values other threads held
            // when they died: only those can have stranded values (and a
            // burst of short-lived local keys can neither fill this map nor
            // overflow the queue).
            for notice in notices {
                state.died_at.insert(notice.key.id, notice.died_at);
            }
            let grew = lost > state.notices_lost;
            state.notices_lost = lost;
            grew
        };
        // One snapshot at a time, each dropped once digested (see `scan`).
        let min_age = gate.min_age(&self.config);
        #[cfg(feature = "metrics")]
        let mut totals = Some(scan::KeyTotals::new());
        #[cfg(not(feature = "metrics"))]
        let mut totals: Option<scan::KeyTotals> = None;
        let digests: Vec<ThreadDigest> = registry::threads()
            .iter()
            .filter_map(|t| ThreadDigest::visit(t, min_age, totals.as_mut()))
            .collect();
        let (findings, stats, emits) = {
            let mut state = self.lock_state();
            let (findings, stats) =
                scan::analyze(&mut state, &self.config, &digests, notices_lost, gate);
            let emits: Vec<_> = findings.iter().map(|f| state.record(f)).collect();
            state.prune_rate(Instant::now());
            (findings, stats, emits)
        };
        self.emit(&findings, &emits);
        let took = start.elapsed();
        #[cfg(feature = "metrics")]
        self.metrics.scan(&crate::metrics::ScanFigures {
            keys: totals.unwrap_or_default(),
            stranded_values: stats.stale,
            stranded_bytes: stats.stale_bytes,
            threads: stats.threads,
            took,
        });
        #[cfg(not(feature = "metrics"))]
        let _ = totals;
        ScanReport {
            stats,
            findings,
            took,
        }
    }

    /// Reports what a task left (called from the task-end hook). Each
    /// leftover is attributed to the innermost task it was bound in.
    pub(crate) fn task_ended(
        &self,
        task: &'static str,
        task_site: Option<&'static Location<'static>>,
        panicking: bool,
        leftovers: Vec<Leftover>,
    ) {
        self.report_leftovers(leftovers, |state, thread, l, f| {
            let (task, task_site) = l
                .bound_in
                .map_or((task, task_site), |t| (t.name, Some(t.location)));
            f.task = Some(task);
            f.task_site = task_site;
            f.panicking = panicking;
            state.remember_left_by(
                thread,
                l.entry.key.id,
                LeftBy {
                    task,
                    task_site,
                    bind_seq: l.entry.bind_seq,
                },
            );
        });
    }

    /// Reports a value that `task` found bound when it began and replaced
    /// (called from the overwrite hook).
    pub(crate) fn overwritten(&self, task: TaskId, leftover: Leftover) {
        self.report_leftovers(vec![leftover], |_, _, l, f| {
            f.found_by = Detection::Overwrite;
            f.overwritten_by = Some(task);
            if let Some(t) = l.bound_in {
                f.task = Some(t.name);
                f.task_site = Some(t.location);
            }
        });
    }

    /// Reports what a pool thread holds when it goes idle ([`Detection::Park`])
    /// or stops ([`Detection::WorkerStop`]; then `pool` is named as the task
    /// and the thread is forgotten).
    pub(crate) fn worker_idle(
        &self,
        pool: &'static str,
        found_by: Detection,
        leftovers: Vec<Leftover>,
    ) {
        let stopping = found_by == Detection::WorkerStop;
        self.report_leftovers(leftovers, |_, _, l, f| {
            f.found_by = found_by;
            f.at_worker_stop = stopping;
            match l.bound_in {
                Some(t) => {
                    f.task = Some(t.name);
                    f.task_site = Some(t.location);
                }
                None if stopping => f.task = Some(pool),
                None => {}
            }
        });
        if stopping {
            let id = current_thread().id;
            self.lock_state().forget_thread(id);
        }
    }

    /// Reports the current thread's `leftovers` not reported before, each as
    /// an unreleased finding that `fill` completes (under the state lock).
    fn report_leftovers(
        &self,
        leftovers: Vec<Leftover>,
        mut fill: impl FnMut(&mut State, u64, &Leftover, &mut Finding),
    ) {
        if leftovers.is_empty() {
            return;
        }
        let thread = current_thread();
        let now = Instant::now();
        let (findings, emits) = {
            let mut state = self.lock_state();
            let mut findings = Vec::new();
            for l in leftovers {
                if !state.claim_bind(thread.id, l.entry.key.id, l.entry.bind_seq) {
                    continue;
                }
                let mut f = Finding::new(FindingKind::Unreleased, thread.clone(), now);
                f.key = Some(l.entry.key);
                f.bytes = l.entry.bytes;
                f.age = Some(now.saturating_duration_since(l.entry.set_at));
                f.set_site = l.entry.set_site;
                f.by_initializer = l.entry.by_initializer;
                fill(&mut state, thread.id, &l, &mut f);
                f.value = l.value;
                findings.push(f);
            }
            let emits: Vec<_> = findings.iter().map(|f| state.record(f)).collect();
            (findings, emits)
        };
        self.emit(&findings, &emits);
    }

    /// Emits the findings' events (those the rate limiter let through),
    /// counts them in the metrics, and calls the user's callback, outside
    /// the state lock.
    fn emit(&self, findings: &[Finding], emits: &[Option<u64>]) {
        for (f, emit) in findings.iter().zip(emits) {
            if let Some(suppressed) = emit {
                emit::finding(self.dispatch.as_ref(), self.config.mode, f, *suppressed);
            }
            #[cfg(feature = "metrics")]
            self.metrics.finding(f);
            if let Some(callback) = &self.config.on_finding {
                if catch_unwind(AssertUnwindSafe(|| (callback.0)(f))).is_err() {
                    self.callback_panics.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "metrics")]
                    self.metrics.callback_panicked();
                }
            }
        }
    }

    /// Builds a summary (and with `keep`, copies the kept findings under the
    /// same lock) and emits it; `at_shutdown` marks the auditor's last one.
    fn emit_summary(&self, keep: bool, at_shutdown: bool) -> (Summary, Option<Kept>) {
        let snapshots = if self.config.mode == Mode::Off {
            Vec::new()
        } else {
            registry::snapshot_all()
        };
        let (summary, kept) = {
            let state = self.lock_state();
            let summary = Summary::build(
                &snapshots,
                &state.thread_tally,
                &state.key_tally,
                state.untallied,
                state.counts,
                state.suppressed,
            );
            let kept = keep.then(|| Kept {
                findings: state.kept.clone(),
                dropped: state.dropped,
            });
            (summary, kept)
        };
        if self.config.mode != Mode::Off {
            emit::summary(
                self.dispatch.as_ref(),
                self.config.mode,
                &summary,
                at_shutdown,
            );
        }
        (summary, kept)
    }
}

/// The kept findings, and how many were counted but not kept.
#[derive(Default)]
struct Kept {
    findings: Vec<Finding>,
    dropped: u64,
}

/// The registry's identity of the current thread.
fn current_thread() -> ThreadInfo {
    registry::current().map_or_else(
        || {
            // Not registered (cannot hold values): tl-core numbers start at 1.
            let current = std::thread::current();
            ThreadInfo {
                id: 0,
                std_id: current.id(),
                name: current.name().map(Arc::from),
            }
        },
        |me| me.info().clone(),
    )
}
