//! Entries: one heap block per (thread, key) holding the value and what an
//! auditor may read about it.
//!
//! # Design
//! An entry is created the first time a thread binds a value for a key and
//! lives until the key dies or the thread exits; `remove` only unbinds the
//! value, so the common set/get/remove cycle never allocates. The block starts
//! with a type-erased [`EntryHeader`] (what the table and the auditor see) and
//! ends with the value.
//!
//! # Invariants
//! - Only the owning thread reads or writes the value, forms references to it,
//!   or writes the header (`stamp`, `set_site`, `bytes`, `set_seq`).
//! - Another thread (the auditor) reads `key_id`, `key`, `stamp`, `set_site` and
//!   `bytes`, and only while holding the owner's table lock; the owner frees an
//!   entry only after unlinking it under that lock. Fields that the owner writes
//!   while an auditor may read them are atomics; the owner is their single
//!   writer, so it updates them with plain load/store pairs, not read-modify-writes.
//! - `stamp & SET` says whether `value` is initialized.

use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;
use core::panic::Location;
use core::ptr::NonNull;

use crate::error::AccessError;
use crate::key::{KeyRef, KeyShared};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Bit layout of [`EntryHeader::stamp`].
pub(crate) mod stamp {
    /// A value is bound.
    pub(crate) const SET: u64 = 1;
    /// One shared borrow (`with`, `get`'s clone).
    pub(crate) const BORROW_ONE: u64 = 1 << 1;
    /// Shared borrow count; all ones means borrowed mutably.
    pub(crate) const BORROW_MASK: u64 = 0x7FFF << 1;
    pub(crate) const BORROW_MUT: u64 = BORROW_MASK;
    /// A `Guard` on this thread protects a value bound outside it.
    pub(crate) const SHIELDED: u64 = 1 << 16;
    /// Milliseconds since the clock epoch, in the top 40 bits (34 years).
    pub(crate) const TIME_SHIFT: u32 = 24;
    /// Bits that send `set` and `remove` off the fast path.
    pub(crate) const SLOW: u64 = BORROW_MASK | SHIELDED;

    pub(crate) const fn time_ms(stamp: u64) -> u64 {
        stamp >> TIME_SHIFT
    }
}

/// The type-erased head of an entry; see the module docs for who touches what.
#[repr(C)]
pub(crate) struct EntryHeader {
    pub(crate) key_id: u64,
    /// One owned reference, released when the entry is freed.
    pub(crate) key: NonNull<KeyShared>,
    pub(crate) stamp: AtomicU64,
    pub(crate) set_site: AtomicPtr<Location<'static>>,
    /// Retained bytes of the bound value: `size_of::<T>()` plus the key's heap
    /// size hook, if it has one.
    pub(crate) bytes: AtomicUsize,
    /// The owning thread's set counter at the last bind (see `checkpoint`).
    pub(crate) set_seq: Cell<u64>,
}

impl EntryHeader {
    pub(crate) fn key(&self) -> &KeyShared {
        // SAFETY: the entry owns a reference to its key.
        unsafe { self.key.as_ref() }
    }

    pub(crate) fn stamp(&self) -> u64 {
        self.stamp.load(Ordering::Relaxed)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.stamp() & stamp::SET != 0
    }

    /// Owner only: the owner is the single writer, so load/store is enough.
    pub(crate) fn update_stamp(&self, f: impl FnOnce(u64) -> u64) {
        self.stamp.store(f(self.stamp()), Ordering::Relaxed);
    }

    pub(crate) fn set_site(&self) -> Option<&'static Location<'static>> {
        let site = self.set_site.load(Ordering::Relaxed);
        // SAFETY: only `&'static Location`s are ever stored.
        unsafe { site.as_ref() }
    }
}

