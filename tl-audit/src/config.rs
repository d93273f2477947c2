//! [`AuditorBuilder`]: every setting, validated before anything is installed.

use std::sync::Arc;
use std::time::Duration;

use tracing::Dispatch;

use crate::error::ConfigError;
use crate::finding::Finding;
use crate::mode::Mode;
use crate::reported::Binds;

/// Shortest accepted scan interval: shorter would make the auditor a busy loop.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Longest accepted scan interval, grace period and rate-limit window: a day.
/// Longer values are almost certainly a unit mistake (seconds given as millis).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The validated settings an auditor runs with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The effective mode (the environment variable's, if valid and set).
    pub(crate) mode: Mode,
    /// `None`: no background thread (scans only on demand).
    pub(crate) interval: Option<Duration>,
    pub(crate) grace: Duration,
    /// How long a task-scoped value may stay bound on a thread running no
    /// task before a scan reports it.
    pub(crate) idle_after: Duration,
    /// Binds the final gate does not report: an audit scope's, bound before
    /// it began.
    pub(crate) gate_baseline: Option<Arc<Binds>>,
    /// One task end in this many is audited, per thread: 1 in `full` and
    /// `deny` (so it is handed to tl-core as is), the builder's rate otherwise
    /// (`off` installs no hook).
    pub(crate) sample_every: u32,
    pub(crate) max_entries: Option<usize>,
    pub(crate) max_bytes: Option<usize>,
    pub(crate) rate_events: u32,
    pub(crate) rate_window: Duration,
    pub(crate) thread_name: String,
    pub(crate) report_earlier_deaths: bool,
    pub(crate) dispatch: Option<Dispatch>,
    pub(crate) on_finding: Option<FindingCallback>,
    /// Keys with a metrics label of their own (feature `metrics`).
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "read by the metrics feature only")
    )]
    pub(crate) metrics_max_keys: usize,
}

/// A user's callback for every finding (see [`AuditorBuilder::on_finding`]).
#[derive(Clone)]
pub(crate) struct FindingCallback(pub(crate) Arc<dyn Fn(&Finding) + Send + Sync>);

impl core::fmt::Debug for FindingCallback {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FindingCallback")
    }
}

/// Builds and installs an [`Auditor`](crate::Auditor).
///
/// ```
/// use std::time::Duration;
/// use tl_audit::{Auditor, Mode};
///
/// let auditor = Auditor::builder()
///     .mode(Mode::Full)
///     .interval(Duration::from_millis(500))
///     .grace_period(Duration::from_secs(2))
///     .max_entries_per_thread(1_000)
///     .install()
///     .expect("valid settings, and no other auditor installed");
/// let report = auditor.finish().unwrap();
/// assert!(report.is_clean());
/// ```
///
/// Settings are checked by [`install`](Self::install), which returns a
/// [`ConfigError`] (inside [`AuditError::Config`](crate::AuditError::Config)) for a zero or absurd
/// interval, a zero sample rate or threshold, or an invalid `TL_AUDIT`.
#[derive(Clone, Debug)]
#[must_use = "nothing is audited until `install` is called"]
pub struct AuditorBuilder {
    mode: Mode,
    read_env: bool,
    interval: Option<Duration>,
    grace: Duration,
    idle_after: Duration,
    gate_baseline: Option<Arc<Binds>>,
    sample_every: u32,
    max_entries: Option<usize>,
    max_bytes: Option<usize>,
    rate_events: u32,
    rate_window: Duration,
    thread_name: String,
    report_earlier_deaths: bool,
    dispatch: Option<Dispatch>,
    on_finding: Option<FindingCallback>,
    metrics_max_keys: usize,
}

impl Default for AuditorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditorBuilder {
    /// Default scan interval.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
    /// Default grace period before a stranded value is reported.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
    /// Default [`idle_after`](Self::idle_after): a minute. Longer than the
    /// time a request may legitimately run on a thread that draws no task
    /// boundaries (load balancers and proxies commonly cut requests at 30 to
    /// 60 s), so a value seen for longer on a thread running no task was left
    /// by work that has ended; short enough that a leak shows within minutes.
    pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(60);
    /// Default sampling: one task end in this many, per thread.
    pub const DEFAULT_SAMPLE_EVERY: u32 = 128;
    /// Default rate limit: events per kind and key (per thread for growth) per window.
    pub const DEFAULT_RATE_EVENTS: u32 = 10;
    /// Default rate-limit window.
    pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
    /// Default [`metrics_max_keys`](Self::metrics_max_keys).
    pub const DEFAULT_METRICS_MAX_KEYS: usize = 50;
    /// Default name of the auditor thread.
    pub const DEFAULT_THREAD_NAME: &'static str = "tl-audit";

