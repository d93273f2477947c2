//! [`AuditTotals`]: the auditors' final counts, read from the `total` event
//! of each shutdown summary and cross-checked, then summed.
//!
//! A verdict rests on these counts, so a count that is missing or not a
//! non-negative integer, or counts by kind that do not add up to
//! `findings`, make the summary untrustworthy (an error), never 0.

use core::fmt;

use serde_json::{Map, Value};

use crate::finding::Counts;

/// The counts of the auditors' shutdown summaries in a log (summed, if
/// several auditors ran one after the other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditTotals {
    /// Shutdown summaries read: one per auditor that shut down.
    pub summaries: usize,
    /// Findings counted, by kind, whether or not their event was logged.
    pub findings: Counts,
    /// Finding events withheld from the log by the rate limiter.
    pub suppressed: u64,
}

/// One shutdown summary's counts, cross-checked.
#[derive(Clone, Copy, Debug)]
pub(super) struct SummaryCounts {
    pub(super) findings: Counts,
    pub(super) suppressed: u64,
}

impl SummaryCounts {
    /// Reads the counts from a shutdown summary's `total` event's fields;
    /// `Err` names the field at fault.
    pub(super) fn read(fields: &Map<String, Value>) -> Result<Self, &'static str> {
        let count = |name: &'static str| fields.get(name).and_then(Value::as_u64).ok_or(name);
        let findings = Counts {
            stranded: count("stranded")?,
            unreleased: count("unreleased")?,
            growth: count("growth")?,
        };
        if count("findings")? != findings.total() {
            return Err("findings");
        }
        Ok(Self {
            findings,
            suppressed: count("suppressed")?,
        })
    }
}

impl AuditTotals {
    /// Adds one more auditor's summary; counts saturate rather than wrap.
    pub(super) fn add(&mut self, summary: SummaryCounts) {
        self.summaries += 1;
        let sum = &mut self.findings;
        sum.stranded = sum.stranded.saturating_add(summary.findings.stranded);
        sum.unreleased = sum.unreleased.saturating_add(summary.findings.unreleased);
        sum.growth = sum.growth.saturating_add(summary.findings.growth);
        self.suppressed = self.suppressed.saturating_add(summary.suppressed);
    }
}

impl fmt::Display for AuditTotals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.summaries == 1 {
            f.write_str("the auditor's shutdown summary")?;
        } else {
            write!(f, "{} auditors' shutdown summaries", self.summaries)?;
        }
        write!(
            f,
            ": {} finding(s) in total ({}), {} event(s) withheld by the rate limiter",
            self.findings.total(),
            self.findings,
            self.suppressed
        )
    }
}
