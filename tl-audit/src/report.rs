//! [`Report`]: the process gate's verdict.

use core::fmt;
use std::process::ExitCode;

use crate::finding::Counts;
use crate::finding::{Finding, FindingKind};
use crate::mode::Mode;
use crate::summary::Summary;

/// Everything an auditor found, from [`Auditor::finish`](crate::Auditor::finish)
/// or a failed [`AuditScope`](crate::testing::AuditScope).
///
/// Its `Display` lists every kept finding, one per line, and is what a
/// failing test scope prints.
#[derive(Clone, Debug)]
pub struct Report {
    mode: Mode,
    findings: Vec<Finding>,
    dropped: u64,
    /// Boxed: a report travels in `Result`s, and a summary is large.
    summary: Box<Summary>,
}

impl Report {
    pub(crate) fn new(mode: Mode, findings: Vec<Finding>, dropped: u64, summary: Summary) -> Self {
        Self {
            mode,
            findings,
            dropped,
            summary: Box::new(summary),
        }
    }

    /// The mode the auditor ran in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The findings, oldest first (the first 10,000; see [`dropped`](Self::dropped)).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }

    /// Findings counted but not kept, beyond the first 10,000.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Every finding counted, by kind (kept or not).
    pub fn counts(&self) -> Counts {
        self.summary.findings
    }

    /// The final summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.counts().total() == 0
    }

    /// 1 if the mode is `deny` and something was found, else 0.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.mode == Mode::Deny && !self.is_clean())
    }

    /// [`exit_status`](Self::exit_status) as a process exit code, for `main`.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.counts();
        if counts.total() == 0 {
            return f.write_str("tl-audit: no thread-local leaks found");
        }
        writeln!(
            f,
            "tl-audit: {} thread-local leak(s) found ({counts}):",
            counts.total()
        )?;
        for (i, finding) in self.findings.iter().enumerate() {
            writeln!(f, "  {}. {finding}", i + 1)?;
        }
        if self.dropped > 0 {
            writeln!(f, "  ... and {} more, not kept", self.dropped)?;
        }
        Ok(())
    }
}
