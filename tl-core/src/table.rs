//! The per-thread hash table: open addressing over entry pointers, as in the
//! JDK's `ThreadLocalMap`.
//!
//! # Design
//! Slots hold `*mut EntryHeader` (null = empty), so a table costs 8 bytes per
//! slot and at most 2/3 of the slots are used. A key's home slot is its id times
//! the JDK's `0x61c88647` increment, masked: consecutive ids land far apart, so
//! probe sequences stay short. Deletion shifts the following cluster back
//! instead of leaving tombstones, so a thread that churns through a million keys
//! never accumulates dead slots, and the table shrinks when it falls below 1/8
//! full.
//!
//! Compared with the JDK, stale entries need no incremental expunging during
//! `set`: key death is known exactly (see `map::LocalMap::sweep`), so this table
//! only ever holds entries the owner still has to reclaim.
//!
//! # Invariants
//! - The slot count is a power of two and `mask == slots - 1`.
//! - At least one slot is null, so a probe always terminates.
//! - Slots are written only by the owning thread while it holds its
//!   `ThreadShared::view` lock, so an auditor holding that lock sees a
//!   consistent table; the owner reads without the lock (it is the only writer).

use core::ptr::{self, NonNull};

use crate::entry::EntryHeader;

/// The JDK's `HASH_INCREMENT`: the golden-ratio step that spreads consecutive ids.
const HASH_INCREMENT: u32 = 0x61c8_8647;
pub(crate) const MIN_SLOTS: usize = 8;

pub(crate) type Slot = *mut EntryHeader;

/// A one-slot table that every thread starts with (and returns to on exit), so
/// lookups need no "is there a table" branch. Never written: the first insert
/// grows to a real table.
struct EmptySlot(Slot);
// SAFETY: the one slot is null and never written.
unsafe impl Sync for EmptySlot {}
static EMPTY: EmptySlot = EmptySlot(ptr::null_mut());

#[inline]
pub(crate) fn home(id: u64, mask: usize) -> usize {
    // Truncation is the point: the JDK hash is a 32-bit multiply.
    (id as u32).wrapping_mul(HASH_INCREMENT) as usize & mask
}

/// A raw view of a table: a slot array and its mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) slots: *mut Slot,
    pub(crate) mask: usize,
}

// SAFETY: a `Table` is only dereferenced by the owning thread, or by an auditor
// while holding the owner's view lock (see the module invariants).
unsafe impl Send for Table {}

impl Table {
    pub(crate) const EMPTY: Self = Self {
        slots: ptr::from_ref(&EMPTY.0).cast_mut(),
        mask: 0,
    };

    pub(crate) fn empty() -> Self {
        Self::EMPTY
    }

    pub(crate) fn is_empty_sentinel(self) -> bool {
        ptr::eq(self.slots, &EMPTY.0)
    }

    pub(crate) fn capacity(self) -> usize {
        self.mask + 1
    }

