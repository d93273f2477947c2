//! Cross-crate integration tests of the tl workspace (`tests/`); helpers
//! shared by them live here.

#![warn(missing_docs)]

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// A deterministic xorshift generator: the stress test replays exactly from
/// its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value below `bound` (which must be positive).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// Drop counts of numbered values: proves each was dropped exactly once.
#[derive(Debug)]
pub struct DropLedger {
    next: AtomicUsize,
    drops: Vec<AtomicU8>,
}

impl DropLedger {
    /// Room for `capacity` values.
    pub fn new(capacity: usize) -> Self {
        Self {
            next: AtomicUsize::new(0),
            drops: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// Numbers a new value.
    ///
    /// # Panics
    /// If more than the capacity are created.
    pub fn issue(&self) -> usize {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        assert!(id < self.drops.len(), "drop ledger full");
        id
    }

    /// Records a drop of value `id`.
    pub fn dropped(&self, id: usize) {
        self.drops[id].fetch_add(1, Ordering::Relaxed);
    }

    /// Values issued so far.
    pub fn issued(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    /// The values not dropped exactly once, with their drop counts.
    pub fn anomalies(&self) -> Vec<(usize, u8)> {
        self.drops[..self.issued()]
            .iter()
            .enumerate()
            .map(|(id, count)| (id, count.load(Ordering::Relaxed)))
            .filter(|&(_, count)| count != 1)
            .collect()
    }
}
