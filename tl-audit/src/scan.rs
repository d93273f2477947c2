//! The scan's analysis: from registry snapshots to stranded and growth
//! findings. Pure (no clock, no registry, no events), so it is deterministic
//! and testable: ages are measured against each snapshot's `taken_at`.
//!
//! Besides stranded values and growth, a scan reports task-scoped values held
//! by threads that are running no task ([`Detection::Idle`]): bound longer
//! than [`Config::idle_after`], or, in the final [`Gate`], whatever their age.
//!
//! A scan digests one thread's snapshot at a time and drops it before
//! taking the next, so it reuses one buffer instead of holding every
//! thread's entries at once (100,000 entries would be ~8 MB of fresh pages
//! per scan); only the digests, and the rare stale entries, are kept.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[cfg(test)]
use tl_core::registry::ThreadSnapshot;
use tl_core::registry::{EntrySnapshot, ThreadInfo, ThreadRef};
use tl_core::{KeyInfo, Policy};

use crate::config::Config;
use crate::detection::Detection;
use crate::finding::{Finding, FindingKind};
use crate::reported::Binds;
use crate::state::State;

/// Per-key totals of one scan, for metrics: key id -> (key, values held,
/// bytes held), live keys only.
pub(crate) type KeyTotals = HashMap<u64, (KeyInfo, usize, usize)>;

/// Which idle-held values a scan reports.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Gate<'a> {
    /// A periodic scan: those bound longer than `idle_after`.
    Periodic,
    /// The final gate: all of them, whatever their age, except the binds
    /// in the baseline (an audit scope's: bound before it began).
    Final(Option<&'a Binds>),
}

impl Gate<'_> {
    /// The minimum age of a reported idle-held value (`None`: any age).
    pub(crate) fn min_age(self, config: &Config) -> Option<Duration> {
        match self {
            Self::Periodic => Some(config.idle_after),
            Self::Final(_) => None,
        }
    }
}

/// Every bound task-scoped value of a live key on every registered thread
/// now: an audit scope's baseline.
pub(crate) fn bound_binds() -> Binds {
    let mut binds = Binds::new();
    for thread in tl_core::registry::threads() {
        let tid = thread.info().id;
        thread.for_each_entry(|e| {
            if is_task_scoped_value(e) {
                binds.insert((tid, e.key.id, e.bind_seq));
            }
        });
    }
    binds
}

fn is_task_scoped_value(e: &EntrySnapshot) -> bool {
    e.bound && e.key.alive && e.key.policy == Policy::TaskScoped
}

/// What one scan saw.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ScanStats {
    /// Live threads scanned.
    pub threads: usize,
    /// Bound values on them.
    pub bound: usize,
    /// Bytes those values retain.
    pub bytes: usize,
    /// Bound values of dead keys (stranded or not yet past the grace period).
    pub stale: usize,
    /// Bytes those values of dead keys retain.
    pub stale_bytes: usize,
}

/// What the analysis needs of one live thread's snapshot.
#[derive(Clone, Debug)]
pub(crate) struct ThreadDigest {
    thread: ThreadInfo,
    taken_at: Instant,
    bound: usize,
    bytes: usize,
    /// The bound value retaining the most bytes.
    largest: Option<EntrySnapshot>,
    /// Bound values of dead keys.
    stale: Vec<EntrySnapshot>,
    /// The thread was running no task before and after the visit.
    idle: bool,
    /// Task-scoped values of live keys old enough to report if `idle`.
    held: Vec<EntrySnapshot>,
    /// The minimum age of `held` values (`None`: all of them).
    min_age: Option<Duration>,
}

impl ThreadDigest {
    fn new(thread: ThreadInfo, taken_at: Instant) -> Self {
        Self {
            thread,
            taken_at,
            bound: 0,
            bytes: 0,
            largest: None,
            stale: Vec::new(),
            idle: false,
            held: Vec::new(),
            min_age: None,
        }
    }

