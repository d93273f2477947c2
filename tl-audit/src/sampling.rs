//! Which task ends to audit: one in N on each thread, decided with one
//! thread-local countdown (no shared write, and no shared read, so sampled
//! auditing neither contends across a pool nor costs more than a few
//! instructions per task end).
//!
//! A thread's first task end is always audited, then every N-th. An
//! auditor installed after another one with a different N takes effect on
//! each thread at its next audited task end. (`full` and `deny` install a
//! hook that does not sample at all.)

use core::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

/// N: audit one task end in this many.
static EVERY: AtomicU32 = AtomicU32::new(1);

std::thread_local! {
    /// Task ends left before the next audited one (0: audit the next one).
    /// Const-initialized and without `Drop`, so access is a plain TLS read
    /// that works even while the thread's other thread-locals are destroyed.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

/// Audits one task end in `every` (at least 1) from now on.
pub(crate) fn configure(every: u32) {
    EVERY.store(every.max(1), Ordering::Relaxed);
}

/// Whether to audit the task end happening now on this thread.
#[inline(always)]
pub(crate) fn should_audit() -> bool {
    COUNTDOWN.with(|countdown| {
        let left = countdown.get();
        if left > 1 {
            countdown.set(left - 1);
            false
        } else {
            countdown.set(EVERY.load(Ordering::Relaxed));
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_n_first_one_included() {
        let _serial = crate::testing::serial();
        std::thread::spawn(|| {
            configure(3);
            let picks: Vec<bool> = (0..7).map(|_| should_audit()).collect();
            assert_eq!(picks, [true, false, false, true, false, false, true]);
            configure(1);
            // The new rate takes effect at the next audited task end.
            let picks: Vec<bool> = (0..4).map(|_| should_audit()).collect();
            assert_eq!(picks, [false, false, true, true]);
        })
        .join()
        .unwrap();
    }
}
