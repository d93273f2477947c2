//! [`Summary`]: per thread and per key, what is held now and what was found.

use core::fmt;
use std::collections::{HashMap, HashSet};

use tl_core::KeyInfo;
use tl_core::registry::{ThreadInfo, ThreadSnapshot};

use crate::finding::Counts;
use crate::tally::Tallies;

/// One thread in a [`Summary`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ThreadSummary {
    /// The thread.
    pub thread: ThreadInfo,
    /// False if the thread has exited (it only appears for its findings).
    pub alive: bool,
    /// Values bound on it now.
    pub bound: usize,
    /// Bytes those values retain.
    pub bytes: usize,
    /// Bound values of dead keys (stranded, or about to be reclaimed).
    pub stale: usize,
    /// Bytes those retain.
    pub stale_bytes: usize,
    /// Findings on this thread since the auditor was installed.
    pub findings: Counts,
}

/// One key in a [`Summary`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeySummary {
    /// The key.
    pub key: KeyInfo,
    /// Threads holding a value for it now.
    pub holders: usize,
    /// Of those, threads holding it although the key is dead.
    pub stale_holders: usize,
    /// Bytes retained by its values now, over all threads.
    pub bytes: usize,
    /// Findings for this key since the auditor was installed.
    pub findings: Counts,
}

/// What is held now, per thread and per key, with the findings so far.
/// Threads and keys are sorted by retained bytes, largest first.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Summary {
    /// Every registered thread, and exited threads that had findings.
    pub threads: Vec<ThreadSummary>,
    /// Every key with a bound value or a finding.
    pub keys: Vec<KeySummary>,
    /// Findings since the auditor was installed.
    pub findings: Counts,
    /// Finding events withheld by the rate limiter (the findings still count).
    pub suppressed: u64,
    /// Findings on threads left out of [`threads`](Self::threads): the
    /// auditor tallies findings for the first 10,000 threads that have one
    /// (keeping memory bounded in a process that keeps starting threads);
    /// later threads' findings count only in [`findings`](Self::findings).
    pub untallied_thread_findings: u64,
    /// Findings for keys left out of [`keys`](Self::keys), likewise past the
    /// first 10,000 keys with a finding.
    pub untallied_key_findings: u64,
}

impl Summary {
    /// Values bound on all threads.
    pub fn bound(&self) -> usize {
        self.threads.iter().map(|t| t.bound).sum()
    }

    /// Bytes retained by all bound values.
    pub fn bytes(&self) -> usize {
        self.threads.iter().map(|t| t.bytes).sum()
    }

    /// Threads holding at least one value.
    pub fn holding_threads(&self) -> usize {
        self.threads.iter().filter(|t| t.bound > 0).count()
    }

    /// Bound values of dead keys.
    pub fn stale(&self) -> usize {
        self.threads.iter().map(|t| t.stale).sum()
    }

    /// Builds a summary from snapshots and the finding tallies, with the
    /// number of events the rate limiter withheld.
    pub(crate) fn build(snapshots: &[ThreadSnapshot], tallies: &Tallies, suppressed: u64) -> Self {
        let (thread_tally, key_tally) = (&tallies.threads, &tallies.keys);
        let mut threads = Vec::with_capacity(snapshots.len());
        let mut keys: HashMap<u64, KeySummary> = HashMap::new();
        for snap in snapshots {
            let mut t = ThreadSummary {
                thread: snap.thread.clone(),
                alive: snap.alive,
                bound: 0,
                bytes: 0,
                stale: 0,
                stale_bytes: 0,
                findings: thread_tally
                    .get(&snap.thread.id)
                    .map(|(_, c)| *c)
                    .unwrap_or_default(),
            };
            for e in snap.bound() {
                t.bound += 1;
                t.bytes += e.bytes;
                let stale = e.is_stale();
                if stale {
                    t.stale += 1;
                    t.stale_bytes += e.bytes;
                }
                let k = keys.entry(e.key.id).or_insert_with(|| KeySummary {
                    key: e.key,
                    holders: 0,
                    stale_holders: 0,
                    bytes: 0,
                    findings: Counts::default(),
                });
                k.holders += 1;
                k.stale_holders += usize::from(stale);
                k.bytes += e.bytes;
            }
            threads.push(t);
        }
        let registered: HashSet<u64> = snapshots.iter().map(|s| s.thread.id).collect();
        for (id, (info, counts)) in thread_tally {
            if !registered.contains(id) {
                threads.push(ThreadSummary {
                    thread: info.clone(),
                    alive: false,
                    bound: 0,
                    bytes: 0,
                    stale: 0,
                    stale_bytes: 0,
                    findings: *counts,
                });
            }
        }
        for (id, (info, counts)) in key_tally {
            keys.entry(*id)
                .or_insert_with(|| KeySummary {
                    key: *info,
                    holders: 0,
                    stale_holders: 0,
                    bytes: 0,
                    findings: Counts::default(),
                })
                .findings = *counts;
        }
        let mut keys: Vec<_> = keys.into_values().collect();
        threads.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.thread.id.cmp(&b.thread.id)));
        keys.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.key.id.cmp(&b.key.id)));
        Self {
            threads,
            keys,
            findings: tallies.totals,
            suppressed,
            untallied_thread_findings: tallies.untallied.thread_findings,
            untallied_key_findings: tallies.untallied.key_findings,
        }
    }
}

impl fmt::Display for Summary {
    /// A plain-text table of threads and keys with values or findings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} finding(s) ({}); {} thread(s) hold {} value(s) retaining {} bytes, {} for dead keys",
            self.findings.total(),
            self.findings,
            self.holding_threads(),
            self.bound(),
            self.bytes(),
            self.stale()
        )?;
        let threads: Vec<_> = self
            .threads
            .iter()
            .filter(|t| t.bound > 0 || t.findings.total() > 0)
            .collect();
        if !threads.is_empty() {
            writeln!(
                f,
                "  {:<24} {:>6} {:>10} {:>6} {:>9}",
                "THREAD", "VALUES", "BYTES", "STALE", "FINDINGS"
            )?;
            for t in threads {
                let name = format!("{} (#{})", t.thread.display_name(), t.thread.id);
                writeln!(
                    f,
                    "  {name:<24} {:>6} {:>10} {:>6} {:>9}",
                    t.bound,
                    t.bytes,
                    t.stale,
                    t.findings.total()
                )?;
            }
        }
        if self.untallied_thread_findings > 0 {
            writeln!(
                f,
                "  ... and {} finding(s) on threads not listed (past 10,000 threads with findings)",
                self.untallied_thread_findings
            )?;
        }
        if !self.keys.is_empty() {
            writeln!(
                f,
                "  {:<40} {:>7} {:>10} {:>6} {:>9}",
                "KEY", "HOLDERS", "BYTES", "STALE", "FINDINGS"
            )?;
            for k in &self.keys {
                writeln!(
                    f,
                    "  {:<40} {:>7} {:>10} {:>6} {:>9}",
                    k.key.display_name(),
                    k.holders,
                    k.bytes,
                    k.stale_holders,
                    k.findings.total()
                )?;
            }
        }
        if self.untallied_key_findings > 0 {
            writeln!(
                f,
                "  ... and {} finding(s) for keys not listed (past 10,000 keys with findings)",
                self.untallied_key_findings
            )?;
        }
        Ok(())
    }
}