    fn add(&mut self, e: &EntrySnapshot) {
        if !e.bound {
            return;
        }
        self.bound += 1;
        self.bytes += e.bytes;
        if self.largest.is_none_or(|l| e.bytes > l.bytes) {
            self.largest = Some(*e);
        }
        if !e.key.alive {
            self.stale.push(*e);
        } else if is_task_scoped_value(e)
            && self.min_age.is_none_or(|min| e.age(self.taken_at) >= min)
        {
            self.held.push(*e);
        }
    }

    /// `None` for a thread that exited (its values are gone).
    #[cfg(test)]
    pub(crate) fn of(snap: &ThreadSnapshot, idle: bool, min_age: Option<Duration>) -> Option<Self> {
        if !snap.alive {
            return None;
        }
        let mut digest = Self::new(snap.thread.clone(), snap.taken_at);
        digest.min_age = min_age;
        snap.entries.iter().for_each(|e| digest.add(e));
        digest.idle = idle;
        Some(digest)
    }

    /// Digests a live thread in place, entry by entry, without copying its
    /// entries out; `None` for a thread that exited. Idle-held values are
    /// collected only if older than `min_age` (all with `None`).
    ///
    /// With `totals`, also adds each live key's values and bytes there.
    pub(crate) fn visit(
        thread: &ThreadRef,
        min_age: Option<Duration>,
        mut totals: Option<&mut KeyTotals>,
    ) -> Option<Self> {
        let mut digest = Self::new(thread.info().clone(), Instant::now());
        digest.min_age = min_age;
        // Out of a task both before and after: a task that began in between
        // bound its values after `taken_at`, and they are too young to report
        // unless this is the final gate, which runs when the work is over.
        let idle_before = !thread.in_task();
        thread.for_each_entry(|e| {
            digest.add(e);
            if let Some(totals) = totals.as_deref_mut().filter(|_| e.bound && e.key.alive) {
                let total = totals.entry(e.key.id).or_insert((e.key, 0, 0));
                total.1 += 1;
                total.2 += e.bytes;
            }
        });
        digest.idle = idle_before && !thread.in_task();
        if !digest.idle {
            digest.held = Vec::new();
        }
        thread.is_alive().then_some(digest)
    }
}

