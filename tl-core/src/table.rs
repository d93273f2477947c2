//! The per-thread table of entries: a vector of entry pointers indexed by
//! the key's slot.
//!
//! # Design
//! Every key id carries a dense slot (see `slots`), so a thread's entry of a
//! key lives at index `slot` of its table, and a lookup is one bounds check,
//! one load and one id compare: no hashing and no probing. The entry's slot
//! matches by position, so the compare is of the generation, and a slot
//! reused by a later key never reaches an entry of the key that used it
//! before (which cannot be there anyway: a slot is reused only once every
//! entry of its last key is freed). `get`'s fast path takes the entry at the
//! slot ([`Table::at_slot_of`]) and compares the generation itself, in the
//! same test as the entry's flags.
//!
//! A table costs 8 bytes per slot up to the highest slot the thread holds an
//! entry for, rounded up to a power of two. Slots are recycled, so that
//! stays bounded by the keys alive at once; the map shrinks a table when a
//! sweep leaves it mostly unused (see `map`).
//!
//! # Invariants
//! - A non-null slot `i` points to a live entry whose id has slot `i`.
//! - Slots are written only by the owning thread. It fills an empty slot
//!   with a release store of an entry it has finished writing, with or
//!   without its `ThreadShared::view` lock (see `map::LocalMap::link`), and
//!   empties a slot, or replaces the table, only while holding that lock. So
//!   an auditor holding the lock reads each slot with an acquire load and
//!   sees an entry that stays live for as long as it holds the lock, or an
//!   empty slot. The owner reads without the lock (it is the only writer).

use core::ptr::{self, NonNull};

use crate::entry::EntryHeader;
use crate::slots;
use crate::sync::{self, AtomicPtr, Ordering};

pub(crate) const MIN_SLOTS: usize = 8;

/// Written only by the owning thread; read by it and by auditors.
type Slot = AtomicPtr<EntryHeader>;

/// A raw view of a table: a slot array and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Table {
    slots: *mut Slot,
    capacity: usize,
}

// SAFETY: a `Table` is only dereferenced by the owning thread, or by an auditor
// while holding the owner's view lock (see the module invariants).
unsafe impl Send for Table {}

impl Table {
    /// The table every thread starts with (and returns to on exit): no
    /// slots, so lookups find nothing without an "is there a table" branch.
    pub(crate) const EMPTY: Self = Self {
        slots: ptr::null_mut(),
        capacity: 0,
    };

    pub(crate) fn empty() -> Self {
        Self::EMPTY
    }

    pub(crate) fn is_empty_sentinel(self) -> bool {
        self.slots.is_null()
    }

    pub(crate) fn capacity(self) -> usize {
        self.capacity
    }

