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
//!   or writes the header. It reaches the entry as an [`EntryHeader`], which
//!   is not `Sync`.
//! - Another thread (the auditor) reaches only the [`EntryShared`] part,
//!   which is `Sync`: `key`, `slot`, `stamp`, `set_site`, `bytes` and
//!   `set_seq`, and only while holding the owner's table lock (see
//!   `registration::View`); the owner links an entry only once it is fully
//!   written (a release store, see `table`), and frees one only after
//!   unlinking it under that lock. The owner-only word (`local`: the key's
//!   generation and the flags) is not part of `EntryShared` but a field of
//!   the header beside it, so nothing reached through `EntryShared` can
//!   touch it.
//! - An entry sits at its key's slot in its thread's table, so its key id is
//!   its generation (in `local`) and its slot.
//! - `value` is initialized exactly when `local` has `VACANT` clear or `MUT`
//!   set (see [`EntryHeader::is_set`]); `stamp & SET` mirrors it for the
//!   auditor.

use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;
use core::panic::Location;
use core::ptr::NonNull;

use crate::blocks;
use crate::error::AccessError;
use crate::key::{ErasedEntry, KeyShared};
use crate::keyref::{KeyPin, KeyRef};
use crate::slots;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Bit layouts of `EntryShared::stamp` (auditor-visible) and the flags in
/// `EntryHeader::local` (owner-only; its low 32 bits).
pub(crate) mod stamp {
    /// `stamp`: a value is bound.
    pub(crate) const SET: u64 = 1;
    /// `stamp`: the value was bound by the key's initializer (a `get` or
    /// `with` that found nothing bound), not by `set`.
    pub(crate) const BY_INIT: u64 = 2;
    /// `stamp`: milliseconds since the clock epoch, above the flag bits.
    pub(crate) const TIME_SHIFT: u32 = 8;

    /// `local`: one shared borrow (`with`, or a nested `get`).
    pub(crate) const BORROW_ONE: u32 = 1;
    /// `local`: shared borrow count.
    pub(crate) const BORROW_MASK: u32 = 0x0FFF;
    /// `local`: a `Guard` on this thread protects a value bound outside it.
    pub(crate) const SHIELDED: u32 = 1 << 12;
    /// `local`: no value can be read: none is bound, or it is mutably
    /// borrowed. Set, not clear, for "unreadable", so that `get` checks it
    /// and `CLONING` with one `test`. Bit 30, like `CLONING`'s 31: a key id
    /// has those bits clear (`slots::SLOT_LIMIT`), so `get` can xor the whole
    /// id into the owner word and test the generation and both flags at once.
    pub(crate) const VACANT: u32 = 1 << 30;
    /// `local`: the value is bound and mutably borrowed (`VACANT` is set too).
    pub(crate) const MUT: u32 = 1 << 14;
    /// `local` bits that send `set` and `remove` off the fast path.
    pub(crate) const SLOW: u32 = BORROW_MASK | SHIELDED | MUT | CLONING;
    /// `local`: the entry's key reference was demoted to a pin (its thread is
    /// exiting), so freeing the entry releases a pin, not a holder.
    pub(crate) const PINNED: u32 = 1 << 15;
    /// `local`: the entry's holder reference was taken by the key's dying
    /// handle (`EntryHeader::take_key_ref`), so freeing the entry releases
    /// nothing.
    pub(crate) const KEY_TAKEN: u32 = 1 << 16;
    /// `local`: `get` is cloning the value out. Above the slot bits, as
    /// `VACANT` is.
    pub(crate) const CLONING: u32 = 1 << 31;

    pub(crate) const fn time_ms(stamp: u64) -> u64 {
        stamp >> TIME_SHIFT
    }
}

