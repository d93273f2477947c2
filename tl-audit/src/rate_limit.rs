//! [`RateLimiter`]: which finding events are emitted and which are withheld,
//! per kind and key (per thread for growth), so a burst of one leak cannot
//! flood the log. Findings it withholds still count everywhere else.
//!
//! # Invariants
//! - In each window of `window` per [`RateKey`], at most `events` events
//!   are let through; every later one is withheld and counted, and the key's
//!   next event carries that count (the `suppressed` field).
//! - Pruning stays amortised O(1) per finding: [`admit`](RateLimiter::admit)
//!   prunes only once the table has doubled since the last prune.
//! - An entry is forgotten only once its window is over; one that owes a
//!   withheld count is kept, unless more than [`MAX_OWING`] entries are left
//!   (their counts stay in [`suppressed`](RateLimiter::suppressed)).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::finding::{Finding, FindingKind};

/// Entries kept with withheld events to report; past this many, expired
/// ones go even with their count (it stays in the totals).
const MAX_OWING: usize = 65_536;
/// Table size at which a finding admitted between scans prunes it (task
/// ends record findings without a scan: a manual auditor may never scan).
const PRUNE_MIN: usize = 1024;

/// What one budget of events is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RateKey {
    /// Per kind and key: a burst of one kind (unreleased values of a busy
    /// handler) must not silence the other (the same key's stranded values).
    Key(FindingKind, u64),
    Thread(u64),
}

impl RateKey {
    fn of(finding: &Finding) -> Self {
        match (finding.kind, finding.key) {
            (FindingKind::Growth, _) | (_, None) => Self::Thread(finding.thread.id),
            (kind, Some(key)) => Self::Key(kind, key.id),
        }
    }
}

/// One [`RateKey`]'s current window.
#[derive(Debug)]
struct Window {
    start: Instant,
    /// Events let through since `start`.
    emitted: u32,
    /// Events withheld since the last one let through.
    suppressed: u64,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    windows: HashMap<RateKey, Window>,
    /// Events let through per window and key.
    events: u32,
    window: Duration,
    /// The table's size that makes [`admit`](Self::admit) prune it: twice
    /// its size after the last prune.
    prune_at: usize,
    /// [`PRUNE_MIN`] (lowered by unit tests).
    prune_min: usize,
    /// Events withheld since installation.
    suppressed: u64,
}

impl RateLimiter {
    /// At most `events` events per `window` and key.
    pub(crate) fn new(events: u32, window: Duration) -> Self {
        Self {
            windows: HashMap::new(),
            events,
            window,
            prune_at: PRUNE_MIN,
            prune_min: PRUNE_MIN,
            suppressed: 0,
        }
    }

    /// Returns `Some(suppressed)` if `finding`'s event should be emitted
    /// (with the number withheld since the last one for the same kind and
    /// key, or for growth the same thread), `None` if it is withheld.
    pub(crate) fn admit(&mut self, finding: &Finding) -> Option<u64> {
        let now = finding.found_at;
        let window = self.windows.entry(RateKey::of(finding)).or_insert(Window {
            start: now,
            emitted: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(window.start) >= self.window {
            window.start = now;
            window.emitted = 0;
        }
        let emit = if window.emitted < self.events {
            window.emitted += 1;
            Some(core::mem::take(&mut window.suppressed))
        } else {
            window.suppressed += 1;
            self.suppressed += 1;
            None
        };
        if self.windows.len() > self.prune_at {
            self.prune(now);
            self.prune_at = (self.windows.len() * 2).max(self.prune_min);
        }
        emit
    }

    /// Forgets the entries whose window is over at `now` (an entry is
    /// recreated by the key's next finding), except those with withheld
    /// events that the key's next event is to report, unless there are too
    /// many of those (the withheld events stay counted in the totals).
    pub(crate) fn prune(&mut self, now: Instant) {
        let window = self.window;
        let expired = |w: &Window| now.saturating_duration_since(w.start) >= window;
        self.windows.retain(|_, w| !expired(w) || w.suppressed > 0);
        if self.windows.len() > MAX_OWING {
            self.windows.retain(|_, w| !expired(w));
        }
    }

    /// Events withheld since installation (their findings still count).
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tl_core::ThreadLocal;

    #[test]
    fn rate_limit_per_key_counts_suppressed() {
        let key_a = ThreadLocal::<u8>::new().named("A");
        let key_b = ThreadLocal::<u8>::new().named("B");
        let mut limiter = RateLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        let a = |at| Finding::unreleased_on_thread_1(key_a.info(), at);
        assert_eq!(limiter.admit(&a(t0)), Some(0));
        assert_eq!(limiter.admit(&a(t0)), Some(0));
        assert_eq!(limiter.admit(&a(t0)), None);
        assert_eq!(limiter.admit(&a(t0)), None);
        // Another key has its own budget.
        let b = Finding::unreleased_on_thread_1(key_b.info(), t0);
        assert_eq!(limiter.admit(&b), Some(0));
        // A new window: the first event carries the withheld count.
        assert_eq!(limiter.admit(&a(t0 + Duration::from_secs(10))), Some(2));
        assert_eq!(limiter.suppressed(), 2);
    }

    #[test]
    fn expired_rate_entries_are_pruned_unless_they_owe_a_count() {
        let quiet = ThreadLocal::<u8>::new().named("QUIET");
        let loud = ThreadLocal::<u8>::new().named("LOUD");
        let mut limiter = RateLimiter::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        let loud_at = |at| Finding::unreleased_on_thread_1(loud.info(), at);
        limiter.admit(&Finding::unreleased_on_thread_1(quiet.info(), t0));
        limiter.admit(&loud_at(t0));
        assert_eq!(limiter.admit(&loud_at(t0)), None);
        limiter.prune(t0 + Duration::from_secs(5));
        assert_eq!(limiter.windows.len(), 2, "windows still open");
        limiter.prune(t0 + Duration::from_secs(10));
        assert_eq!(limiter.windows.len(), 1, "only LOUD owes a withheld count");
        assert_eq!(
            limiter.admit(&loud_at(t0 + Duration::from_secs(11))),
            Some(1)
        );
        limiter.prune(t0 + Duration::from_secs(30));
        assert!(limiter.windows.is_empty());
    }

    /// Task ends record findings without a scan: the rate limiter must not
    /// grow with every key that ever had one.
    #[test]
    fn records_between_scans_prune_the_rate_limiter() {
        let mut limiter = RateLimiter::new(1, Duration::from_millis(10));
        let min = 16;
        (limiter.prune_at, limiter.prune_min) = (min, min);
        let t0 = Instant::now();
        let keys: Vec<_> = (0..8 * min).map(|_| ThreadLocal::<u8>::new()).collect();
        for (i, key) in keys.iter().enumerate() {
            // One finding per key, each in a window of its own.
            let at = t0 + Duration::from_millis(20 * i as u64);
            let f = Finding::unreleased_on_thread_1(key.info(), at);
            assert_eq!(limiter.admit(&f), Some(0));
            assert!(
                limiter.windows.len() <= min + 1,
                "{}",
                limiter.windows.len()
            );
        }
    }
}
