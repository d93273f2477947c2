//! Key ids: a dense, recycled slot plus a generation.
//!
//! # Design
//! A key id is `generation << 32 | slot`. The slot is a small index that each
//! thread's table uses directly (see `table`), below [`SLOT_LIMIT`] (2^30), so
//! bits 30 and 31 of an id are always clear: `get` compares an entry's owner
//! word with the whole id in one xor and one test, and the two flags it
//! checks sit in those bits (see `entry`). It is handed back when the
//! key's block is freed, which happens only after every thread has unlinked
//! and freed its entry of the key, and a later key reuses it with the next
//! generation. The generation keeps ids unique for the life of the process
//! although slots are reused, so an id never reaches a value of another key
//! (the `thread_local` crate's issue #75); a slot whose generation would wrap
//! is retired instead of reused.
//!
//! Released ids wait in a small per-thread cache, so creating and freeing a
//! key usually takes no lock. A full cache spills half of itself to a global
//! list, and an empty one refills from it; only when both are empty does a
//! key take a new slot from a global counter. (Under loom, which cannot run
//! a thread-local's destructor that takes a lock, there is no cache: every
//! release and reuse goes through the global list, so the models check
//! slots moving between threads.) So the slots in use stay
//! bounded by the keys alive at once plus the cached ones, however many keys
//! come and go, and so do the tables indexed by them.
//!
//! # Invariants
//! - An id is never 0: generations start at 1.
//! - Every id is handed out at most once: a released id comes back with the
//!   next generation, and each slot is in one place at a time (used by one
//!   key, in one cache, or in the global list).

#[cfg(not(loom))]
use core::cell::RefCell;

use crate::sync::{self, AtomicU64, Mutex, Ordering};

/// The generation field's unit: adding it to an id moves to the next generation.
pub(crate) const GENERATION_ONE: u64 = 1 << 32;
/// Slots are below this, so an id's bits 30 and 31 are clear (see the module
/// docs). 2^30 keys alive at once would hold over 136 GiB in key blocks
/// alone (a key's shared part is 136 bytes on 64-bit targets).
pub(crate) const SLOT_LIMIT: u64 = 1 << 30;
/// The most ids a thread's cache holds; a full cache spills half of them.
#[cfg(not(loom))]
const CACHE_MAX: usize = 32;
/// How many ids a thread takes from the global list at once.
#[cfg(not(loom))]
const REFILL: usize = CACHE_MAX / 2;

sync::global! {
    /// The next never-used slot.
    static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);
}
sync::global! {
    /// Released ids (each the next generation of its slot) that no thread caches.
    static FREE: Mutex<Vec<u64>> = Mutex::new(Vec::new());
}

/// A thread's cache of released ids, handed to the global list when the
/// thread exits so that no slot is lost with it.
#[cfg(not(loom))]
struct Cache(RefCell<Vec<u64>>);

#[cfg(not(loom))]
impl Drop for Cache {
    fn drop(&mut self) {
        let ids = self.0.get_mut();
        if !ids.is_empty() {
            sync::lock(&FREE).append(ids);
        }
    }
}

#[cfg(not(loom))]
sync::local! {
    static CACHE: Cache = const { Cache(RefCell::new(Vec::new())) };
}

/// The slot of `id`: the index of its entry in every thread's table.
#[inline]
pub(crate) fn slot(id: u64) -> usize {
    slot_u32(id) as usize
}

/// [`slot`] as stored in an entry.
#[inline]
pub(crate) const fn slot_u32(id: u64) -> u32 {
    // Truncation is the point: the slot is the low 32 bits.
    id as u32
}

/// `id` with its slot bits cleared: its generation, in place.
#[inline]
pub(crate) const fn generation_bits(id: u64) -> u64 {
    id & !(u32::MAX as u64)
}

/// A fresh key id (never 0, never handed out before).
///
/// # Panics
/// If 2^30 keys are alive at once (see [`SLOT_LIMIT`]).
#[cfg(not(loom))]
#[inline]
pub(crate) fn allocate() -> u64 {
    match CACHE.try_with(|cache| cache.0.borrow_mut().pop()) {
        Ok(Some(id)) => id,
        _ => allocate_slow(),
    }
}