/// The part of an entry that any thread may read: `Sync` by construction.
///
/// An auditor reads it (through a `registration::View`, under the owner's
/// view lock, which keeps the entry linked and live); the owner reads it
/// through its [`EntryHeader`]. Fields that the owner writes while others
/// may read them are atomics with a single writer, the owner, so plain
/// load/store pairs (no read-modify-write) suffice. The owner-only word is
/// not here: it is [`EntryHeader`]'s own field.
#[repr(C)]
pub(crate) struct EntryShared {
    /// One holder reference (a pin once `PINNED`), released when the entry
    /// is freed.
    key: NonNull<KeyShared>,
    /// `SET` and the bind time: what an auditor needs to know.
    stamp: AtomicU64,
    set_site: AtomicPtr<Location<'static>>,
    /// Retained bytes of the bound value (saturating): `size_of::<T>()` plus
    /// the key's heap size hook, if it has one.
    bytes: AtomicU32,
    /// The key's slot: where the entry sits in its thread's table.
    slot: u32,
    /// The owning thread's set counter at the last bind (see `checkpoint`).
    set_seq: AtomicU64,
}

// SAFETY: every field is immutable after creation or atomic, and `key` (the
// only field that is not `Sync` by itself, being a raw pointer) points to a
// `KeyShared`, which is `Sync` and lives while the entry does.
unsafe impl Sync for EntryShared {}
const _: () = {
    const fn sync<T: Sync>() {}
    sync::<KeyShared>();
};
// The per-entry memory budget (64 bytes beyond the value, `tests/memory.rs`)
// assumes this size: the slot fills what would be padding after `bytes`.
#[cfg(all(target_pointer_width = "64", not(loom)))]
const _: () = assert!(size_of::<EntryHeader>() == 48);

/// The word that only the entry's owning thread reads and writes: the key's
/// generation bits (fixed) and the flags (`stamp`'s `local` bits). A `Cell`,
/// so that the compiler may drop the stores `get` makes around a trivial
/// clone (setting `CLONING` and clearing it again; relaxed atomics measured
/// 0.15 ns slower per `get`), which also makes [`EntryHeader`] `!Sync`.
struct OwnerWord(Cell<u64>);

/// The flags' half of an [`OwnerWord`].
const FLAGS_MASK: u64 = u32::MAX as u64;

impl OwnerWord {
    const fn new(key_id: u64, flags: u32) -> Self {
        Self(Cell::new(slots::generation_bits(key_id) | flags as u64))
    }

    /// The flags.
    #[inline]
    fn get(&self) -> u32 {
        // Truncation is the point: the flags are the low 32 bits.
        self.0.get() as u32
    }

    /// Replaces the flags, keeping the generation.
    #[inline]
    fn set(&self, flags: u32) {
        self.0.set((self.0.get() & !FLAGS_MASK) | u64::from(flags));
    }

    #[inline]
    fn generation_bits(&self) -> u64 {
        self.0.get() & !FLAGS_MASK
    }

    /// Whether the word is `id`'s generation with neither `VACANT` nor
    /// `CLONING` set: one load, one xor with the whole id and one test (the
    /// id's slot bits never reach the checked bits; see below).
    #[inline]
    fn is_readable_for(&self, id: u64) -> bool {
        const CHECKED: u64 = !FLAGS_MASK | (stamp::VACANT | stamp::CLONING) as u64;
        // The checked flag bits are at or above the slot limit, so every
        // slot has them clear: xoring the id in leaves them as the word has
        // them, and `id`'s slot needs no mask (one instruction less on
        // `get`'s path).
        const _: () = assert!(CHECKED & FLAGS_MASK & (slots::SLOT_LIMIT - 1) == 0);
        (self.0.get() ^ id) & CHECKED == 0
    }
}

/// The type-erased head of an entry, as its owning thread sees it: the
/// owner-only word plus the shared part. Not `Sync` (the word is a `Cell`),
/// so it never reaches another thread; other threads get the
/// [`EntryShared`] part.
#[repr(C)]
pub(crate) struct EntryHeader {
    /// Owner-only: the key's generation (high 32 bits, fixed at creation)
    /// and the bound flag, borrow count, shield and cloning flags (low 32
    /// bits). One word, so that `get` checks "this key's, and readable" with
    /// one load and one test.
    local: OwnerWord,
    shared: EntryShared,
}

impl core::ops::Deref for EntryHeader {
    type Target = EntryShared;

