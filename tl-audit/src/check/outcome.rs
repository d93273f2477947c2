//! [`CheckOutcome`]: what a readable input held, and the verdict (the
//! CLI's exit status) drawn from it.

use super::totals::AuditTotals;
use crate::record::RecordedFinding;

/// A finding and the line it was read from (1-based).
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedFinding {
    /// The line number.
    pub line: usize,
    /// The finding.
    pub finding: RecordedFinding,
}

/// What a readable input held.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// Every finding event, in input order. The rate limiter may have
    /// withheld others from the log: see [`totals`](Self::totals).
    pub findings: Vec<LoggedFinding>,
    /// Lines read (blank ones included).
    pub lines: usize,
    /// Events read, of any target (JSON objects that look like
    /// `tracing-subscriber` events; other objects are not counted).
    pub events: usize,
    /// The auditors' final counts, from their shutdown summaries; `None` if
    /// the log holds none (cut short, filtered, or an auditor that never
    /// shut down).
    pub totals: Option<AuditTotals>,
}

impl CheckOutcome {
    /// 1 if anything was found (a finding event, or findings counted by a
    /// shutdown summary), else 0: the CLI's exit status.
    pub fn exit_status(&self) -> u8 {
        let counted = self.totals.is_some_and(|t| t.findings.total() > 0);
        u8::from(!self.findings.is_empty() || counted)
    }
}
