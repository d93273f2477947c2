//! [`Reported`]: what was already reported, so that nothing is reported
//! twice: each unreleased bind (by whichever detection saw it first), each
//! stranded value, each growth crossing.
//!
//! # Invariants
//! - A bind is identified by `(thread id, key id, bind_seq)` ([`Binds`]);
//!   per `(thread, key)` only the last reported bind is remembered (a key
//!   has one value per thread: once rebound, the older bind is gone).
//! - Memory is bounded: past [`MAX_REPORTED_BINDS`] pairs, a new pair is
//!   always claimed and not remembered (a bind may then be reported twice,
//!   never not at all). A thread's binds and growth crossing are forgotten
//!   when it stops or a scan no longer sees it; a stranded value, once a
//!   scan sees it reclaimed (or its thread stops).

use std::collections::{HashMap, HashSet};

/// Binds, as `(thread id, key id, bind_seq)`.
pub(crate) type Binds = HashSet<(u64, u64, u64)>;

/// `(thread, key)` pairs whose last reported unreleased bind is remembered
/// (about 50 MB at most; pairs of exited threads are forgotten at each scan).
const MAX_REPORTED_BINDS: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct Reported {
    /// thread id -> key id -> the bind last reported as unreleased, by any
    /// detection. Per thread, so that a scan looking up a thread's binds one
    /// after the other stays in one small table (a flat map of 100,000 pairs
    /// missed the cache at every lookup).
    binds: HashMap<u64, HashMap<u64, u64>>,
    /// Pairs in `binds`.
    pairs: usize,
    /// `(thread id, key id)` of stranded values already reported.
    pub(crate) stranded: HashSet<(u64, u64)>,
    /// Threads currently over a growth threshold (reported once per crossing).
    pub(crate) growth_flagged: HashSet<u64>,
}

impl Reported {
    /// Claims the report of the value of `key` bound on `thread` by the bind
    /// `bind_seq`: true the first time, false if any detection reported it.
    /// Past [`MAX_REPORTED_BINDS`] pairs, new pairs are always claimed (a
    /// bind may then be reported twice, never not at all).
    pub(crate) fn claim_bind(&mut self, thread: u64, key: u64, bind_seq: u64) -> bool {
        let full = self.pairs >= MAX_REPORTED_BINDS;
        let binds = self.binds.entry(thread).or_default();
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
                self.pairs += 1;
                true
            }
        }
    }

    /// Whether anything is remembered per thread (see
    /// [`retain_threads`](Self::retain_threads)); stranded values are
    /// forgotten with their keys instead.
    pub(crate) fn remembers_threads(&self) -> bool {
        !(self.binds.is_empty() && self.growth_flagged.is_empty())
    }

    /// Forgets the binds and growth crossings of threads not in `live`. A
    /// steady pool has nothing to forget, and then its 100,000 remembered
    /// binds are not walked: only the threads are looked up.
    pub(crate) fn retain_threads(&mut self, live: &HashSet<u64>) {
        if self.growth_flagged.is_subset(live) && self.binds.keys().all(|t| live.contains(t)) {
            return;
        }
        self.binds.retain(|t, _| live.contains(t));
        self.pairs = self.binds.values().map(HashMap::len).sum();
        self.growth_flagged.retain(|t| live.contains(t));
    }

    /// Forgets everything reported on a thread that stopped.
    pub(crate) fn forget_thread(&mut self, thread: u64) {
        if let Some(binds) = self.binds.remove(&thread) {
            self.pairs -= binds.len();
        }
        self.stranded.retain(|(t, _)| *t != thread);
        self.growth_flagged.remove(&thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bind_is_claimed_once_until_its_thread_is_forgotten() {
        let mut reported = Reported::default();
        assert!(reported.claim_bind(1, 10, 1));
        assert!(!reported.claim_bind(1, 10, 1), "the same bind again");
        assert!(reported.claim_bind(1, 10, 2), "a rebind of the key");
        assert!(reported.claim_bind(2, 10, 2), "another thread");
        reported.retain_threads(&HashSet::from([2]));
        assert_eq!(reported.pairs, 1);
        assert!(reported.claim_bind(1, 10, 2), "thread 1 was forgotten");
        reported.forget_thread(1);
        reported.forget_thread(2);
        assert_eq!(reported.pairs, 0);
        assert!(!reported.remembers_threads());
    }
}