    #[inline]
    fn deref(&self) -> &EntryShared {
        &self.shared
    }
}

impl EntryShared {
    #[inline]
    pub(crate) fn key(&self) -> &KeyShared {
        // SAFETY: the entry owns a reference to its key.
        unsafe { self.key.as_ref() }
    }

    /// A pin of the entry's key, which stays readable for as long as the
    /// pin lives, whatever happens to the entry.
    pub(crate) fn pin_key(&self) -> KeyPin {
        // SAFETY: the key is live while the entry is (it owns a reference).
        unsafe { KeyPin::pin_raw(self.key) }
    }

    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        self.stamp.load(Ordering::Relaxed)
    }

    pub(crate) fn set_site(&self) -> &'static Location<'static> {
        let site = self.set_site.load(Ordering::Relaxed);
        // SAFETY: only `&'static Location`s are ever stored, from `allocate` on.
        unsafe { &*site }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed) as usize
    }

    /// The owning thread's bind counter at the last bind: unique per bind on
    /// that thread.
    #[inline]
    pub(crate) fn bind_seq(&self) -> u64 {
        self.set_seq.load(Ordering::Relaxed)
    }
}

impl EntryHeader {
    /// The key's id: the generation in the owner word and the slot.
    #[inline]
    pub(crate) fn key_id(&self) -> u64 {
        self.local.generation_bits() | u64::from(self.slot)
    }

    /// The key's slot.
    #[inline]
    pub(crate) fn slot(&self) -> usize {
        self.slot as usize
    }

    /// Whether this entry, found at `id`'s slot, is `id`'s: the slot matches
    /// by position, so only the generation is compared.
    #[inline]
    pub(crate) fn is_at_slot_for(&self, id: u64) -> bool {
        debug_assert_eq!(self.slot(), slots::slot(id));
        self.local.generation_bits() == slots::generation_bits(id)
    }

