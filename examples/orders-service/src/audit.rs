//! [`AuditSettings`]: how the demo configures tl-audit's auditor.

use std::time::Duration;

use tl_audit::{AuditError, Auditor, Mode};

/// The auditor's settings for one run.
#[derive(Clone, Copy, Debug)]
pub struct AuditSettings {
    /// The mode asked for (`TL_AUDIT` overrides it when `honor_env`).
    pub mode: Mode,
    /// Whether `TL_AUDIT` may override [`mode`](Self::mode), as tl-audit
    /// does by default. Tests turn it off to be deterministic.
    pub honor_env: bool,
    /// Time between background scans for stranded values.
    pub interval: Duration,
    /// How long a dead key's value may sit on a thread before it is reported
    /// as stranded. Also the rate limiter's window (see [`install`](Self::install)).
    pub grace: Duration,
    /// Events per kind and key per window; the rest are counted, not logged.
    pub events_per_window: u32,
}

impl AuditSettings {
    /// The demo's settings: scans every 100 ms, a 1 s grace period, at most
    /// 4 events per kind and key per second (one per pooled thread).
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            honor_env: true,
            interval: Duration::from_millis(100),
            grace: Duration::from_secs(1),
            events_per_window: 4,
        }
    }

    /// Installs the auditor.
    ///
    /// The rate limiter's budget is per kind and key, so a key's many
    /// unreleased findings never withhold its stranded ones; its window is
    /// the grace period, so each reload's stranded values are logged.
    ///
    /// # Errors
    /// If another auditor is installed, or `TL_AUDIT` is invalid.
    pub fn install(&self) -> Result<Auditor, AuditError> {
        let builder = Auditor::builder()
            .mode(self.mode)
            .interval(self.interval)
            .grace_period(self.grace)
            .rate_limit(self.events_per_window, self.grace);
        if self.honor_env {
            builder.install()
        } else {
            builder.ignore_env().install()
        }
    }

    /// How long to wait after a reload before the last scan: the grace
    /// period, and two scan intervals for good measure.
    pub fn settle_time(&self) -> Duration {
        self.grace + 2 * self.interval
    }
}