    /// Allocates a table of `capacity` vacant slots (a power of two).
    pub(crate) fn allocate(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= MIN_SLOTS);
        let slots: Box<[Slot]> = (0..capacity).map(|_| Slot::new(ptr::null_mut())).collect();
        Self {
            slots: Box::into_raw(slots).cast::<Slot>(),
            capacity,
        }
    }

    /// # Safety
    /// `self` came from [`Self::allocate`] (not the empty sentinel), is freed
    /// once, and no one reads it afterwards.
    pub(crate) unsafe fn free(self) {
        debug_assert!(!self.is_empty_sentinel());
        // SAFETY: `allocate` leaked a boxed slice of exactly `capacity` slots.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(self.slots, self.capacity)) });
    }

    /// Slot `i`, as a pointer: each use dereferences it only for the one
    /// atomic operation it makes, so no reference outlives the caller's
    /// guarantee that the table is live.
    ///
    /// # Safety
    /// `i < capacity`, and the table is live.
    #[inline]
    unsafe fn slot(self, i: usize) -> *const Slot {
        // SAFETY: in bounds (caller).
        unsafe { self.slots.add(i) }
    }

    /// The entry in slot `i`, if the slot is not empty, read by the owning
    /// thread (the only writer, so no ordering is needed).
    ///
    /// # Safety
    /// As for [`Self::slot`], and called on the owning thread.
    #[inline]
    pub(crate) unsafe fn entry_at(self, i: usize) -> Option<NonNull<EntryHeader>> {
        // SAFETY: forwarded from the caller.
        NonNull::new(sync::load_own(unsafe { &*self.slot(i) }))
    }

    /// # Safety
    /// As for [`Self::slot`], plus: called by the owner, and not on the
    /// empty sentinel; emptying a slot only while holding the view lock, and
    /// filling one only with an entry whose writes are done (see the module
    /// invariants).
    #[inline]
    unsafe fn put(self, i: usize, value: *mut EntryHeader) {
        // SAFETY: guaranteed by the caller.
        unsafe { &*self.slot(i) }.store(value, Ordering::Release);
    }

    /// Finds the entry for `id`, with its index.
    ///
    /// # Safety
    /// The table is live and every non-null slot points to a live entry.
    #[inline]
    pub(crate) unsafe fn find(self, id: u64) -> Option<(usize, NonNull<EntryHeader>)> {
        // SAFETY: forwarded from the caller.
        let entry = unsafe { self.at_slot_of(id) }?;
        // SAFETY: non-null slots point to live entries (caller).
        (unsafe { entry.as_ref() }.is_at_slot_for(id)).then_some((slots::slot(id), entry))
    }

    /// The entry at `id`'s slot, whichever key's it is: `get`'s fast path
    /// compares the generation itself, in one test with the flags.
    ///
    /// # Safety
    /// As for [`Self::find`].
    #[inline]
    pub(crate) unsafe fn at_slot_of(self, id: u64) -> Option<NonNull<EntryHeader>> {
        let i = slots::slot(id);
        if i >= self.capacity {
            return None;
        }
        // SAFETY: `i` is in bounds; the table is live (caller).
        unsafe { self.entry_at(i) }
    }

    /// Places an entry whose key has no entry in the table yet.
    ///
    /// # Panics
    /// If the entry's slot holds another entry, which the slot allocator's
    /// invariants rule out: overwriting it would lose a value.
    ///
    /// # Safety
    /// As for [`Self::put`]; the entry's slot is below the capacity, and
    /// `entry` is live.
    pub(crate) unsafe fn insert_new(self, entry: NonNull<EntryHeader>) {
        // SAFETY: `entry` is live (caller).
        let i = unsafe { entry.as_ref() }.slot();
        debug_assert!(i < self.capacity);
        // SAFETY: in bounds (caller).
        let occupant = unsafe { self.entry_at(i) };
        assert!(occupant.is_none(), "tl-core: two live keys share slot {i}");
        // SAFETY: as above.
        unsafe { self.put(i, entry.as_ptr()) };
    }

    /// Empties slot `i`.
    ///
    /// # Safety
    /// As for [`Self::put`].
    pub(crate) unsafe fn delete_at(self, i: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.put(i, ptr::null_mut()) };
    }

    /// Copies every entry into `to` (freshly allocated, with room for the
    /// highest slot in use).
    ///
    /// # Safety
    /// Both tables are live; `to` is empty and owned by the caller.
    pub(crate) unsafe fn copy_into(self, to: Self) {
        for i in 0..self.capacity {
            // SAFETY: `i` is in bounds; the table is live.
            if let Some(entry) = unsafe { self.entry_at(i) } {
                // SAFETY: `to` has room for every entry of `self` (caller).
                unsafe { to.insert_new(entry) };
            }
        }
    }

    /// The entries, in slot order, read by the owning thread.
    ///
    /// # Safety
    /// The table stays live and unmodified while the iterator is used, and
    /// it is used on the owning thread.
    pub(crate) unsafe fn entries(self) -> impl Iterator<Item = NonNull<EntryHeader>> {
        // SAFETY: in bounds; the caller keeps the table live and unmodified.
        (0..self.capacity).filter_map(move |i| unsafe { self.entry_at(i) })
    }

    /// The entries, in slot order, read by another thread: each slot with an
    /// acquire load, which pairs with the owner's release store when it
    /// linked the entry.
    ///
    /// # Safety
    /// The caller holds the owner's view lock while it uses the iterator and
    /// the entries, so the table stays live and no entry is unlinked (the
    /// owner may still link new ones).
    pub(crate) unsafe fn entries_from_other_thread(
        self,
    ) -> impl Iterator<Item = NonNull<EntryHeader>> {
        (0..self.capacity).filter_map(move |i| {
            // SAFETY: in bounds; the caller keeps the table live.
            NonNull::new(unsafe { &*self.slot(i) }.load(Ordering::Acquire))
        })
    }
}