    /// Whether a value is bound (others read `stamp & SET`).
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.local.get() & (stamp::VACANT | stamp::MUT) != stamp::VACANT
    }

    /// Whether `set`/`remove` can take the fast path.
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        self.local.get() & stamp::SLOW == 0
    }

    /// The owner is the single writer, so load/store is enough.
    #[inline]
    pub(crate) fn update_stamp(&self, f: impl FnOnce(u64) -> u64) {
        self.stamp.store(f(self.stamp()), Ordering::Relaxed);
    }

    /// Marks the current bind as made by the key's initializer
    /// (the next bind clears it).
    pub(crate) fn mark_by_initializer(&self) {
        self.update_stamp(|s| s | stamp::BY_INIT);
    }

    #[inline]
    pub(crate) fn set_bytes(&self, bytes: usize) {
        self.bytes
            .store(u32::try_from(bytes).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn is_borrowed(&self) -> bool {
        self.local.get() & (stamp::BORROW_MASK | stamp::MUT | stamp::CLONING) != 0
    }

    #[inline]
    pub(crate) fn is_shielded(&self) -> bool {
        self.local.get() & stamp::SHIELDED != 0
    }

    /// What the current bind recorded, to restore it later unchanged.
    pub(crate) fn bind_meta(&self) -> BindMeta {
        BindMeta {
            site: self.set_site(),
            seq: self.bind_seq(),
            now_ms: stamp::time_ms(self.stamp()),
            bytes: Some(self.bytes()),
            by_init: self.stamp() & stamp::BY_INIT != 0,
        }
    }

    /// A header with only `key_id` meaningful (its key pointer dangles),
    /// for the table's own tests, which read nothing else.
    #[cfg(test)]
    pub(crate) fn for_table_test(key_id: u64) -> Box<Self> {
        Box::new(Self {
            local: OwnerWord::new(key_id, stamp::VACANT),
            shared: EntryShared {
                key: NonNull::dangling(),
                stamp: AtomicU64::new(0),
                set_site: AtomicPtr::new(core::ptr::null_mut()),
                bytes: AtomicU32::new(0),
                slot: slots::slot_u32(key_id),
                set_seq: AtomicU64::new(0),
            },
        })
    }

    /// This entry as its key's operations take it.
    #[inline]
    pub(crate) fn erased(entry: NonNull<Self>) -> NonNull<ErasedEntry> {
        entry.cast()
    }

    /// On an unlinked entry of an exiting thread: turns the
    /// entry's holder reference into a pin, so that handles dropped while the
    /// exiting thread's values are dropped do not count it as a live entry.
    pub(crate) fn demote_key(&self) {
        debug_assert_eq!(self.local.get() & stamp::PINNED, 0);
        // SAFETY: the entry owns one holder reference to its key.
        let pin = unsafe { KeyRef::from_raw(self.key) }.demote();
        let _ = pin.into_raw();
        self.local.set(self.local.get() | stamp::PINNED);
    }

    /// On an unlinked entry of the calling thread: hands the entry's holder
    /// reference to the caller, so that freeing the entry releases nothing.
    /// The key's dying handle takes it, to free the key with no atomic
    /// operation when the two are its last references.
    pub(crate) fn take_key_ref(&self) -> KeyRef {
        debug_assert_eq!(self.local.get() & (stamp::PINNED | stamp::KEY_TAKEN), 0);
        self.local.set(self.local.get() | stamp::KEY_TAKEN);
        // SAFETY: the entry owned one holder reference, which `KEY_TAKEN`
        // now says it no longer does.
        unsafe { KeyRef::from_raw(self.key) }
    }

    pub(crate) fn set_shielded(&self, shielded: bool) {
        let local = self.local.get() & !stamp::SHIELDED;
        self.local.set(if shielded {
            local | stamp::SHIELDED
        } else {
            local
        });
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
    /// The key's initializer made this bind (`stamp::BY_INIT`): kept when a
    /// value is moved aside and bound again as it was.
    pub(crate) by_init: bool,
}

impl BindMeta {
    /// The auditor-visible stamp of this bind.
    fn stamp(&self) -> u64 {
        let by_init = if self.by_init { stamp::BY_INIT } else { 0 };
        stamp::SET | by_init | (self.now_ms << stamp::TIME_SHIFT)
    }
}

impl<T: 'static> Entry<T> {
    /// Allocates an entry with `value` bound. Takes over the key reference.
    pub(crate) fn allocate(key: KeyRef, value: T, meta: BindMeta) -> NonNull<EntryHeader> {
        let block = blocks::allocate::<Self>();
        let entry = Self {
            header: EntryHeader {
                local: OwnerWord::new(key.id, 0),
                shared: EntryShared {
                    slot: slots::slot_u32(key.id),
                    key: key.into_raw(),
                    stamp: AtomicU64::new(meta.stamp()),
                    set_site: AtomicPtr::new(core::ptr::from_ref(meta.site).cast_mut()),
                    bytes: AtomicU32::new(0),
                    set_seq: AtomicU64::new(meta.seq),
                },
            },
            value: UnsafeCell::new(MaybeUninit::new(value)),
        };
        entry.header.set_bytes(meta.bytes.unwrap_or(size_of::<T>()));
        // SAFETY: `allocate` returns memory for a `Self`, unused by anyone else.
        unsafe { block.write(entry) };
        block.cast()
    }

    /// The typed entry behind a header the map found.
    ///
    /// The caller picks `'a`, and only this contract guards it: an entry
    /// lives until its key dies (a sweep, which runs user `Drop` code, or
    /// the handle's own drop) or its thread exits, so its true lifetime is
    /// "until the next user code that could kill the key", which no Rust
    /// lifetime names. A borrow of the map would not do: user code runs
    /// while the map is borrowed, and accessors must return the entry out of
    /// `map::with` to run the caller's closure outside it.
    ///
    /// # Safety
    /// `header` heads a live `Entry<T>` owned by the current thread, and it
    /// stays live for `'a`: no user code runs while the reference is used,
    /// or the caller holds the key's handle or a borrow of the entry.
    #[inline]
    pub(crate) unsafe fn from_header<'a>(header: NonNull<EntryHeader>) -> &'a Self {
        // SAFETY: `EntryHeader` is the first field of the `repr(C)` `Entry<T>`.
        unsafe { header.cast::<Self>().as_ref() }
    }

    /// The entry behind a key operation's erased pointer (the lifetime is
    /// the caller's for the reason given on [`Self::from_header`]).
    ///
    /// # Safety
    /// As for [`Self::from_header`]: `entry` heads a live `Entry<T>` owned by
    /// the current thread, and it stays live for `'a`.
    #[inline]
    pub(crate) unsafe fn from_erased<'a>(entry: NonNull<ErasedEntry>) -> &'a Self {
        // SAFETY: guaranteed by the caller.
        unsafe { Self::from_header(entry.cast()) }
    }

    #[inline]
    pub(crate) fn header(&self) -> &EntryHeader {
        &self.header
    }

    /// Binds `value`, returning the previous one. The caller checked that the
    /// value is not borrowed (and handled shields).
    #[inline]
    pub(crate) fn bind(&self, value: T, meta: BindMeta) -> Option<T> {
        let header = &self.header;
        let local = header.local.get();
        debug_assert!(!header.is_borrowed());
        // SAFETY: owner thread, no borrow outstanding (checked by the caller),
        // so (`MUT` clear) `VACANT` tells whether the slot is initialized.
        let old = unsafe {
            let slot = &mut *self.value.get();
            let old = (local & stamp::VACANT == 0).then(|| slot.assume_init_read());
            slot.write(value);
            old
        };
        header.local.set(local & !stamp::VACANT);
        header.set_seq.store(meta.seq, Ordering::Relaxed);
        header
            .set_site
            .store(core::ptr::from_ref(meta.site).cast_mut(), Ordering::Relaxed);
        if let Some(bytes) = meta.bytes {
            header.set_bytes(bytes);
        }
        header.stamp.store(meta.stamp(), Ordering::Relaxed);
        old
    }

    /// Unbinds and returns the value. The caller checked that it is not borrowed.
    #[inline]
    pub(crate) fn unbind(&self) -> Option<T> {
        let header = &self.header;
        let local = header.local.get();
        if local & stamp::VACANT != 0 {
            return None;
        }
        debug_assert!(!header.is_borrowed());
        header.local.set(local | stamp::VACANT);
        header.update_stamp(|s| s & !stamp::SET);
        // SAFETY: `VACANT` was clear, so the value is initialized; setting it
        // transfers ownership of the value to us.
        Some(unsafe { (*self.value.get()).assume_init_read() })
    }

    /// Restores `value` with the bind metadata it had before a guard
    /// sheltered it. The entry is unbound and unborrowed.
    pub(crate) fn rebind(&self, value: T, meta: BindMeta) {
        debug_assert!(!self.header.is_set() && !self.header.is_borrowed());
        let none = self.bind(value, meta);
        debug_assert!(none.is_none());
    }

    /// Borrows the bound value. `Ok(None)` when nothing is bound.
    #[inline]
    pub(crate) fn borrow(&self) -> Result<Option<Ref<'_, T>>, AccessError> {
        let local = self.header.local.get();
        if local & stamp::VACANT != 0 {
            return unbound_or_mut(local);
        }
        if local & stamp::BORROW_MASK == stamp::BORROW_MASK {
            too_many_borrows();
        }
        self.header.local.set(local + stamp::BORROW_ONE);
        Ok(Some(Ref { entry: self }))
    }

    /// `get`'s fast path: clones the value out of the entry at `id`'s slot
    /// if it is `id`'s entry (same generation) and the value is readable
    /// (`VACANT` and `CLONING` clear): one load and one test decide.
    /// `None` sends the caller to the full path.
    ///
    /// # Safety
    /// `header` is the live entry at `id`'s slot in the current thread's
    /// table, and `id` is a key whose values are `T`, alive during the
    /// clone, or an id no key has (0). An entry sits at its own key's slot,
    /// so one found at `id`'s slot with `id`'s generation has `id` as its
    /// key id, and ids are never handed out twice: it is `id`'s entry.
    #[inline]
    pub(crate) unsafe fn clone_if_readable(header: NonNull<EntryHeader>, id: u64) -> Option<T>
    where
        T: Clone,
    {
        // SAFETY: live and owned by this thread (caller).
        if !unsafe { header.as_ref() }.local.is_readable_for(id) {
            return None;
        }
        // SAFETY: `id`'s entry (caller), so it holds a `T`; the caller keeps
        // it alive; readable per the check above.
        Some(unsafe { Self::from_header(header).clone_readable() })
    }

    /// Clones the value out, marking it `CLONING` meanwhile: the clone may
    /// run user code that touches this thread-local. The store and its undo
    /// cost nothing around a clone that runs no code (see below).
    ///
    /// # Safety
    /// `VACANT` and `CLONING` are clear.
    #[inline]
    unsafe fn clone_readable(&self) -> T
    where
        T: Clone,
    {
        let flags = &self.header.local;
        let local = flags.get();
        // SAFETY: the caller's precondition. Telling the compiler lets it
        // see that the `CLONING` store and its undo below restore the word
        // as it was, and drop both around a clone that runs no code.
        unsafe { core::hint::assert_unchecked(local & (stamp::VACANT | stamp::CLONING) == 0) };
        struct Cloning<'a>(&'a OwnerWord);
        impl Drop for Cloning<'_> {
            #[inline]
            fn drop(&mut self) {
                self.0.set(self.0.get() & !stamp::CLONING);
            }
        }
        flags.set(local | stamp::CLONING);
        let _cloning = Cloning(flags);
        // SAFETY: bound and not mutably borrowed (`VACANT` is clear, caller),
        // and `CLONING` keeps it from being replaced or removed during the
        // clone.
        unsafe { (*self.value.get()).assume_init_ref() }.clone()
    }

    /// Clones the bound value out, in any state: `Ok(None)` when nothing is
    /// bound, an error when it is mutably borrowed, and through the borrow
    /// count when it is already being cloned (a `get` nested in the value's
    /// `Clone`). `get`'s path when [`Self::clone_if_readable`] declined.
    #[cold]
    #[inline(never)]
    pub(crate) fn clone_out(&self) -> Result<Option<T>, AccessError>
    where
        T: Clone,
    {
        let local = self.header.local.get();
        if local & stamp::VACANT != 0 {
            return unbound_or_mut(local);
        }
        Ok(self.borrow()?.map(|value| (*value).clone()))
    }

    /// Borrows the bound value mutably. `Ok(None)` when nothing is bound.
    pub(crate) fn borrow_mut(&self) -> Result<Option<RefMut<'_, T>>, AccessError> {
        let local = self.header.local.get();
        if local & stamp::VACANT != 0 {
            return unbound_or_mut(local);
        }
        if self.header.is_borrowed() {
            return Err(AccessError::Borrowed);
        }
        self.header.local.set(local | stamp::VACANT | stamp::MUT);
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
    pub(crate) unsafe fn drop_erased(header: NonNull<ErasedEntry>) {
        // The block is freed below without dropping `Self`: only the value,
        // moved out first, needs dropping.
        const { assert!(!core::mem::needs_drop::<EntryHeader>()) };
        let block = header.cast::<Self>();
        // SAFETY: guaranteed by the caller: a live `Entry<T>` that no one
        // else uses any more.
        let entry = unsafe { &mut *block.as_ptr() };
        let value = entry.header.is_set().then(|| {
            // SAFETY: `is_set` says the value is initialized; the block is
            // freed below without dropping it again.
            unsafe { entry.value.get_mut().assume_init_read() }
        });
        let key = entry.header.key;
        let local = entry.header.local.get();
        if local & stamp::KEY_TAKEN != 0 {
            // The reference went to the key's dying handle.
        } else if local & stamp::PINNED != 0 {
            // SAFETY: a pinned entry owns one pin.
            drop(unsafe { KeyPin::from_raw(key) });
        } else {
            // SAFETY: the entry owns one holder reference.
            drop(unsafe { KeyRef::from_raw(key) });
        }
        // SAFETY: `allocate` took the block from `blocks::allocate::<Self>()`,
        // its value was moved out above, and nothing uses it any more.
        unsafe { blocks::free(block) };
        drop(value);
    }
}

