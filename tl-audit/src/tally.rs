//! [`Tallies`]: findings counted by kind, in total, per thread and per key,
//! for summaries and [`Auditor::counts`](crate::Auditor::counts).
//!
//! # Invariants
//! - Every finding counts in [`totals`](Tallies::totals), whatever else.
//! - Memory is bounded in a process that keeps starting threads or making
//!   keys: only the first [`MAX_TALLIED`] threads, and keys, with a finding
//!   get a tally of their own; findings on the others count in
//!   [`untallied`](Tallies::untallied) instead, so that per thread (and per
//!   key) the tallied and untallied findings add up to the totals.

use std::collections::HashMap;

use tl_core::KeyInfo;
use tl_core::registry::ThreadInfo;

use crate::finding::{Counts, Finding};

/// Threads, and keys, with their own finding tally (the figure
/// [`Summary`](crate::Summary)'s docs give).
const MAX_TALLIED: usize = 10_000;

/// Findings that count in the totals but in no per-thread or per-key tally
/// (past [`MAX_TALLIED`] tallied threads or keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Untallied {
    pub(crate) thread_findings: u64,
    pub(crate) key_findings: u64,
}

#[derive(Debug)]
pub(crate) struct Tallies {
    /// Every finding since installation, by kind.
    pub(crate) totals: Counts,
    /// Findings per thread, for the first [`MAX_TALLIED`] threads with one.
    pub(crate) threads: HashMap<u64, (ThreadInfo, Counts)>,
    /// Findings per key, for the first [`MAX_TALLIED`] keys with one.
    pub(crate) keys: HashMap<u64, (KeyInfo, Counts)>,
    /// Findings left out of the tallies above, per thread and per key.
    pub(crate) untallied: Untallied,
    /// [`MAX_TALLIED`] (lowered by unit tests).
    max_tallied: usize,
}

impl Default for Tallies {
    fn default() -> Self {
        Self {
            totals: Counts::default(),
            threads: HashMap::new(),
            keys: HashMap::new(),
            untallied: Untallied::default(),
            max_tallied: MAX_TALLIED,
        }
    }
}

impl Tallies {
    /// Counts `finding` in the totals, and on its thread and key.
    pub(crate) fn add(&mut self, finding: &Finding) {
        self.totals.add(finding.kind);
        let max = self.max_tallied;
        if let Some(counts) = tally(&mut self.threads, max, finding.thread.id, || {
            finding.thread.clone()
        }) {
            counts.add(finding.kind);
        } else {
            self.untallied.thread_findings += 1;
        }
        if let Some(key) = finding.key {
            if let Some(counts) = tally(&mut self.keys, max, key.id, || key) {
                counts.add(finding.kind);
            } else {
                self.untallied.key_findings += 1;
            }
        }
    }
}

/// `id`'s counts in `tally`, added (named by `info`) if it has fewer than
/// `max` entries.
fn tally<I>(
    tally: &mut HashMap<u64, (I, Counts)>,
    max: usize,
    id: u64,
    info: impl FnOnce() -> I,
) -> Option<&mut Counts> {
    if tally.len() >= max && !tally.contains_key(&id) {
        return None;
    }
    Some(
        &mut tally
            .entry(id)
            .or_insert_with(|| (info(), Counts::default()))
            .1,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use tl_core::ThreadLocal;

    #[test]
    fn tallies_are_capped_but_totals_count_everything() {
        let keys: Vec<_> = (0..3).map(|_| ThreadLocal::<u8>::new()).collect();
        let mut tallies = Tallies {
            max_tallied: 2,
            ..Tallies::default()
        };
        let t0 = Instant::now();
        for key in &keys {
            tallies.add(&Finding::unreleased_on_thread_1(key.info(), t0));
            tallies.add(&Finding::unreleased_on_thread_1(key.info(), t0));
        }
        assert_eq!(tallies.totals.unreleased, 6);
        assert_eq!(tallies.keys.len(), 2);
        assert!(!tallies.keys.contains_key(&keys[2].id()));
        assert_eq!(tallies.untallied.key_findings, 2);
        // One thread: tallied.
        assert_eq!(tallies.threads[&1].1.unreleased, 6);
        assert_eq!(tallies.untallied.thread_findings, 0);
    }
}