/// An entry holding a `T`.
#[repr(C)]
pub(crate) struct Entry<T> {
    header: EntryHeader,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// What a bind records besides the value.
#[derive(Clone, Copy)]
pub(crate) struct BindMeta {
    pub(crate) site: &'static Location<'static>,
    pub(crate) seq: u64,
    pub(crate) now_ms: u64,
    /// `None` keeps the current byte count (keys without a heap size hook).
    pub(crate) bytes: Option<usize>,
}

impl<T: 'static> Entry<T> {
    /// Allocates an entry with `value` bound. Takes over the key reference.
    pub(crate) fn allocate(key: KeyRef, value: T, meta: BindMeta) -> NonNull<EntryHeader> {
        let boxed = Box::new(Self {
            header: EntryHeader {
                key_id: key.id,
                key: key.into_raw(),
                stamp: AtomicU64::new(stamp::SET | (meta.now_ms << stamp::TIME_SHIFT)),
                set_site: AtomicPtr::new(core::ptr::from_ref(meta.site).cast_mut()),
                bytes: AtomicUsize::new(meta.bytes.unwrap_or(size_of::<T>())),
                set_seq: Cell::new(meta.seq),
            },
            value: UnsafeCell::new(MaybeUninit::new(value)),
        });
        NonNull::from(Box::leak(boxed)).cast()
    }

    /// # Safety
    /// `header` heads a live `Entry<T>` owned by the current thread, and it
    /// stays live for `'a`.
    pub(crate) unsafe fn from_header<'a>(header: NonNull<EntryHeader>) -> &'a Self {
        // SAFETY: `EntryHeader` is the first field of the `repr(C)` `Entry<T>`.
        unsafe { header.cast::<Self>().as_ref() }
    }

