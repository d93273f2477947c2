//! The one place tl-core takes atomics and locks from.
//!
//! Keeping every synchronization primitive behind this module is what lets a
//! `cfg(loom)` build swap in loom's model-checked versions without touching the
//! rest of the crate.

pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
pub(crate) use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, Weak};

/// Locks `mutex`, ignoring poisoning.
///
/// No code in this crate panics while holding one of its locks (the critical
/// sections only move pointers and counters), so a poisoned lock can only come
/// from an allocation failure abort, never from a half-done update.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
