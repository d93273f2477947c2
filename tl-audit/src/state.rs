//! The auditor's memory: what was reported (so nothing is reported twice),
//! the rate limiter, the tallies summaries are built from, and the findings
//! kept for the final [`Report`](crate::Report).

use core::panic::Location;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tl_core::KeyInfo;
use tl_core::registry::ThreadInfo;

use crate::finding::{Finding, FindingKind};
use crate::summary::{Counts, Untallied};

/// Binds, as `(thread id, key id, bind_seq)`.
pub(crate) type Binds = HashSet<(u64, u64, u64)>;

/// Findings kept for the report; later ones are only counted.
pub(crate) const MAX_KEPT: usize = 10_000;
/// `(thread, key)` pairs whose leaving task is remembered.
const MAX_LEFT_BY: usize = 65_536;
/// `(thread, key)` pairs whose last reported unreleased bind is remembered
/// (about 50 MB at most; pairs of exited threads are forgotten at each scan).
const MAX_REPORTED_BINDS: usize = 1 << 20;
/// Threads, and keys, with their own finding tally in summaries; findings on
/// others still count in the totals (see [`State::untallied`]).
pub(crate) const MAX_TALLIED: usize = MAX_KEPT;
/// Rate-limiter entries kept with withheld events to report; past this
/// many, expired ones go even with their count (it stays in the totals).
const MAX_RATE_ENTRIES: usize = 65_536;
/// Rate-limiter size at which a finding recorded between scans prunes it
/// (task ends record findings without a scan: a manual auditor may never scan).
const RATE_PRUNE_MIN: usize = 1024;

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
    /// Death notices lost so far ([`DeathNotices::overflowed`](tl_core::death::DeathNotices::overflowed)),
    /// as of the last drain.
    pub(crate) notices_lost: u64,
    /// `(thread id, key id)` of stranded values already reported.
    pub(crate) stranded_reported: HashSet<(u64, u64)>,
    /// Threads currently over a growth threshold (reported once per crossing).
    pub(crate) growth_flagged: HashSet<u64>,
    /// `(thread id, key id)` -> the task seen leaving that value.
    pub(crate) left_by: HashMap<(u64, u64), LeftBy>,
    /// thread id -> key id -> the bind last reported as unreleased, by any
    /// detection: each bind is reported once. Per thread, so that a scan
    /// looking up a thread's binds one after the other stays in one small
    /// table (a flat map of 100,000 pairs missed the cache at every lookup).
    reported_binds: HashMap<u64, HashMap<u64, u64>>,
    /// Pairs in `reported_binds`.
    reported_pairs: usize,
    /// The threads with entries in `left_by`.
    remembered_threads: HashSet<u64>,
    rate: HashMap<RateKey, Rate>,
    rate_events: u32,
    rate_window: Duration,
    /// The rate limiter's size that makes [`record`](Self::record) prune it:
    /// twice its size after the last prune, so pruning stays amortised O(1).
    rate_prune_at: usize,
    /// [`RATE_PRUNE_MIN`] (lowered by unit tests).
    rate_prune_min: usize,
    /// Findings per thread, for the first [`MAX_TALLIED`] threads with one.
    pub(crate) thread_tally: HashMap<u64, (ThreadInfo, Counts)>,
    /// Findings per key, for the first [`MAX_TALLIED`] keys with one.
    pub(crate) key_tally: HashMap<u64, (KeyInfo, Counts)>,
    /// Findings left out of the tallies above, per thread and per key.
    pub(crate) untallied: Untallied,
    /// [`MAX_TALLIED`] (lowered by unit tests).
    max_tallied: usize,
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
            notices_lost: 0,
            stranded_reported: HashSet::new(),
            growth_flagged: HashSet::new(),
            left_by: HashMap::new(),
            reported_binds: HashMap::new(),
            reported_pairs: 0,
            remembered_threads: HashSet::new(),
            rate: HashMap::new(),
            rate_events,
            rate_window,
            rate_prune_at: RATE_PRUNE_MIN,
            rate_prune_min: RATE_PRUNE_MIN,
            thread_tally: HashMap::new(),
            key_tally: HashMap::new(),
            untallied: Untallied::default(),
            max_tallied: MAX_TALLIED,
            counts: Counts::default(),
            suppressed: 0,
            kept: Vec::new(),
            dropped: 0,
            scans: 0,
        }
    }

    /// Counts and keeps `finding`; returns `Some(suppressed)` if its event
    /// should be emitted (with the number withheld since the last one for
    /// the same kind and key, or for growth the same thread), `None` if the
    /// rate limiter withholds it.
    pub(crate) fn record(&mut self, finding: &Finding) -> Option<u64> {
        self.counts.add(finding.kind);
        let max = self.max_tallied;
        if let Some(counts) = tally(&mut self.thread_tally, max, finding.thread.id, || {
            finding.thread.clone()
        }) {
            counts.add(finding.kind);
        } else {
            self.untallied.thread_findings += 1;
        }
        if let Some(key) = finding.key {
            if let Some(counts) = tally(&mut self.key_tally, max, key.id, || key) {
                counts.add(finding.kind);
            } else {
                self.untallied.key_findings += 1;
            }
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
        let emit = if rate.emitted < self.rate_events {
            rate.emitted += 1;
            Some(core::mem::take(&mut rate.suppressed))
        } else {
            rate.suppressed += 1;
            self.suppressed += 1;
            None
        };
        if self.rate.len() > self.rate_prune_at {
            self.prune_rate(finding.found_at);
            self.rate_prune_at = (self.rate.len() * 2).max(self.rate_prune_min);
        }
        emit
    }

    /// Forgets the rate limiter's entries whose window is over at `now`
    /// (an entry is recreated by the key's next finding), except those with
    /// withheld events that the key's next event is to report, unless there
    /// are too many of those (the withheld events stay counted in the totals).
    pub(crate) fn prune_rate(&mut self, now: Instant) {
        let window = self.rate_window;
        let expired = |r: &Rate| now.saturating_duration_since(r.window_start) >= window;
        self.rate.retain(|_, r| !expired(r) || r.suppressed > 0);
        if self.rate.len() > MAX_RATE_ENTRIES {
            self.rate.retain(|_, r| !expired(r));
        }
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

    /// Claims the report of the value of `key` bound on `thread` by the bind
    /// `bind_seq`: true the first time, false if any detection reported it.
    /// Past [`MAX_REPORTED_BINDS`] pairs, new pairs are always claimed (a
    /// bind may then be reported twice, never not at all).
    pub(crate) fn claim_bind(&mut self, thread: u64, key: u64, bind_seq: u64) -> bool {
        let full = self.reported_pairs >= MAX_REPORTED_BINDS;
        let binds = self.reported_binds.entry(thread).or_default();
        match binds.get_mut(&key) {
            // The common case at every scan of a leaky service: no write.
            Some(reported) if *reported == bind_seq => false,
            Some(reported) => {
                *reported = bind_seq;
                true
            }
            None if full => true,
            None => {
                binds.insert(key, bind_seq);
                self.reported_pairs += 1;
                true
            }
        }
    }

    /// Whether anything is remembered per thread (see [`retain_threads`](Self::retain_threads)).
    pub(crate) fn remembers_threads(&self) -> bool {
        !(self.left_by.is_empty()
            && self.reported_binds.is_empty()
            && self.growth_flagged.is_empty())
    }

    /// Forgets what was remembered of threads not in `live`. A steady pool
    /// has nothing to forget, and then its 100,000 remembered binds are not
    /// walked: only the threads with something remembered are looked up.
    pub(crate) fn retain_threads(&mut self, live: &HashSet<u64>) {
        if self.remembered_threads.is_subset(live)
            && self.growth_flagged.is_subset(live)
            && self.reported_binds.keys().all(|t| live.contains(t))
        {
            return;
        }
        self.left_by.retain(|(t, _), _| live.contains(t));
        self.reported_binds.retain(|t, _| live.contains(t));
        self.reported_pairs = self.reported_binds.values().map(HashMap::len).sum();
        self.growth_flagged.retain(|t| live.contains(t));
        self.remembered_threads.retain(|t| live.contains(t));
    }

    /// Forgets everything about a thread that stopped.
    pub(crate) fn forget_thread(&mut self, thread: u64) {
        self.left_by.retain(|(t, _), _| *t != thread);
        if let Some(binds) = self.reported_binds.remove(&thread) {
            self.reported_pairs -= binds.len();
        }
        self.remembered_threads.remove(&thread);
        self.stranded_reported.retain(|(t, _)| *t != thread);
        self.growth_flagged.remove(&thread);
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

    #[test]
    fn expired_rate_entries_are_pruned_unless_they_owe_a_count() {
        let quiet = ThreadLocal::<u8>::new().named("QUIET");
        let loud = ThreadLocal::<u8>::new().named("LOUD");
        let mut state = State::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        state.record(&finding(quiet.info(), t0));
        state.record(&finding(loud.info(), t0));
        assert_eq!(state.record(&finding(loud.info(), t0)), None);
        state.prune_rate(t0 + Duration::from_secs(5));
        assert_eq!(state.rate.len(), 2, "windows still open");
        state.prune_rate(t0 + Duration::from_secs(10));
        assert_eq!(state.rate.len(), 1, "only LOUD owes a withheld count");
        assert_eq!(
            state.record(&finding(loud.info(), t0 + Duration::from_secs(11))),
            Some(1)
        );
        state.prune_rate(t0 + Duration::from_secs(30));
        assert!(state.rate.is_empty());
    }

    /// Task ends record findings without a scan: the rate limiter must not
    /// grow with every key that ever had one.
    #[test]
    fn records_between_scans_prune_the_rate_limiter() {
        let mut state = State::new(1, Duration::from_millis(10));
        let min = 16;
        (state.rate_prune_at, state.rate_prune_min) = (min, min);
        let t0 = Instant::now();
        let keys: Vec<_> = (0..8 * min).map(|_| ThreadLocal::<u8>::new()).collect();
        for (i, key) in keys.iter().enumerate() {
            // One finding per key, each in a window of its own.
            let at = t0 + Duration::from_millis(20 * i as u64);
            assert_eq!(state.record(&finding(key.info(), at)), Some(0));
            assert!(state.rate.len() <= min + 1, "{}", state.rate.len());
        }
    }

    #[test]
    fn tallies_are_capped_but_totals_count_everything() {
        let keys: Vec<_> = (0..3).map(|_| ThreadLocal::<u8>::new()).collect();
        let mut state = State::new(100, Duration::from_secs(10));
        state.max_tallied = 2;
        let t0 = Instant::now();
        for key in &keys {
            state.record(&finding(key.info(), t0));
            state.record(&finding(key.info(), t0));
        }
        assert_eq!(state.counts.unreleased, 6);
        assert_eq!(state.key_tally.len(), 2);
        assert!(!state.key_tally.contains_key(&keys[2].id()));
        assert_eq!(state.untallied.key_findings, 2);
        // One thread: tallied.
        assert_eq!(state.thread_tally[&1].1.unreleased, 6);
        assert_eq!(state.untallied.thread_findings, 0);
    }
}
