//! [`State`]: the auditor's memory, under one lock: what was reported (so
//! nothing is reported twice), the rate limiter, the tallies summaries are
//! built from, what is known of key deaths and of the tasks that left values,
//! and the findings kept for the final [`Report`](crate::Report).
//!
//! # Invariants
//! - [`record`](State::record) is the one way a finding enters: it is
//!   tallied, kept (or counted as dropped) and passed to the rate limiter
//!   together, so the three always agree on what was found.

use core::panic::Location;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::finding::Finding;
use crate::rate_limit::RateLimiter;
use crate::reported::Reported;
use crate::tally::Tallies;

/// Findings kept for the report; later ones are only counted.
const MAX_KEPT: usize = 10_000;
/// `(thread, key)` pairs whose leaving task is remembered.
const MAX_LEFT_BY: usize = 65_536;

/// The task an audited task end saw leave a value, to name it if the value
/// is later stranded, and so that a worker stop does not report it again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeftBy {
    pub(crate) task: &'static str,
    pub(crate) task_site: Option<&'static Location<'static>>,
    /// The thread's bind counter at the value's bind
    /// ([`EntrySnapshot::bind_seq`](tl_core::registry::EntrySnapshot::bind_seq)):
    /// which bind of the key on that thread this was. (`set_at` cannot tell:
    /// binds in the same tick of the coarse clock share it.)
    pub(crate) bind_seq: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    /// When each key died, from death notices (pruned once no thread holds it).
    pub(crate) died_at: HashMap<u64, Instant>,
    /// Keys seen stale without a death notice: when first seen.
    pub(crate) first_seen: HashMap<u64, Instant>,
    /// Death notices lost so far ([`DeathNotices::overflowed`](tl_core::death::DeathNotices::overflowed)),
    /// as of the last drain.
    pub(crate) notices_lost: u64,
    /// What was already reported.
    pub(crate) reported: Reported,
    /// `(thread id, key id)` -> the task seen leaving that value.
    left_by: HashMap<(u64, u64), LeftBy>,
    /// The threads with entries in `left_by`.
    remembered_threads: HashSet<u64>,
    pub(crate) rate_limiter: RateLimiter,
    pub(crate) tallies: Tallies,
    /// The first [`MAX_KEPT`] findings.
    pub(crate) kept: Vec<Finding>,
    /// Findings recorded past [`MAX_KEPT`].
    pub(crate) dropped: u64,
    pub(crate) scans: u64,
}

impl State {
    pub(crate) fn new(rate_events: u32, rate_window: Duration) -> Self {
        Self {
            died_at: HashMap::new(),
            first_seen: HashMap::new(),
            notices_lost: 0,
            reported: Reported::default(),
            left_by: HashMap::new(),
            remembered_threads: HashSet::new(),
            rate_limiter: RateLimiter::new(rate_events, rate_window),
            tallies: Tallies::default(),
            kept: Vec::new(),
            dropped: 0,
            scans: 0,
        }
    }

    /// Counts and keeps `finding`; returns `Some(suppressed)` if its event
    /// should be emitted (see [`RateLimiter::admit`]), `None` if the rate
    /// limiter withholds it.
    pub(crate) fn record(&mut self, finding: &Finding) -> Option<u64> {
        self.tallies.add(finding);
        if self.kept.len() < MAX_KEPT {
            self.kept.push(finding.clone());
        } else {
            self.dropped += 1;
        }
        self.rate_limiter.admit(finding)
    }

    /// Remembers that `left_by.task` left the value of `key` bound on `thread`
    /// by the bind `left_by.bind_seq`.
    pub(crate) fn remember_left_by(&mut self, thread: u64, key: u64, left_by: LeftBy) {
        if self.left_by.len() < MAX_LEFT_BY || self.left_by.contains_key(&(thread, key)) {
            self.left_by.insert((thread, key), left_by);
            self.remembered_threads.insert(thread);
        }
    }

    /// The task an audited task end saw leave the value of `key` bound on
    /// `thread` by the bind `bind_seq`, if one did.
    pub(crate) fn left_by(&self, thread: u64, key: u64, bind_seq: u64) -> Option<&LeftBy> {
        self.left_by
            .get(&(thread, key))
            .filter(|l| l.bind_seq == bind_seq)
    }

    /// Whether anything is remembered per thread (see [`retain_threads`](Self::retain_threads)).
    pub(crate) fn remembers_threads(&self) -> bool {
        !self.left_by.is_empty() || self.reported.remembers_threads()
    }

    /// Forgets what was remembered of threads not in `live`. A steady pool
    /// has nothing to forget, and then nothing is walked: only the threads
    /// with something remembered are looked up.
    pub(crate) fn retain_threads(&mut self, live: &HashSet<u64>) {
        if !self.remembered_threads.is_subset(live) {
            self.left_by.retain(|(t, _), _| live.contains(t));
            self.remembered_threads.retain(|t| live.contains(t));
        }
        self.reported.retain_threads(live);
    }

    /// Forgets everything about a thread that stopped.
    pub(crate) fn forget_thread(&mut self, thread: u64) {
        self.left_by.retain(|(t, _), _| *t != thread);
        self.remembered_threads.remove(&thread);
        self.reported.forget_thread(thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_core::ThreadLocal;

    #[test]
    fn a_recorded_finding_is_tallied_kept_and_rate_limited() {
        let key = ThreadLocal::<u8>::new().named("A");
        let mut state = State::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        let emits: Vec<_> = (0..3)
            .map(|_| state.record(&Finding::unreleased_on_thread_1(key.info(), t0)))
            .collect();
        assert_eq!(emits, [Some(0), Some(0), None]);
        assert_eq!(state.tallies.totals.unreleased, 3);
        assert_eq!(state.tallies.keys[&key.id()].1.unreleased, 3);
        assert_eq!(state.rate_limiter.suppressed(), 1);
        assert_eq!((state.kept.len(), state.dropped), (3, 0));
    }
}