    /// The defaults: `sampled` (overridable by `TL_AUDIT`), a scan every
    /// second, a 5 s grace period, one task end in 128 (as Netty samples), no growth thresholds,
    /// at most 10 events per kind and key per minute.
    pub fn new() -> Self {
        Self {
            mode: Mode::default(),
            read_env: true,
            interval: Some(Self::DEFAULT_INTERVAL),
            grace: Self::DEFAULT_GRACE,
            idle_after: Self::DEFAULT_IDLE_AFTER,
            gate_baseline: None,
            sample_every: Self::DEFAULT_SAMPLE_EVERY,
            max_entries: None,
            max_bytes: None,
            rate_events: Self::DEFAULT_RATE_EVENTS,
            rate_window: Self::DEFAULT_RATE_WINDOW,
            thread_name: Self::DEFAULT_THREAD_NAME.to_owned(),
            report_earlier_deaths: true,
            dispatch: None,
            on_finding: None,
            metrics_max_keys: Self::DEFAULT_METRICS_MAX_KEYS,
        }
    }

    /// The mode, unless `TL_AUDIT` holds a valid one (see [`Mode::from_env`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Ignores `TL_AUDIT`: the builder's mode is final. Test scopes use it.
    pub fn ignore_env(mut self) -> Self {
        self.read_env = false;
        self
    }

    /// How often the auditor thread scans the registry, between 1 ms and 24 h.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// No auditor thread: scans happen only through
    /// [`Auditor::scan_now`](crate::Auditor::scan_now) (and the final scan of [`Auditor::finish`](crate::Auditor::finish)).
    /// Task ends are still audited as they happen.
    pub fn manual(mut self) -> Self {
        self.interval = None;
        self
    }

    /// How long a value may outlive its key before it is reported as
    /// stranded (at most 24 h). A thread that is merely busy drops such a
    /// value at its next bind, unbind, scope or task start; an idle pooled
    /// thread never does.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a task-scoped value may stay bound on a thread that is running
    /// no task (outside any `#[thread_local_scoped]` handler, [`task`](crate::task)
    /// or [`wrap`](crate::wrap)) before a scan reports it as unreleased
    /// ([`Detection::Idle`](crate::Detection::Idle)); at most 24 h, default
    /// [`DEFAULT_IDLE_AFTER`](Self::DEFAULT_IDLE_AFTER). This finds values
    /// left on pooled threads that draw no task boundaries (a plain std,
    /// rayon or tokio blocking pool): the thread finished the work that bound
    /// it, and the next work there can read it.
    ///
    /// A request still running after this long on such a thread, with its
    /// value bound, is reported too: make it a task (a
    /// `#[thread_local_scoped]` handler or [`task`](crate::task)) and it
    /// never is. Values on a thread that is inside a task are never reported
    /// by this check, however old; nor are per-thread keys.
    pub fn idle_after(mut self, idle_after: Duration) -> Self {
        self.idle_after = idle_after;
        self
    }

    /// The final gate leaves out these binds (an audit scope's baseline).
    pub(crate) fn gate_baseline(mut self, baseline: Binds) -> Self {
        self.gate_baseline = Some(Arc::new(baseline));
        self
    }

    /// In `sampled` mode, audit one task end in `n` on each thread (at least 1).
    pub fn sample_every(mut self, n: u32) -> Self {
        self.sample_every = n;
        self
    }

