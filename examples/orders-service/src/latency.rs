//! [`Latencies`]: request latencies and their percentiles.

use std::time::Duration;

/// Latencies of completed requests, in any order.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// No samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one request's latency.
    pub fn record(&mut self, latency: Duration) {
        self.samples.push(latency);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: Self) {
        self.samples.extend(other.samples);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `p`th percentile by the nearest-rank method: the smallest sample
    /// that at least `p`% of the samples do not exceed, so always a real
    /// sample. `p` is clamped to `1..=100`; `None` without samples.
    pub fn percentile(&self, p: u8) -> Option<Duration> {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        nearest_rank(&sorted, p)
    }
}

/// The nearest-rank percentile of `sorted` (ascending): the sample at rank
/// `ceil(p / 100 * n)`, counting from 1.
fn nearest_rank(sorted: &[Duration], p: u8) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let p = usize::from(p.clamp(1, 100));
    let rank = (p * n).div_ceil(100);
    sorted.get(rank.max(1) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Latencies {
        let mut latencies = Latencies::new();
        for v in values {
            latencies.record(Duration::from_millis(v));
        }
        latencies
    }

    #[test]
    fn no_samples_no_percentile() {
        assert_eq!(Latencies::new().percentile(50), None);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let one = ms([7]);
        for p in [1, 50, 99, 100] {
            assert_eq!(one.percentile(p), Some(Duration::from_millis(7)));
        }
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        // Shuffled on purpose: order of recording does not matter.
        let latencies = ms((1..=100).rev());
        assert_eq!(latencies.percentile(50), Some(Duration::from_millis(50)));
        assert_eq!(latencies.percentile(99), Some(Duration::from_millis(99)));
        assert_eq!(latencies.percentile(100), Some(Duration::from_millis(100)));
        assert_eq!(latencies.percentile(1), Some(Duration::from_millis(1)));
    }

    #[test]
    fn nearest_rank_rounds_up_and_returns_a_sample() {
        // n = 4: p50 is rank 2, p99 is rank ceil(3.96) = 4.
        let latencies = ms([40, 10, 30, 20]);
        assert_eq!(latencies.percentile(50), Some(Duration::from_millis(20)));
        assert_eq!(latencies.percentile(99), Some(Duration::from_millis(40)));
        // n = 3: p50 is rank ceil(1.5) = 2.
        assert_eq!(ms([5, 1, 9]).percentile(50), Some(Duration::from_millis(5)));
    }

    #[test]
    fn a_slow_tail_shows_in_p99_only() {
        let latencies = ms((0..98).map(|_| 1).chain([500, 600]));
        assert_eq!(latencies.percentile(50), Some(Duration::from_millis(1)));
        assert_eq!(latencies.percentile(99), Some(Duration::from_millis(500)));
    }

    #[test]
    fn out_of_range_p_is_clamped() {
        let latencies = ms([1, 2, 3]);
        assert_eq!(latencies.percentile(0), latencies.percentile(1));
        assert_eq!(latencies.percentile(255), latencies.percentile(100));
    }

    #[test]
    fn merge_keeps_every_sample() {
        let mut a = ms([1, 2]);
        a.merge(ms([3]));
        assert_eq!(a.len(), 3);
        assert_eq!(a.percentile(100), Some(Duration::from_millis(3)));
    }
}
