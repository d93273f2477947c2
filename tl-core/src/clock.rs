//! A coarse clock that the hot path can read with one relaxed load.
//!
//! `set` must cost a few nanoseconds, and `Instant::now()` costs tens, so values
//! are stamped with a coarse clock: milliseconds since the process epoch as of the
//! last [`refresh`]. A stamp is therefore never later than the real bind time,
//! and early by at most the time since the last refresh. Thread registration
//! and every registry snapshot refresh it; `tl-audit`'s auditor thread
//! refreshes it on every tick, which bounds the error by its interval.
//! (Refreshing it on every new entry would cost more than the rest of an
//! entry's creation.)

use std::time::{Duration, Instant};

use crate::sync::{self, AtomicU64, OnceLock, Ordering};

static EPOCH: OnceLock<Instant> = OnceLock::new();
sync::global! {
    static COARSE_MS: AtomicU64 = AtomicU64::new(0);
}

/// The instant all stamps are measured from.
pub(crate) fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the epoch as of the last refresh.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}

/// Reads the real clock, publishes it as the coarse clock's new time, and
/// returns it.
pub fn refresh() -> Instant {
    let now = Instant::now();
    let ms = u64::try_from(now.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX);
    COARSE_MS.fetch_max(ms, Ordering::Relaxed);
    now
}

/// The instant a stamp of `ms` stands for.
pub(crate) fn instant_of(ms: u64) -> Instant {
    epoch() + Duration::from_millis(ms)
}