/// Finds stranded values and growth in `digests`, updating `state`'s
/// memory of what was reported. Returns the new findings, not yet recorded.
///
/// `notices_lost`: death notices were lost since the last scan, so a stale
/// value whose key has no notice may have died during this auditor's watch
/// (it is then aged from this scan even when earlier deaths are not
/// reported).
pub(crate) fn analyze(
    state: &mut State,
    config: &Config,
    digests: &[ThreadDigest],
    notices_lost: bool,
    gate: Gate<'_>,
) -> (Vec<Finding>, ScanStats) {
    let mut findings = Vec::new();
    let mut stats = ScanStats::default();
    let mut stale_pairs = HashSet::new();
    let mut stale_keys = HashSet::new();
    for d in digests {
        stats.threads += 1;
        stats.bound += d.bound;
        stats.bytes += d.bytes;
        stats.stale += d.stale.len();
        stats.stale_bytes += d.stale.iter().map(|e| e.bytes).sum::<usize>();
        let tid = d.thread.id;
        for e in &d.stale {
            let kid = e.key.id;
            stale_pairs.insert((tid, kid));
            stale_keys.insert(kid);
            let died = match (state.died_at.get(&kid), state.first_seen.get(&kid)) {
                (Some(died), _) | (None, Some(died)) => *died,
                // No notice: the key died before the auditor subscribed, or
                // its notice was lost to an overflow of the notice queue
                // (then it cannot be told from an earlier death: both are
                // aged from now).
                (None, None) if config.report_earlier_deaths || notices_lost => {
                    state.first_seen.insert(kid, d.taken_at);
                    d.taken_at
                }
                (None, None) => continue,
            };
            let dead_for = d.taken_at.saturating_duration_since(died);
            if dead_for < config.grace || !state.reported.stranded.insert((tid, kid)) {
                continue;
            }
            let mut f = Finding::new(FindingKind::Stranded, d.thread.clone(), d.taken_at);
            f.key = Some(e.key);
            f.bytes = e.bytes;
            f.age = Some(e.age(d.taken_at));
            f.dead_for = Some(dead_for);
            f.set_site = e.set_site;
            if let Some(left) = state.left_by(tid, kid, e.bind_seq) {
                f.task = Some(left.task);
                f.task_site = left.task_site;
            }
            findings.push(f);
        }
        if d.idle {
            idle_held(state, d, gate, &mut findings);
        }
        let over = config.max_entries.is_some_and(|max| d.bound > max)
            || config.max_bytes.is_some_and(|max| d.bytes > max);
        if !over {
            state.reported.growth_flagged.remove(&tid);
        } else if state.reported.growth_flagged.insert(tid) {
            let mut f = Finding::new(FindingKind::Growth, d.thread.clone(), d.taken_at);
            f.bytes = d.bytes;
            f.entries = Some(d.bound);
            f.max_entries = config.max_entries;
            f.max_bytes = config.max_bytes;
            if let Some(e) = d.largest {
                f.key = Some(e.key);
                f.key_bytes = Some(e.bytes);
                f.age = Some(e.age(d.taken_at));
                f.set_site = e.set_site;
            }
            findings.push(f);
        }
    }
    // Dead keys' values cannot come back: forget what is gone.
    state.reported.stranded.retain(|p| stale_pairs.contains(p));
    state.died_at.retain(|k, _| stale_keys.contains(k));
    state.first_seen.retain(|k, _| stale_keys.contains(k));
    if state.remembers_threads() {
        let live: HashSet<u64> = digests.iter().map(|d| d.thread.id).collect();
        state.retain_threads(&live);
    }
    state.scans += 1;
    (findings, stats)
}