/// `local` has `VACANT` set: unbound, or mutably borrowed.
#[cold]
#[inline(never)]
fn unbound_or_mut<R>(local: u32) -> Result<Option<R>, AccessError> {
    if local & stamp::MUT != 0 {
        Err(AccessError::Borrowed)
    } else {
        Ok(None)
    }
}

#[cold]
#[inline(never)]
fn too_many_borrows() -> ! {
    panic!("tl-core: too many nested borrows of one thread-local (4095)")
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
        let local = &self.entry.header.local;
        local.set(local.get() - stamp::BORROW_ONE);
    }
}

/// An exclusive borrow of an entry's value.
pub(crate) struct RefMut<'a, T: 'static> {
    entry: &'a Entry<T>,
}

impl<T: 'static> RefMut<'_, T> {
    pub(crate) fn value(&mut self) -> &mut T {
        // SAFETY: `MUT` excludes every other access to the value.
        unsafe { (*self.entry.value.get()).assume_init_mut() }
    }

    pub(crate) fn record_bytes(&self, bytes: usize) {
        self.entry.header.set_bytes(bytes);
    }
}

impl<T: 'static> Drop for RefMut<'_, T> {
    fn drop(&mut self) {
        let local = &self.entry.header.local;
        local.set(local.get() & !(stamp::MUT | stamp::VACANT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::GENERATION_ONE;

    const ID: u64 = 3 * GENERATION_ONE + 7;

    #[test]
    fn the_owner_word_keeps_the_generation_under_flag_changes() {
        let word = OwnerWord::new(ID, stamp::VACANT);
        assert_eq!(word.get(), stamp::VACANT);
        assert_eq!(word.generation_bits(), 3 * GENERATION_ONE);
        word.set(u32::MAX);
        word.set(stamp::SHIELDED | stamp::BORROW_ONE);
        assert_eq!(word.get(), stamp::SHIELDED | stamp::BORROW_ONE);
        assert_eq!(word.generation_bits(), 3 * GENERATION_ONE);
    }

    #[test]
    fn readable_needs_the_generation_and_vacant_and_cloning_clear() {
        let word = OwnerWord::new(ID, 0);
        assert!(word.is_readable_for(ID));
        // The slot is the table's business: only the generation is compared,
        // whatever the slot (the highest one included: its bits stay below
        // the flags).
        assert!(word.is_readable_for(ID + 1));
        let highest_slot = 3 * GENERATION_ONE + crate::slots::SLOT_LIMIT - 1;
        assert!(word.is_readable_for(highest_slot));
        word.set(stamp::CLONING);
        assert!(!word.is_readable_for(highest_slot));
        word.set(stamp::VACANT);
        assert!(!word.is_readable_for(highest_slot));
        // Flags that do not block a read.
        for flags in [
            stamp::BORROW_ONE,
            stamp::BORROW_MASK,
            stamp::SHIELDED,
            stamp::PINNED,
            stamp::KEY_TAKEN,
        ] {
            word.set(flags);
            assert!(word.is_readable_for(ID), "{flags:#x}");
        }
        for flags in [stamp::VACANT, stamp::VACANT | stamp::MUT, stamp::CLONING] {
            word.set(flags);
            assert!(!word.is_readable_for(ID), "{flags:#x}");
        }
        word.set(0);
        for other in [0, 7, ID - GENERATION_ONE, ID + GENERATION_ONE, u64::MAX] {
            assert!(!word.is_readable_for(other), "{other:#x}");
        }
    }

    #[test]
    fn a_header_rebuilds_its_key_id_from_generation_and_slot() {
        let header = EntryHeader::for_table_test(ID);
        assert_eq!(header.key_id(), ID);
        assert_eq!(header.slot(), 7);
        header.set_shielded(true);
        assert_eq!(header.key_id(), ID);
    }
}
