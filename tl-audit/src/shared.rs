//! [`Shared`]: what the auditor handle, its thread and the hooks share: the
//! scans, the reports of leftovers from every detection path, the emission
//! of findings (events, metrics, the user's callback) and summaries.
//!
//! # Design
//! All findings flow through [`Shared`]: the auditor thread and
//! [`Auditor::scan_now`](crate::Auditor::scan_now) scan the registry (one
//! scan at a time), and tl-core's hooks report leftovers from whichever
//! thread finds them. Each path computes its findings under the state lock,
//! then releases it before emitting, so a subscriber that itself uses
//! thread-locals (and so ends up back in a hook) cannot deadlock.

use core::panic::Location;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tl_core::checkpoint::{Leftover, TaskId};
use tl_core::clock;
use tl_core::death::{self, DeathNotices};
use tl_core::registry::{self, ThreadInfo};
use tracing::Dispatch;
use tracing::subscriber::NoSubscriber;

use crate::config::Config;
use crate::detection::Detection;
use crate::emit;
use crate::finding::{Finding, FindingKind};
use crate::mode::Mode;
use crate::scan::{self, Gate, ScanStats, ThreadDigest};
use crate::state::{LeftBy, State};
use crate::summary::Summary;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    pub(crate) dispatch: Option<Dispatch>,
    pub(crate) state: Mutex<State>,
    pub(crate) notices: Mutex<Option<DeathNotices>>,
    /// Serializes scans: a scan's notices must meet its own snapshots.
    pub(crate) scan_lock: Mutex<()>,
    pub(crate) stop: Mutex<bool>,
    pub(crate) wake: Condvar,
    pub(crate) shut: AtomicBool,
    /// Panics caught in the `on_finding` callback.
    pub(crate) callback_panics: AtomicU64,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::Metrics,
}

impl Shared {
    /// The state of an auditor about to be installed with `config`.
    pub(crate) fn new(config: Config) -> Self {
        let dispatch = config.dispatch.clone().or_else(|| {
            tracing::dispatcher::get_default(|d| (!d.is::<NoSubscriber>()).then(|| d.clone()))
        });
        let on = config.mode != Mode::Off;
        Self {
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
        }
    }
}

// === impl Shared ===

impl Shared {
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The auditor thread: a scan every `interval` until told to stop.
    pub(crate) fn run(&self, interval: Duration) {
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
    pub(crate) fn scan_with(&self, gate: Gate<'_>) -> ScanReport {
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
            state.rate_limiter.prune(Instant::now());
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
                if !state
                    .reported
                    .claim_bind(thread.id, l.entry.key.id, l.entry.bind_seq)
                {
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
    pub(crate) fn emit_summary(&self, keep: bool, at_shutdown: bool) -> (Summary, Option<Kept>) {
        let snapshots = if self.config.mode == Mode::Off {
            Vec::new()
        } else {
            registry::snapshot_all()
        };
        let (summary, kept) = {
            let state = self.lock_state();
            let summary =
                Summary::build(&snapshots, &state.tallies, state.rate_limiter.suppressed());
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
pub(crate) struct Kept {
    pub(crate) findings: Vec<Finding>,
    pub(crate) dropped: u64,
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