/// The capacity that has room for `slot`.
pub(crate) fn capacity_for(slot: usize) -> usize {
    slot.saturating_add(1).next_power_of_two().max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::GENERATION_ONE;
    use std::collections::HashMap;

    /// Headers with only `key_id` meaningful: the table never reads more.
    fn header(id: u64) -> NonNull<EntryHeader> {
        NonNull::from(Box::leak(EntryHeader::for_table_test(id)))
    }

    /// Random inserts and deletes against a `HashMap`: every present id is
    /// found, and an id of the same slot but another generation never is.
    #[test]
    fn finds_exactly_the_ids_present() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let table = Table::allocate(64);
        // SAFETY: a fresh table: every slot is empty.
        let found = unsafe { table.find(0) };
        assert!(found.is_none(), "id 0 (no key yet) matched");
        let mut model: HashMap<usize, (u64, NonNull<EntryHeader>)> = HashMap::new();
        let mut generation = 1u64;
        let steps = if cfg!(miri) { 300 } else { 20_000 };
        for _ in 0..steps {
            let slot = (next() % 64) as usize;
            match model.remove(&slot) {
                None => {
                    generation += 1;
                    let id = (generation * GENERATION_ONE) | slot as u64;
                    let entry = header(id);
                    // SAFETY: test table; the slot is empty and in bounds.
                    unsafe { table.insert_new(entry) };
                    model.insert(slot, (id, entry));
                }
                Some((id, entry)) => {
                    // SAFETY: live entries of this table.
                    let (i, found) = unsafe { table.find(id) }.expect("present before delete");
                    assert_eq!((i, found), (slot, entry));
                    // SAFETY: as above.
                    assert!(unsafe { table.find(id + GENERATION_ONE) }.is_none());
                    // SAFETY: as above.
                    unsafe { table.delete_at(i) };
                    // SAFETY: as above.
                    assert!(unsafe { table.find(id) }.is_none());
                    // SAFETY: unlinked above; allocated by `header`.
                    drop(unsafe { Box::from_raw(entry.as_ptr()) });
                }
            }
            // SAFETY: as above.
            assert_eq!(unsafe { table.entries() }.count(), model.len());
        }
        let bigger = Table::allocate(128);
        // SAFETY: both live; `bigger` is empty and has room for every slot.
        unsafe { table.copy_into(bigger) };
        for &(id, entry) in model.values() {
            // SAFETY: live entries of `bigger`.
            assert_eq!(unsafe { bigger.find(id) }.map(|(_, e)| e), Some(entry));
            // SAFETY: beyond the slots in use: not found, not read out of bounds.
            assert!(unsafe { bigger.find(id | 200) }.is_none());
            // SAFETY: allocated by `header`, freed once.
            drop(unsafe { Box::from_raw(entry.as_ptr()) });
        }
        // SAFETY: allocated above, freed once; their entries are freed.
        unsafe {
            table.free();
            bigger.free();
        }
    }

    #[test]
    fn the_empty_table_finds_nothing() {
        // SAFETY: the sentinel is live and has no slots to read.
        assert!(unsafe { Table::EMPTY.find(GENERATION_ONE) }.is_none());
        // SAFETY: as above.
        assert_eq!(unsafe { Table::EMPTY.entries() }.count(), 0);
    }

    #[test]
    fn capacity_has_room_for_the_slot() {
        for slot in 0..10_000 {
            let capacity = capacity_for(slot);
            assert!(capacity.is_power_of_two() && capacity >= MIN_SLOTS);
            assert!(slot < capacity && (capacity == MIN_SLOTS || slot >= capacity / 2));
        }
    }
}
