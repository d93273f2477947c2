//! The auditor's memory: what was reported (so nothing is reported twice),
//! the rate limiter, the tallies summaries are built from, and the findings
//! kept for the final [`Report`](crate::Report).

use core::panic::Location;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tl_core::KeyInfo;
use tl_core::registry::ThreadInfo;

use crate::finding::{Finding, FindingKind};
use crate::summary::Counts;

/// Findings kept for the report; later ones are only counted.
pub(crate) const MAX_KEPT: usize = 10_000;
/// `(thread, key)` pairs whose leaving task is remembered.
const MAX_LEFT_BY: usize = 65_536;

/// The task an audited task end saw leave a value, to name it if the value
/// is later stranded, and so that a worker stop does not report it again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeftBy {
    pub(crate) task: &'static str,
    pub(crate) task_site: Option<&'static Location<'static>>,
    pub(crate) set_at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RateKey {
    /// Per kind and key: a burst of one kind (unreleased values of a busy
    /// handler) must not silence the other (the same key's stranded values).
    Key(FindingKind, u64),
    Thread(u64),
}

#[derive(Debug)]
struct Rate {
    window_start: Instant,
    emitted: u32,
    suppressed: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    /// When each key died, from death notices (pruned once no thread holds it).
    pub(crate) died_at: HashMap<u64, Instant>,
    /// Keys seen stale without a death notice: when first seen.
    pub(crate) first_seen: HashMap<u64, Instant>,
    /// `(thread id, key id)` of stranded values already reported.
    pub(crate) stranded_reported: HashSet<(u64, u64)>,
    /// Threads currently over a growth threshold (reported once per crossing).
    pub(crate) growth_flagged: HashSet<u64>,
    /// `(thread id, key id)` -> the task seen leaving that value.
    pub(crate) left_by: HashMap<(u64, u64), LeftBy>,
    rate: HashMap<RateKey, Rate>,
    rate_events: u32,
    rate_window: Duration,
    pub(crate) thread_tally: HashMap<u64, (ThreadInfo, Counts)>,
    pub(crate) key_tally: HashMap<u64, (KeyInfo, Counts)>,
    pub(crate) counts: Counts,
    pub(crate) suppressed: u64,
    pub(crate) kept: Vec<Finding>,
    pub(crate) dropped: u64,
    pub(crate) scans: u64,
}

impl State {
    pub(crate) fn new(rate_events: u32, rate_window: Duration) -> Self {
        Self {
            died_at: HashMap::new(),
            first_seen: HashMap::new(),
            stranded_reported: HashSet::new(),
            growth_flagged: HashSet::new(),
            left_by: HashMap::new(),
            rate: HashMap::new(),
            rate_events,
            rate_window,
            thread_tally: HashMap::new(),
            key_tally: HashMap::new(),
            counts: Counts::default(),
            suppressed: 0,
            kept: Vec::new(),
            dropped: 0,
            scans: 0,
        }
    }

    /// Counts and keeps `finding`; returns `Some(suppressed)` if its event
    /// should be emitted (with the number withheld since the last one for
    /// the same key), `None` if the rate limiter withholds it.
    pub(crate) fn record(&mut self, finding: &Finding) -> Option<u64> {
        self.counts.add(finding.kind);
        self.thread_tally
            .entry(finding.thread.id)
            .or_insert_with(|| (finding.thread.clone(), Counts::default()))
            .1
            .add(finding.kind);
        if let Some(key) = finding.key {
            self.key_tally
                .entry(key.id)
                .or_insert_with(|| (key, Counts::default()))
                .1
                .add(finding.kind);
        }
        if self.kept.len() < MAX_KEPT {
            self.kept.push(finding.clone());
        } else {
            self.dropped += 1;
        }
        let rate_key = match (finding.kind, finding.key) {
            (FindingKind::Growth, _) | (_, None) => RateKey::Thread(finding.thread.id),
            (kind, Some(key)) => RateKey::Key(kind, key.id),
        };
        let rate = self.rate.entry(rate_key).or_insert(Rate {
            window_start: finding.found_at,
            emitted: 0,
            suppressed: 0,
        });
        if finding
            .found_at
            .saturating_duration_since(rate.window_start)
            >= self.rate_window
        {
            rate.window_start = finding.found_at;
            rate.emitted = 0;
        }
        if rate.emitted < self.rate_events {
            rate.emitted += 1;
            Some(core::mem::take(&mut rate.suppressed))
        } else {
            rate.suppressed += 1;
            self.suppressed += 1;
            None
        }
    }

    /// Remembers that `task` left the value bound at `set_at`.
    pub(crate) fn remember_left_by(&mut self, thread: u64, key: u64, left_by: LeftBy) {
        if self.left_by.len() < MAX_LEFT_BY || self.left_by.contains_key(&(thread, key)) {
            self.left_by.insert((thread, key), left_by);
        }
    }

    /// Whether an audited task end already reported the value bound at `set_at`.
    pub(crate) fn already_reported(&self, thread: u64, key: u64, set_at: Instant) -> bool {
        self.left_by
            .get(&(thread, key))
            .is_some_and(|l| l.set_at == set_at)
    }

    /// Forgets everything about a thread that stopped.
    pub(crate) fn forget_thread(&mut self, thread: u64) {
        self.left_by.retain(|(t, _), _| *t != thread);
        self.stranded_reported.retain(|(t, _)| *t != thread);
        self.growth_flagged.remove(&thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_core::ThreadLocal;

    fn finding(key: KeyInfo, at: Instant) -> Finding {
        let thread = ThreadInfo {
            id: 1,
            std_id: std::thread::current().id(),
            name: None,
        };
        let mut f = Finding::new(FindingKind::Unreleased, thread, at);
        f.key = Some(key);
        f
    }

    #[test]
    fn rate_limit_per_key_counts_suppressed() {
        let key_a = ThreadLocal::<u8>::new().named("A");
        let key_b = ThreadLocal::<u8>::new().named("B");
        let mut state = State::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(state.record(&finding(key_a.info(), t0)), Some(0));
        assert_eq!(state.record(&finding(key_a.info(), t0)), Some(0));
        assert_eq!(state.record(&finding(key_a.info(), t0)), None);
        assert_eq!(state.record(&finding(key_a.info(), t0)), None);
        // Another key has its own budget.
        assert_eq!(state.record(&finding(key_b.info(), t0)), Some(0));
        // A new window: the first event carries the withheld count.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(state.record(&finding(key_a.info(), t1)), Some(2));
        assert_eq!(state.counts.unreleased, 6);
        assert_eq!(state.suppressed, 2);
        assert_eq!(state.kept.len(), 6);
        assert_eq!(state.key_tally[&key_a.id()].1.unreleased, 5);
    }
}