    /// Allocates a table of `capacity` null slots (a power of two).
    pub(crate) fn allocate(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= MIN_SLOTS);
        let slots: Box<[Slot]> = vec![ptr::null_mut(); capacity].into_boxed_slice();
        Self {
            slots: Box::into_raw(slots).cast::<Slot>(),
            mask: capacity - 1,
        }
    }

    /// # Safety
    /// `self` came from [`Self::allocate`] (not the empty sentinel), is freed
    /// once, and no one reads it afterwards.
    pub(crate) unsafe fn free(self) {
        debug_assert!(!self.is_empty_sentinel());
        // SAFETY: `allocate` leaked a boxed slice of exactly `capacity` slots.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(self.slots, self.capacity())) });
    }

    /// # Safety
    /// `i <= mask`, and the table is live.
    #[inline]
    pub(crate) unsafe fn slot(self, i: usize) -> Slot {
        // SAFETY: guaranteed by the caller.
        unsafe { *self.slots.add(i) }
    }

    /// # Safety
    /// As for [`Self::slot`], plus: called by the owner while holding the view
    /// lock, and not on the empty sentinel.
    #[inline]
    unsafe fn put(self, i: usize, value: Slot) {
        // SAFETY: guaranteed by the caller.
        unsafe { *self.slots.add(i) = value };
    }

    /// Finds the entry for `id`.
    ///
    /// # Safety
    /// The table is live and every non-null slot points to a live entry.
    #[inline]
    pub(crate) unsafe fn find(self, id: u64) -> Option<(usize, NonNull<EntryHeader>)> {
        let mut i = home(id, self.mask);
        loop {
            // SAFETY: `i` is masked; the table is live (caller).
            let slot = unsafe { self.slot(i) };
            let entry = NonNull::new(slot)?;
            // SAFETY: non-null slots point to live entries (caller).
            if unsafe { entry.as_ref() }.key_id == id {
                return Some((i, entry));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Places an entry whose id is not in the table yet.
    ///
    /// # Safety
    /// As for [`Self::put`]; the table has a free slot besides the one this
    /// fills, and `entry` is live.
    pub(crate) unsafe fn insert_new(self, entry: NonNull<EntryHeader>) {
        // SAFETY: `entry` is live (caller).
        let mut i = home(unsafe { entry.as_ref() }.key_id, self.mask);
        // SAFETY: `i` is masked; a free slot exists (caller).
        while !unsafe { self.slot(i) }.is_null() {
            i = (i + 1) & self.mask;
        }
        // SAFETY: as above.
        unsafe { self.put(i, entry.as_ptr()) };
    }

    /// Empties slot `i` and shifts the rest of its cluster back, so no
    /// tombstone is left and every remaining entry stays reachable from its
    /// home slot. Entries only ever move into slots at or after `i` (mod the
    /// capacity), which is what lets `sweep` delete while scanning forward.
    ///
    /// # Safety
    /// As for [`Self::put`]; every non-null slot points to a live entry.
    pub(crate) unsafe fn delete_at(self, i: usize) {
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            // SAFETY: `j` is masked; the table is live.
            let slot = unsafe { self.slot(j) };
            if slot.is_null() {
                break;
            }
            // SAFETY: non-null slots point to live entries (caller).
            let home = home(unsafe { &*slot }.key_id, self.mask);
            // The entry at `j` may fill the hole if the hole lies on its probe
            // path, i.e. cyclically within [home, j].
            if j.wrapping_sub(home) & self.mask >= j.wrapping_sub(hole) & self.mask {
                // SAFETY: both indices are masked; owner under the view lock.
                unsafe { self.put(hole, slot) };
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        // SAFETY: `hole` is masked; owner under the view lock.
        unsafe { self.put(hole, ptr::null_mut()) };
    }

    /// Copies every entry into `to` (freshly allocated, large enough).
    ///
    /// # Safety
    /// Both tables are live; `to` is empty and owned by the caller.
    pub(crate) unsafe fn rehash_into(self, to: Self) {
        for i in 0..self.capacity() {
            // SAFETY: `i` is in bounds; the table is live.
            if let Some(entry) = NonNull::new(unsafe { self.slot(i) }) {
                // SAFETY: `to` has room for every entry of `self`.
                unsafe { to.insert_new(entry) };
            }
        }
    }

    /// The non-null slots, in slot order.
    ///
    /// # Safety
    /// The table stays live and unmodified while the iterator is used.
    pub(crate) unsafe fn entries(self) -> impl Iterator<Item = NonNull<EntryHeader>> {
        // SAFETY: in bounds; the caller keeps the table live and unmodified.
        (0..self.capacity()).filter_map(move |i| NonNull::new(unsafe { self.slot(i) }))
    }
}

/// The slot count that keeps `len` entries at most 2/3 full.
pub(crate) fn capacity_for(len: usize) -> usize {
    (len.saturating_mul(3) / 2 + 1)
        .next_power_of_two()
        .max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Headers with only `key_id` meaningful: the table never reads more.
    fn header(id: u64) -> NonNull<EntryHeader> {
        NonNull::from(Box::leak(EntryHeader::for_table_test(id)))
    }

    /// Random inserts and deletes against a `HashSet`, with every id findable
    /// after each step: the backward-shift deletion keeps probe paths intact.
    #[test]
    fn delete_keeps_every_entry_reachable() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let table = Table::allocate(64);
        let mut live: Vec<NonNull<EntryHeader>> = Vec::new();
        let mut model = HashSet::new();
        let steps = if cfg!(miri) { 300 } else { 20_000 };
        for _ in 0..steps {
            if live.len() < 40 && (live.is_empty() || next() % 2 == 0) {
                // Ids from a small range collide often on purpose.
                let id = 1 + next() % 200;
                if model.insert(id) {
                    let entry = header(id);
                    // SAFETY: test table, at most 40 of 64 slots used.
                    unsafe { table.insert_new(entry) };
                    live.push(entry);
                }
            } else {
                let victim = live.swap_remove((next() as usize) % live.len());
                // SAFETY: live entries of this table.
                let id = unsafe { victim.as_ref() }.key_id;
                // SAFETY: as above.
                let (i, found) = unsafe { table.find(id) }.expect("present before delete");
                assert_eq!(found, victim);
                // SAFETY: as above.
                unsafe { table.delete_at(i) };
                model.remove(&id);
                // SAFETY: unlinked above; allocated by `header`.
                drop(unsafe { Box::from_raw(victim.as_ptr()) });
            }
            for &id in &model {
                // SAFETY: live entries of this table.
                assert!(unsafe { table.find(id) }.is_some(), "id {id} lost");
            }
            // SAFETY: as above.
            assert_eq!(unsafe { table.entries() }.count(), model.len());
        }
        for entry in live {
            // SAFETY: allocated by `header`, freed once.
            drop(unsafe { Box::from_raw(entry.as_ptr()) });
        }
        // SAFETY: allocated above, freed once.
        unsafe { table.free() };
    }

    #[test]
    fn capacity_keeps_a_third_free() {
        for len in 0..10_000 {
            let capacity = capacity_for(len);
            assert!(capacity.is_power_of_two() && capacity >= MIN_SLOTS);
            assert!(len * 3 <= capacity * 2, "{len} in {capacity}");
        }
    }
}