/// Reports `d`'s idle-held values not reported before.
fn idle_held(state: &mut State, d: &ThreadDigest, gate: Gate<'_>, findings: &mut Vec<Finding>) {
    let (found_by, baseline) = match gate {
        Gate::Periodic => (Detection::Idle, None),
        Gate::Final(baseline) => (Detection::Gate, baseline),
    };
    let tid = d.thread.id;
    for e in &d.held {
        let kid = e.key.id;
        if baseline.is_some_and(|b| b.contains(&(tid, kid, e.bind_seq)))
            || !state.reported.claim_bind(tid, kid, e.bind_seq)
        {
            continue;
        }
        let mut f = Finding::new(FindingKind::Unreleased, d.thread.clone(), d.taken_at);
        f.found_by = found_by;
        f.key = Some(e.key);
        f.bytes = e.bytes;
        f.age = Some(e.age(d.taken_at));
        f.set_site = e.set_site;
        f.by_initializer = e.by_initializer;
        findings.push(f);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tl_core::ThreadLocal;
    use tl_core::registry::{ThreadInfo, ThreadSnapshot};

    use super::*;
    use crate::config::AuditorBuilder;

    /// A periodic scan's findings, with no death notice lost.
    fn periodic(state: &mut State, config: &Config, digests: &[ThreadDigest]) -> Vec<Finding> {
        analyze(state, config, digests, false, Gate::Periodic).0
    }

    fn snapshot(entries: Vec<EntrySnapshot>, taken_at: Instant) -> ThreadDigest {
        ThreadDigest::of(
            &ThreadSnapshot {
                thread: ThreadInfo {
                    id: 7,
                    std_id: std::thread::current().id(),
                    name: Some("pool-1".into()),
                },
                alive: true,
                entries,
                taken_at,
            },
            false,
            None,
        )
        .unwrap()
    }

    fn entry(key: &ThreadLocal<u64>, alive: bool, bytes: usize, set_at: Instant) -> EntrySnapshot {
        let mut info = key.info();
        info.alive = alive;
        EntrySnapshot {
            key: info,
            bound: true,
            bytes,
            set_site: None,
            by_initializer: false,
            set_at,
            bind_seq: 1,
        }
    }

    #[test]
    fn stranded_after_grace_once() {
        let key = ThreadLocal::<u64>::new().named("K");
        let config = AuditorBuilder::new()
            .grace_period(Duration::from_secs(5))
            .ignore_env()
            .config()
            .unwrap();
        let mut state = State::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        state.died_at.insert(key.id(), t0);
        let e = entry(&key, false, 8, t0);
        // Within the grace period: nothing.
        let (f, stats) = analyze(
            &mut state,
            &config,
            &[snapshot(vec![e], t0 + Duration::from_secs(4))],
            false,
            Gate::Periodic,
        );
        assert!(f.is_empty());
        assert_eq!(stats.stale, 1);
        // Past it: reported once.
        let (f, _) = analyze(
            &mut state,
            &config,
            &[snapshot(vec![e], t0 + Duration::from_secs(5))],
            false,
            Gate::Periodic,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::Stranded);
        assert_eq!(f[0].dead_for, Some(Duration::from_secs(5)));
        let (f, _) = analyze(
            &mut state,
            &config,
            &[snapshot(vec![e], t0 + Duration::from_secs(9))],
            false,
            Gate::Periodic,
        );
        assert!(f.is_empty());
        // Reclaimed: forgotten.
        let (f, _) = analyze(
            &mut state,
            &config,
            &[snapshot(vec![], t0 + Duration::from_secs(10))],
            false,
            Gate::Periodic,
        );
        assert!(f.is_empty());
        assert!(state.died_at.is_empty() && state.reported.stranded.is_empty());
    }

    #[test]
    fn earlier_deaths_are_measured_from_first_sight_or_ignored() {
        let key = ThreadLocal::<u64>::new();
        let t0 = Instant::now();
        let e = entry(&key, false, 8, t0);
        let builder = AuditorBuilder::new()
            .grace_period(Duration::from_secs(1))
            .ignore_env();
        let mut state = State::new(10, Duration::from_secs(60));
        let config = builder.clone().config().unwrap();
        assert!(periodic(&mut state, &config, &[snapshot(vec![e], t0)]).is_empty());
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            periodic(&mut state, &config, &[snapshot(vec![e], later)]).len(),
            1
        );

        let mut state = State::new(10, Duration::from_secs(60));
        let config = builder.report_earlier_deaths(false).config().unwrap();
        assert!(periodic(&mut state, &config, &[snapshot(vec![e], t0)]).is_empty());
        assert!(periodic(&mut state, &config, &[snapshot(vec![e], later)]).is_empty());
    }

    #[test]
    fn growth_once_per_crossing() {
        let keys: Vec<ThreadLocal<u64>> = (0..3).map(|_| ThreadLocal::new()).collect();
        let t0 = Instant::now();
        let config = AuditorBuilder::new()
            .max_entries_per_thread(2)
            .ignore_env()
            .config()
            .unwrap();
        let mut state = State::new(10, Duration::from_secs(60));
        let three: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| entry(k, true, 8 + i, t0))
            .collect();
        let (f, _) = analyze(
            &mut state,
            &config,
            &[snapshot(three.clone(), t0)],
            false,
            Gate::Periodic,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].entries, Some(3));
        assert_eq!(f[0].bytes, 8 + 9 + 10);
        assert_eq!(f[0].key.map(|k| k.id), Some(keys[2].id()));
        assert!(periodic(&mut state, &config, &[snapshot(three.clone(), t0)]).is_empty());
        assert!(periodic(&mut state, &config, &[snapshot(three[..2].to_vec(), t0)]).is_empty());
        assert_eq!(
            periodic(&mut state, &config, &[snapshot(three, t0)]).len(),
            1
        );
    }
}