#[cfg(loom)]
pub(crate) fn allocate() -> u64 {
    allocate_slow()
}

#[cold]
#[inline(never)]
fn allocate_slow() -> u64 {
    {
        let mut free = sync::lock(&FREE);
        if let Some(id) = free.pop() {
            // Refill this thread's cache; during thread exit the ids stay global.
            #[cfg(not(loom))]
            let _ = CACHE.try_with(|cache| {
                let keep = free.len().saturating_sub(REFILL - 1);
                cache.0.borrow_mut().extend(free.drain(keep..));
            });
            return id;
        }
    }
    let slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    assert!(
        slot < SLOT_LIMIT,
        "tl-core: more than 2^30 thread-local keys alive at once"
    );
    GENERATION_ONE | slot
}

/// Hands `id`'s slot back for reuse under the next generation. Called once
/// per id, when the key's block is freed: no table holds an entry of it any
/// more.
pub(crate) fn release(id: u64) {
    if id >> 32 == u64::from(u32::MAX) {
        return; // the generation would wrap: the slot is retired
    }
    let next = id + GENERATION_ONE;
    if !cache(next) {
        sync::lock(&FREE).push(next);
    }
}

/// Puts a released id in this thread's cache, spilling half of a full one.
/// False when the thread's thread-locals are gone (it is exiting).
#[cfg(not(loom))]
fn cache(next: u64) -> bool {
    CACHE
        .try_with(|cache| {
            let mut ids = cache.0.borrow_mut();
            if ids.len() >= CACHE_MAX {
                sync::lock(&FREE).extend(ids.drain(..CACHE_MAX / 2));
            }
            ids.push(next);
        })
        .is_ok()
}

/// Loom has no cache (see the module docs).
#[cfg(loom)]
fn cache(_next: u64) -> bool {
    false
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn released_slots_come_back_with_the_next_generation() {
        let a = allocate();
        release(a);
        let b = allocate();
        assert_eq!(slot(b), slot(a));
        assert_eq!(b, a + GENERATION_ONE);
        release(b);
    }

    #[test]
    fn ids_are_unique_and_slots_stay_dense() {
        let mut seen = HashSet::new();
        let mut live = Vec::new();
        for round in 0..if cfg!(miri) { 20 } else { 200 } {
            for _ in 0..50 {
                let id = allocate();
                assert_ne!(id, 0);
                assert!(seen.insert(id), "id {id:#x} handed out twice");
                live.push(id);
            }
            // Free all but a few: the next round reuses their slots.
            for id in live.drain(round % 7..) {
                release(id);
            }
        }
        let highest = seen.iter().map(|&id| slot(id)).max().unwrap();
        // Other tests allocate too; a leak of slots would reach thousands.
        assert!(highest < 2_000, "slots grew to {highest}");
        live.into_iter().for_each(release);
    }

    #[test]
    fn a_slot_at_the_last_generation_is_retired() {
        let last = (u64::from(u32::MAX) << 32) | 7;
        release(last);
        for _ in 0..CACHE_MAX * 2 {
            let id = allocate();
            assert_ne!(id >> 32, 0, "generation wrapped to 0");
            release(id);
        }
    }

    /// Threads that come and go hand their cached ids back on exit: were
    /// they lost, 500 threads would use 16,000 slots.
    #[test]
    #[cfg_attr(miri, ignore = "spawns 500 threads")]
    fn exiting_threads_do_not_lose_slots() {
        let mut highest = 0;
        for _ in 0..500 {
            highest = highest.max(
                std::thread::spawn(|| {
                    let ids: Vec<u64> = (0..CACHE_MAX).map(|_| allocate()).collect();
                    let highest = ids.iter().map(|&id| slot(id)).max().unwrap();
                    ids.into_iter().for_each(release);
                    highest
                })
                .join()
                .unwrap(),
            );
        }
        // Other tests allocate at the same time; lost slots would reach 16,000.
        assert!(highest < 4_000, "slots grew to {highest}");
    }
}