    /// Reports a thread holding more than `n` bound values (a growth finding).
    pub fn max_entries_per_thread(mut self, n: usize) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Reports a thread whose bound values retain more than `bytes` bytes.
    pub fn max_bytes_per_thread(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// At most `events` finding events per kind and key (per thread, for growth) in
    /// each window of `per`; the rest are counted, reported in the next
    /// event's `suppressed` field and in summaries, and always kept in the
    /// [`Report`](crate::Report).
    pub fn rate_limit(mut self, events: u32, per: Duration) -> Self {
        self.rate_events = events;
        self.rate_window = per;
        self
    }

    /// The auditor thread's name (default `tl-audit`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Whether to report values of keys that died before the auditor was
    /// installed (default true). Their age is measured from the first scan
    /// that sees them. Test scopes turn it off so that earlier tests' leftovers
    /// are not blamed on them.
    ///
    /// Off, the auditor tells an earlier death by its missing death notice.
    /// If more than 65,536 keys die between two scans while other threads
    /// hold their values (keys used on one thread only are not queued),
    /// tl-core drops the oldest notices; a scan that sees notices were lost
    /// then reports the
    /// stale values of keys without a notice as if this were on (the value
    /// of a key that died during the auditor's watch must not go unreported).
    pub fn report_earlier_deaths(mut self, yes: bool) -> Self {
        self.report_earlier_deaths = yes;
        self
    }

    /// Sends every event to `dispatch`, from whichever thread finds it.
    ///
    /// Without it, events go to the subscriber that is the default on the
    /// installing thread at [`install`](Self::install) time (for example
    /// one set with `tracing::subscriber::with_default`), or, if there is
    /// none, to whatever the default is where and when each event is emitted
    /// (normally the global default).
    pub fn dispatch(mut self, dispatch: Dispatch) -> Self {
        self.dispatch = Some(dispatch);
        self
    }

    /// Calls `callback` with every finding, on the thread that made it
    /// (the auditor thread for scans, the task's thread for task ends and
    /// overwrites), after the finding is counted and its event emitted or
    /// withheld: it sees the findings the rate limiter keeps out of the log
    /// too. For routing findings elsewhere (an incident hook, a test
    /// harness). It must be quick and must not wait for a pool's threads.
    ///
    /// A panic in it is caught, so it never unwinds into a pool thread or
    /// the auditor, and counted in [`Auditor::callback_panics`](crate::Auditor::callback_panics) (and, with
    /// the `metrics` feature, `tl_audit_finding_callback_panics_total`).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tl_audit::{Auditor, Finding};
    ///
    /// let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    /// let sink = Arc::clone(&seen);
    /// let auditor = Auditor::builder()
    ///     .on_finding(move |f: &Finding| sink.lock().unwrap().push(f.key_name()))
    ///     .install()
    ///     .unwrap();
    /// # drop(auditor);
    /// ```
    pub fn on_finding(mut self, callback: impl Fn(&Finding) + Send + Sync + 'static) -> Self {
        self.on_finding = Some(FindingCallback(Arc::new(callback)));
        self
    }

    /// With the `metrics` feature: how many keys get a `key` label of their
    /// own in the metrics (at least 1, default
    /// [`DEFAULT_METRICS_MAX_KEYS`](Self::DEFAULT_METRICS_MAX_KEYS)); the
    /// values of the others are summed under `key="other"`, so that a
    /// service creating keys without end cannot flood the metrics backend.
    #[cfg(feature = "metrics")]
    pub fn metrics_max_keys(mut self, n: usize) -> Self {
        self.metrics_max_keys = n;
        self
    }

    /// Validates the settings and applies `TL_AUDIT`.
    pub(crate) fn config(&self) -> Result<Config, ConfigError> {
        if let Some(interval) = self.interval {
            if !(MIN_INTERVAL..=MAX_DURATION).contains(&interval) {
                return Err(ConfigError::IntervalOutOfRange {
                    interval,
                    min: MIN_INTERVAL,
                    max: MAX_DURATION,
                });
            }
        }
        if self.grace > MAX_DURATION {
            return Err(ConfigError::GraceOutOfRange {
                grace: self.grace,
                max: MAX_DURATION,
            });
        }
        if self.metrics_max_keys == 0 {
            return Err(ConfigError::ZeroThreshold {
                setting: "metrics_max_keys",
            });
        }
        if self.idle_after > MAX_DURATION {
            return Err(ConfigError::IdleAfterOutOfRange {
                idle_after: self.idle_after,
                max: MAX_DURATION,
            });
        }
        if self.sample_every == 0 {
            return Err(ConfigError::ZeroSampleRate);
        }
        if self.max_entries == Some(0) {
            return Err(ConfigError::ZeroThreshold {
                setting: "max_entries_per_thread",
            });
        }
        if self.max_bytes == Some(0) {
            return Err(ConfigError::ZeroThreshold {
                setting: "max_bytes_per_thread",
            });
        }
        if self.rate_events == 0 || !(MIN_INTERVAL..=MAX_DURATION).contains(&self.rate_window) {
            return Err(ConfigError::RateLimitOutOfRange {
                events: self.rate_events,
                per: self.rate_window,
                min: MIN_INTERVAL,
                max: MAX_DURATION,
            });
        }
        if self.thread_name.is_empty() || self.thread_name.contains('\0') {
            return Err(ConfigError::InvalidThreadName {
                name: self.thread_name.clone(),
            });
        }
        let env = if self.read_env {
            Mode::from_env()?
        } else {
            None
        };
        let mode = env.unwrap_or(self.mode);
        Ok(Config {
            mode,
            interval: self.interval,
            grace: self.grace,
            idle_after: self.idle_after,
            gate_baseline: self.gate_baseline.clone(),
            sample_every: if mode.audits_every_task() {
                1
            } else {
                self.sample_every
            },
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            rate_events: self.rate_events,
            rate_window: self.rate_window,
            thread_name: self.thread_name.clone(),
            report_earlier_deaths: self.report_earlier_deaths,
            dispatch: self.dispatch.clone(),
            on_finding: self.on_finding.clone(),
            metrics_max_keys: self.metrics_max_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(builder: AuditorBuilder) -> ConfigError {
        builder.ignore_env().config().unwrap_err()
    }

    #[test]
    fn defaults_are_valid() {
        let config = AuditorBuilder::new().ignore_env().config().unwrap();
        assert_eq!(config.mode, Mode::Sampled);
        assert_eq!(config.sample_every, 128);
    }

    #[test]
    fn zero_and_absurd_intervals_are_refused() {
        for interval in [
            Duration::ZERO,
            Duration::from_micros(999),
            Duration::from_secs(86_401),
            Duration::MAX,
        ] {
            let e = err(AuditorBuilder::new().interval(interval));
            assert!(matches!(e, ConfigError::IntervalOutOfRange { .. }), "{e}");
            assert!(e.to_string().contains("scan interval"), "{e}");
        }
    }

    #[test]
    fn other_settings_are_checked() {
        assert!(matches!(
            err(AuditorBuilder::new().grace_period(Duration::MAX)),
            ConfigError::GraceOutOfRange { .. }
        ));
        let e = err(AuditorBuilder::new().idle_after(Duration::from_secs(86_401)));
        assert!(
            matches!(e, ConfigError::IdleAfterOutOfRange { .. })
                && e.to_string().contains("idle_after"),
            "{e}"
        );
        assert_eq!(
            err(AuditorBuilder::new().sample_every(0)),
            ConfigError::ZeroSampleRate
        );
        assert!(matches!(
            err(AuditorBuilder::new().max_entries_per_thread(0)),
            ConfigError::ZeroThreshold {
                setting: "max_entries_per_thread"
            }
        ));
        assert!(matches!(
            err(AuditorBuilder::new().max_bytes_per_thread(0)),
            ConfigError::ZeroThreshold {
                setting: "max_bytes_per_thread"
            }
        ));
        assert!(matches!(
            err(AuditorBuilder::new().rate_limit(0, Duration::from_secs(1))),
            ConfigError::RateLimitOutOfRange { .. }
        ));
        assert!(matches!(
            err(AuditorBuilder::new().rate_limit(1, Duration::ZERO)),
            ConfigError::RateLimitOutOfRange { .. }
        ));
        assert!(matches!(
            err(AuditorBuilder::new().thread_name("a\0b")),
            ConfigError::InvalidThreadName { .. }
        ));
        assert!(matches!(
            err(AuditorBuilder::new().thread_name("")),
            ConfigError::InvalidThreadName { .. }
        ));
    }

    #[test]
    fn full_and_deny_audit_every_task() {
        for mode in [Mode::Full, Mode::Deny] {
            let config = AuditorBuilder::new()
                .mode(mode)
                .sample_every(1000)
                .ignore_env()
                .config()
                .unwrap();
            assert_eq!(config.sample_every, 1);
        }
    }
}