    pub(crate) fn header(&self) -> &EntryHeader {
        &self.header
    }

    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        self.header.stamp()
    }

    /// Binds `value`, returning the previous one. Fast path: the caller checked
    /// that no `stamp::SLOW` bit is set.
    #[inline]
    pub(crate) fn bind(&self, value: T, meta: BindMeta) -> Option<T> {
        let old_stamp = self.stamp();
        debug_assert_eq!(old_stamp & stamp::BORROW_MASK, 0);
        // SAFETY: owner thread, no borrow outstanding (checked by the caller),
        // and `SET` tells whether the slot is initialized.
        let old = unsafe {
            let slot = &mut *self.value.get();
            let old = (old_stamp & stamp::SET != 0).then(|| slot.assume_init_read());
            slot.write(value);
            old
        };
        self.header.set_seq.set(meta.seq);
        self.header.set_site.store(core::ptr::from_ref(meta.site).cast_mut(), Ordering::Relaxed);
        if let Some(bytes) = meta.bytes {
            self.header.bytes.store(bytes, Ordering::Relaxed);
        }
        let flags = old_stamp & stamp::SHIELDED;
        self.header.stamp.store(flags | stamp::SET | (meta.now_ms << stamp::TIME_SHIFT), Ordering::Relaxed);
        old
    }

    /// Unbinds and returns the value. The caller checked that it is not borrowed.
    #[inline]
    pub(crate) fn unbind(&self) -> Option<T> {
        let old_stamp = self.stamp();
        if old_stamp & stamp::SET == 0 {
            return None;
        }
        debug_assert_eq!(old_stamp & stamp::BORROW_MASK, 0);
        self.header.stamp.store(old_stamp & !stamp::SET, Ordering::Relaxed);
        // SAFETY: `SET` was set, so the value is initialized; clearing `SET`
        // first transfers ownership of it to us.
        Some(unsafe { (*self.value.get()).assume_init_read() })
    }

    /// Restores `value` with the bind metadata it had before a guard shadowed it.
    pub(crate) fn rebind_shadowed(&self, value: T, seq: u64) {
        debug_assert_eq!(self.stamp() & (stamp::SET | stamp::BORROW_MASK), 0);
        // SAFETY: owner thread, unbound and unborrowed (checked by the caller).
        unsafe { (*self.value.get()).write(value) };
        self.header.set_seq.set(seq);
        self.header.update_stamp(|s| s | stamp::SET);
    }

    /// Borrows the bound value. `Ok(None)` when nothing is bound.
    #[inline]
    pub(crate) fn borrow(&self) -> Result<Option<Ref<'_, T>>, AccessError> {
        let s = self.stamp();
        if s & stamp::SET == 0 {
            return Ok(None);
        }
        let borrows = s & stamp::BORROW_MASK;
        if borrows >= stamp::BORROW_MUT - stamp::BORROW_ONE {
            if borrows == stamp::BORROW_MUT {
                return Err(AccessError::Borrowed);
            }
            too_many_borrows();
        }
        self.header.stamp.store(s + stamp::BORROW_ONE, Ordering::Relaxed);
        Ok(Some(Ref { entry: self }))
    }

    /// Borrows the bound value mutably. `Ok(None)` when nothing is bound.
    pub(crate) fn borrow_mut(&self) -> Result<Option<RefMut<'_, T>>, AccessError> {
        let s = self.stamp();
        if s & stamp::SET == 0 {
            return Ok(None);
        }
        if s & stamp::BORROW_MASK != 0 {
            return Err(AccessError::Borrowed);
        }
        self.header.stamp.store(s | stamp::BORROW_MUT, Ordering::Relaxed);
        Ok(Some(RefMut { entry: self }))
    }

    /// Runs `f` on the bound value; `None` if unbound or mutably borrowed.
    pub(crate) fn with_shared<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.borrow().ok().flatten().map(|value| f(&value))
    }

    /// Frees the entry, dropping its value last so that a panicking `Drop`
    /// leaves nothing half-freed.
    ///
    /// # Safety
    /// `header` heads an `Entry<T>` that was unlinked from every table, is not
    /// borrowed, and is freed exactly once, on its owning thread.
    pub(crate) unsafe fn drop_erased(header: NonNull<EntryHeader>) {
        // SAFETY: guaranteed by the caller; `allocate` leaked this box.
        let mut boxed = unsafe { Box::from_raw(header.cast::<Self>().as_ptr()) };
        let value = boxed.header.is_set().then(|| {
            // SAFETY: `SET` says the value is initialized; the box is freed
            // below without dropping it again (`MaybeUninit` has no drop glue).
            unsafe { boxed.value.get_mut().assume_init_read() }
        });
        // SAFETY: the entry owned this reference.
        drop(unsafe { KeyRef::from_raw(boxed.header.key) });
        drop(boxed);
        drop(value);
    }
}

#[cold]
#[inline(never)]
fn too_many_borrows() -> ! {
    panic!("tl-core: too many nested borrows of one thread-local (32766)")
}

/// A shared borrow of an entry's value.
pub(crate) struct Ref<'a, T: 'static> {
    entry: &'a Entry<T>,
}

impl<T: 'static> core::ops::Deref for Ref<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the borrow count keeps the value bound and unmoved.
        unsafe { (*self.entry.value.get()).assume_init_ref() }
    }
}

impl<T: 'static> Drop for Ref<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.entry.header.update_stamp(|s| s - stamp::BORROW_ONE);
    }
}

/// An exclusive borrow of an entry's value.
pub(crate) struct RefMut<'a, T: 'static> {
    entry: &'a Entry<T>,
}

impl<T: 'static> RefMut<'_, T> {
    pub(crate) fn value(&mut self) -> &mut T {
        // SAFETY: `BORROW_MUT` excludes every other access to the value.
        unsafe { (*self.entry.value.get()).assume_init_mut() }
    }

    pub(crate) fn record_bytes(&self, bytes: usize) {
        self.entry.header.bytes.store(bytes, Ordering::Relaxed);
    }
}

impl<T: 'static> Drop for RefMut<'_, T> {
    fn drop(&mut self) {
        self.entry.header.update_stamp(|s| s & !stamp::BORROW_MASK);
    }
}
