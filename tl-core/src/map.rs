//! The per-thread map: one per thread, in a `const`-initialized `thread_local!`.
//!
//! # Design
//! The hot path: a key's id is a dense slot plus a generation (`slots`), and
//! the thread's table is a vector of entry pointers indexed by slot
//! (`table`). So `get` is a TLS access, a bounds check, a load of the slot and
//! one load and `test` of the entry's owner word, which holds the key's
//! generation beside the flags: the test checks the generation (a reused
//! slot never reaches a dead key's value; the slot matches by position) and
//! the flags (bound, not mutably borrowed, not being cloned) at once. There
//! is no hashing, no probing and no death check. The JDK's open-addressing
//! table, which the first version followed, spent an extra multiply, mask and
//! probe loop per lookup. A slot is reused only once every entry of its last key is freed,
//! so a table never holds two keys' entries at one index; tables grow to the
//! highest slot their thread binds, and a sweep shrinks them when their
//! upper three quarters are empty.
//!
//! The table's first [`MIRRORED_SLOTS`] (64) slots are also copied into the
//! map's own thread-local storage (`mirror`, 512 bytes per thread). A lookup
//! of a key with a low slot checks it against that constant and loads the
//! entry pointer at a fixed offset from the thread pointer: no load of the
//! table's address and capacity, two of the eight memory operations of a
//! `get` whose `Option` result is stored. Slots are dense and recycled, so
//! the first 64 keys alive at once usually take those slots (not always: a
//! released slot waits in its releasing thread's cache or the global list
//! while a new key may take a higher one, see `slots`); a later key's `get`
//! looks in the table after the check against 64: 0.86-1.17 ns on an AMD
//! EPYC depending on the build's code layout, against 0.79-0.82 ns before the
//! mirror (its own copy of the check keeps it from paying more, see
//! `ops::clone_if_readable`).
//! Auditors read only the table; the owner writes both with every change
//! (`place`, `vacate`, `destroy`).
//!
//! [`LocalMap`] holds only `Cell`s of plain data, so its `thread_local!` has no
//! destructor and every access compiles to a direct TLS access with no
//! "initialized/destroyed" state check. Thread exit is handled by a second,
//! tiny `thread_local!` ([`Teardown`]) that is touched once, when the thread
//! first registers, and whose destructor empties the map.
//!
//! Key death: dropping a `ThreadLocal` marks its key dead, reclaims the calling
//! thread's own value at once, and, if other threads hold values for it, bumps
//! [`DEATH_EPOCH`]. Every access that changes the thread's bindings (a bind,
//! an unbind, a scope or guard, a task start) compares the epoch with the one
//! it last saw (one relaxed-cost load) and, when it moved, sweeps its table for entries
//! of dead keys and drops their values on this thread, which is the only
//! thread allowed to drop them (values need not be `Send`).
//!
//! # Invariants
//! - `table`, `len` and the registry view describe the same table. The table
//!   is replaced, and its slots emptied, only with the view lock held; a slot
//!   is filled with or without it (see `table` and [`LocalMap::link`]).
//! - `mirror[i]` is `table`'s slot `i` (empty beyond its capacity).
//! - `state` goes `Fresh -> Live -> Destroyed`, or `Fresh -> Destroyed` when
//!   the first insert comes too late in thread exit to register a destructor.
//!
//! # Thread exit
//! `Teardown`'s destructor unlinks the whole table under the lock, unregisters
//! the thread and only then drops the values. A value's `Drop` that touches
//! thread-locals then sees an empty, destroyed map: reads find nothing and
//! `set` drops its argument at once. Nothing is stored after teardown, so
//! nothing can outlive the thread.
//!
//! One exception, outside Rust's thread-locals: a POSIX thread-specific-data
//! destructor (`pthread_key_create`) runs after them on glibc. If it is the
//! thread's *first* use of tl-core, the map registers a destructor that glibc
//! will no longer run, so what it binds is never dropped and the thread stays
//! registered. Rust `thread_local!` destructors are not affected.
//!
//! # Reentrancy
//! Values are dropped only after the table is consistent and the lock is
//! released, so a `Drop` may use any thread-local, including this one.
//! Panics from values dropped here (dead keys, thread exit) are caught and
//! counted in [`crate::stats`], never propagated into an unrelated access.

use core::cell::Cell;
use core::ptr::{self, NonNull};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::entry::EntryHeader;
use crate::registration::{self, ThreadShared, View};
use crate::shields;
use crate::slots;
use crate::sync::{self, AtomicU64, Ordering};
use crate::table::{MIN_SLOTS, Table, capacity_for};
use crate::tasks;

crate::sync::global! {
    /// Bumped whenever a key dies while other threads may hold values for it.
    static DEATH_EPOCH: AtomicU64 = AtomicU64::new(0);
}
crate::sync::global! {
    /// Panics caught while dropping values of dead keys or exiting threads.
    pub(crate) static DROP_PANICS: AtomicU64 = AtomicU64::new(0);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Fresh,
    Live,
    Destroyed,
}

/// Slots below this are mirrored in the map itself (see the module docs).
pub(crate) const MIRRORED_SLOTS: usize = 64;

pub(crate) struct LocalMap {
    table: Cell<Table>,
    /// The first [`MIRRORED_SLOTS`] slots of `table`, copied into the
    /// thread-local itself. Only the owner reads it; auditors read `table`.
    mirror: [Cell<Option<NonNull<EntryHeader>>>; MIRRORED_SLOTS],
    len: Cell<usize>,
    seen_epoch: Cell<u64>,
    /// Counts binds (and guard creations) on this thread; see `checkpoint`.
    seq: Cell<u64>,
    state: Cell<State>,
    /// One `Arc` reference, leaked while `Live`.
    shared: Cell<*const ThreadShared>,
}

impl LocalMap {
    const fn new() -> Self {
        Self {
            table: Cell::new(Table::EMPTY),
            mirror: [const { Cell::new(None) }; MIRRORED_SLOTS],
            len: Cell::new(0),
            seen_epoch: Cell::new(0),
            seq: Cell::new(0),
            state: Cell::new(State::Fresh),
            shared: Cell::new(ptr::null()),
        }
    }
}

crate::sync::local! {
    static MAP: LocalMap = const { LocalMap::new() };
}
crate::sync::local! {
    static TEARDOWN: Teardown = const { Teardown };
}

/// Runs `f` with this thread's map. Never fails: the map has no destructor
/// (see [`sync::with_plain_local`]).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&LocalMap) -> R) -> R {
    sync::with_plain_local(&MAP, f, || {
        let destroyed = LocalMap::new();
        destroyed.state.set(State::Destroyed);
        destroyed
    })
}

/// Runs this thread's exit teardown now. Loom runs thread-local destructors
/// where loom's own primitives can no longer be used, so its models call this
/// as a thread's last step to model the exit.
#[cfg(loom)]
pub(crate) fn exit_thread() {
    with(LocalMap::destroy);
}

/// Tells every thread to sweep for dead keys at its next sweeping access.
pub(crate) fn announce_death() {
    DEATH_EPOCH.fetch_add(1, Ordering::Release);
}

/// A slot beyond the mirror: look in the table.
pub(crate) struct Unmirrored;

/// Marks the path of a slot beyond the mirror as the less likely one, so that
/// the compiler lays out the mirrored lookup without a taken branch (what
/// `core::hint::cold_path` does, which is newer than our `rust-version`).
#[cold]
#[inline]
fn beyond_the_mirror() {}

impl LocalMap {
    /// Finds the entry for `id`, first reclaiming values of keys that died
    /// since the last access.
    #[inline]
    pub(crate) fn find(&self, id: u64) -> Option<NonNull<EntryHeader>> {
        self.reclaim_dead();
        self.find_no_sweep(id)
    }

    /// Drops this thread's values of keys that died since the last access.
    #[inline]
    pub(crate) fn reclaim_dead(&self) {
        if DEATH_EPOCH.load(Ordering::Acquire) != self.seen_epoch.get() {
            self.sweep();
        }
    }

    /// Finds the entry for `id` without sweeping (for guards and teardown paths
    /// that must not run user code).
    #[inline]
    pub(crate) fn find_no_sweep(&self, id: u64) -> Option<NonNull<EntryHeader>> {
        let entry = self.at_slot_of(id)?;
        // SAFETY: slots hold linked, live entries.
        unsafe { entry.as_ref() }
            .is_at_slot_for(id)
            .then_some(entry)
    }

    /// The entry at `id`'s slot, whichever key's it is, without sweeping
    /// (for `get`'s fast path, which checks the generation itself).
    #[inline]
    pub(crate) fn at_slot_of(&self, id: u64) -> Option<NonNull<EntryHeader>> {
        self.mirrored_at_slot_of(id).unwrap_or_else(|Unmirrored| {
            beyond_the_mirror();
            // SAFETY: `table` is this thread's live table; non-null slots
            // point to linked, live entries.
            unsafe { self.table.get().at_slot_of(id) }
        })
    }

    /// The entry at `id`'s slot, whichever key's it is, from the mirror;
    /// `Err` when the slot is beyond it (then [`Self::at_slot_of`] looks in
    /// the table).
    #[inline]
    pub(crate) fn mirrored_at_slot_of(
        &self,
        id: u64,
    ) -> Result<Option<NonNull<EntryHeader>>, Unmirrored> {
        self.mirror
            .get(slots::slot(id))
            .map(Cell::get)
            .ok_or(Unmirrored)
    }

    /// Puts `entry` in its slot of `table`, the thread's live table, and in
    /// the mirror. Needs no view lock: filling an empty slot publishes the
    /// finished entry with one release store (see `table`).
    ///
    /// # Safety
    /// As for [`Table::insert_new`].
    unsafe fn place(&self, table: Table, entry: NonNull<EntryHeader>) {
        // SAFETY: forwarded from the caller.
        unsafe { table.insert_new(entry) };
        // SAFETY: the caller's entry is live.
        if let Some(mirrored) = self.mirror.get(unsafe { entry.as_ref() }.slot()) {
            mirrored.set(Some(entry));
        }
    }

    /// Empties slot `i` of `table`, the thread's live table, and of the
    /// mirror. Taking the view proves the lock is held.
    ///
    /// # Safety
    /// As for [`Table::delete_at`].
    unsafe fn vacate(&self, table: Table, i: usize, _view: &mut View) {
        // SAFETY: forwarded from the caller.
        unsafe { table.delete_at(i) };
        if let Some(mirrored) = self.mirror.get(i) {
            mirrored.set(None);
        }
    }

    /// Whether the mirror holds exactly the table's first slots.
    #[cfg(test)]
    pub(crate) fn mirror_matches_table(&self) -> bool {
        let table = self.table.get();
        self.mirror.iter().enumerate().all(|(i, mirrored)| {
            // SAFETY: `i` is in bounds; this thread's live table.
            let slot = (i < table.capacity()).then(|| unsafe { table.entry_at(i) });
            mirrored.get() == slot.flatten()
        })
    }

    #[inline]
    pub(crate) fn next_seq(&self) -> u64 {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        seq
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq.get()
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.state.get() == State::Destroyed
    }

    /// The linked entries, in slot order. A copy: the caller may run user
    /// code while walking it, but must re-find an entry before using it if
    /// that code could have killed its key.
    pub(crate) fn entries(&self) -> Vec<NonNull<EntryHeader>> {
        // SAFETY: this thread's live table, unmodified during the collect.
        unsafe { self.table.get().entries() }.collect()
    }

    /// Makes the map able to hold entries. False once the thread is exiting.
    #[inline]
    pub(crate) fn go_live(&self) -> bool {
        self.state.get() == State::Live || self.go_live_cold()
    }

    #[cold]
    #[inline(never)]
    fn go_live_cold(&self) -> bool {
        match self.state.get() {
            State::Live => true,
            State::Destroyed => false,
            State::Fresh => {
                // Touching `TEARDOWN` registers its destructor. If that is no
                // longer possible, the thread is exiting and must not store.
                if !cfg!(loom) && TEARDOWN.try_with(|_| ()).is_err() {
                    self.state.set(State::Destroyed);
                    return false;
                }
                let in_task = tasks::with(|tasks| tasks.depth.get() > 0);
                self.shared
                    .set(Arc::into_raw(registration::register(in_task)));
                self.state.set(State::Live);
                true
            }
        }
    }

    /// Tells auditors whether this thread is inside a task now (a no-op
    /// before the thread registers: registration reads `tasks.depth`).
    #[inline]
    pub(crate) fn publish_in_task(&self, in_task: bool) {
        if self.state.get() == State::Live {
            self.shared().set_in_task(in_task);
        }
    }

    /// A new reference to this thread's registration, while `Live`.
    pub(crate) fn shared_ref(&self) -> Option<Arc<ThreadShared>> {
        if self.state.get() != State::Live {
            return None;
        }
        let shared = self.shared.get();
        // SAFETY: while `Live`, `shared` holds a leaked `Arc` reference, so
        // adding one is sound.
        unsafe {
            Arc::increment_strong_count(shared);
            Some(Arc::from_raw(shared))
        }
    }

    #[inline]
    fn shared(&self) -> &ThreadShared {
        debug_assert_eq!(self.state.get(), State::Live);
        // SAFETY: while `Live`, `shared` holds a leaked `Arc` reference.
        unsafe { &*self.shared.get() }
    }

    /// Links a new entry. The map must be `Live` and hold no entry of the
    /// same key.
    ///
    /// Without the view lock when the table has room: filling an empty slot
    /// is one release store of the finished entry, which an auditor holding
    /// the lock reads whole or not at all (see `table`). Only a table that
    /// must grow takes the lock, to replace the table under it.
    pub(crate) fn link(&self, entry: NonNull<EntryHeader>) {
        let len = self.len.get() + 1;
        let table = self.table.get();
        // SAFETY: the caller's new entry is live.
        let slot = unsafe { entry.as_ref() }.slot();
        if slot < table.capacity() {
            // SAFETY: the slot is in bounds; the key has no entry here
            // (caller), and no other live key has its slot; the entry is
            // written in full.
            unsafe { self.place(table, entry) };
        } else {
            let mut view = self.shared().view.lock();
            let table = self.resize(&mut view, capacity_for(slot));
            // SAFETY: as above; the new table has room.
            unsafe { self.place(table, entry) };
        }
        self.len.set(len);
        self.shared().linked.store(len, Ordering::Relaxed);
    }

    /// Unlinks the entry for `id`, if any, and returns it; dropping it is the
    /// caller's job.
    /// Returns `None` for a borrowed entry (only a dead key's can be, by
    /// `inherit::capture` or a report): it is left for a later sweep.
    pub(crate) fn unlink(&self, id: u64) -> Option<NonNull<EntryHeader>> {
        if self.state.get() != State::Live {
            return None;
        }
        let table = self.table.get();
        // SAFETY: this thread's live table.
        let (i, entry) = unsafe { table.find(id) }?;
        // SAFETY: linked entries are live.
        if unsafe { entry.as_ref() }.is_borrowed() {
            self.sweep_again();
            return None;
        }
        let mut view = self.shared().view.lock();
        // SAFETY: view lock held; slot `i` holds `entry`.
        unsafe { self.vacate(table, i, &mut view) };
        self.after_unlink(&mut view, 1);
        Some(entry)
    }

    fn after_unlink(&self, _view: &mut View, removed: usize) {
        let len = self.len.get() - removed;
        self.len.set(len);
        self.shared().linked.store(len, Ordering::Relaxed);
    }

    /// Shrinks the table to half its size when every entry sits in its
    /// lowest quarter, after a sweep. Not on every unlink: a key cycling
    /// through one high slot would then shrink and regrow the table each time.
    fn shrink_to_fit(&self, view: &mut View, highest: Option<usize>) {
        let capacity = self.table.get().capacity();
        let wanted = highest.map_or(MIN_SLOTS, capacity_for);
        if capacity > MIN_SLOTS && wanted * 4 <= capacity {
            self.resize(view, wanted * 2);
        }
    }

    /// Moves every entry to a new table of `capacity` slots, under the lock.
    fn resize(&self, view: &mut View, capacity: usize) -> Table {
        let old = self.table.get();
        let new = Table::allocate(capacity);
        // SAFETY: `old` is live; `new` is empty and large enough.
        unsafe { old.copy_into(new) };
        self.table.set(new);
        view.table = new;
        if !old.is_empty_sentinel() {
            // SAFETY: the view lock is held and both the owner and the view
            // now point at `new`, so no one can read `old` any more.
            unsafe { old.free() };
        }
        new
    }

    /// Makes the next sweeping access sweep, whether or not another key dies.
    fn sweep_again(&self) {
        self.seen_epoch.set(self.seen_epoch.get().wrapping_sub(1));
    }

    /// Reclaims every entry whose key died. Runs when the death epoch moved.
    #[cold]
    #[inline(never)]
    fn sweep(&self) {
        // Record the epoch before scanning: a key that dies during the scan
        // bumps it again, and the next sweeping access sweeps again.
        self.seen_epoch.set(DEATH_EPOCH.load(Ordering::Acquire));
        if self.len.get() == 0 {
            return;
        }
        let mut dead = Vec::new();
        let mut busy = false;
        {
            let mut view = self.shared().view.lock();
            let table = self.table.get();
            let mut highest = None;
            for i in 0..table.capacity() {
                // SAFETY: `i` is in bounds; this thread's live table.
                let Some(entry) = (unsafe { table.entry_at(i) }) else {
                    continue;
                };
                // SAFETY: linked entries are live.
                let header = unsafe { entry.as_ref() };
                if header.key().is_alive() {
                    highest = Some(i);
                } else if header.is_borrowed() {
                    // A dead key's value borrowed by `inherit::capture` or a
                    // report (which hold no handle) while their user code
                    // runs: reclaim it at a later access, once released.
                    busy = true;
                    highest = Some(i);
                } else {
                    // SAFETY: view lock held; `i` is in bounds.
                    unsafe { self.vacate(table, i, &mut view) };
                    dead.push(entry);
                }
            }
            if !dead.is_empty() {
                self.after_unlink(&mut view, dead.len());
                self.shrink_to_fit(&mut view, highest);
            }
        }
        if busy {
            self.sweep_again();
        }
        drop_entries(dead);
    }

    /// Empties the map for good. Called once, from `Teardown`'s destructor.
    fn destroy(&self) {
        let was = self.state.replace(State::Destroyed);
        if was != State::Live {
            return;
        }
        let table = self.table.replace(Table::EMPTY);
        for mirrored in &self.mirror {
            mirrored.set(None);
        }
        self.len.set(0);
        // SAFETY: while `Live`, `shared` held a leaked `Arc` reference; we take
        // it back exactly once (the state is now `Destroyed`).
        let shared = unsafe { Arc::from_raw(self.shared.replace(ptr::null())) };
        {
            let mut view = shared.view.lock();
            view.table = Table::EMPTY;
            shared.linked.store(0, Ordering::Relaxed);
            shared.mark_exited();
        }
        registration::unregister(shared.info.id);
        drop(shared);
        let entries: Vec<_> = if table.is_empty_sentinel() {
            Vec::new()
        } else {
            // SAFETY: unlinked from the view above; only this thread sees it.
            let entries = unsafe { table.entries() }.collect();
            // SAFETY: no one can read the table any more.
            unsafe { table.free() };
            entries
        };
        // These entries are going away with the thread: handles dropped by the
        // values dropped below must not count them as other threads' entries.
        for entry in &entries {
            // SAFETY: unlinked and owned by this thread.
            unsafe { entry.as_ref() }.demote_key();
        }
        let shields = shields::take();
        drop_entries(entries);
        for shield in shields {
            drop_caught(move || drop(shield));
        }
    }
}

/// Frees unlinked entries, dropping their values on this thread.
pub(crate) fn drop_entries(entries: Vec<NonNull<EntryHeader>>) {
    entries.into_iter().for_each(drop_entry);
}

/// Frees an unlinked entry (of a dead key, or of an exiting thread), dropping
/// its value on this thread.
pub(crate) fn drop_entry(entry: NonNull<EntryHeader>) {
    // SAFETY: the entry is linked nowhere and owned by this thread.
    let drop_entry = unsafe { entry.as_ref() }.key().ops.drop_entry;
    let entry = EntryHeader::erased(entry);
    // SAFETY: unlinked, unborrowed (`sweep` and `unlink` leave borrowed
    // entries linked, and an exiting thread runs no borrows) and freed once.
    drop_caught(move || unsafe { drop_entry(entry) });
}

/// Runs `f` (which drops values), catching and counting a panic so that it
/// cannot abort a thread exit or surface in an unrelated access.
pub(crate) fn drop_caught(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        DROP_PANICS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Its destructor empties this thread's map when the thread exits.
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        MAP.with(LocalMap::destroy);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ThreadLocal;

    fn mirror_holds() -> bool {
        with(LocalMap::mirror_matches_table)
    }

    #[test]
    fn the_mirror_follows_every_change_to_the_tables_first_slots() {
        std::thread::spawn(|| {
            // Keys on both sides of the mirrored range, on a fresh thread.
            let keys: Vec<ThreadLocal<usize>> = (0..MIRRORED_SLOTS * 2)
                .map(|_| ThreadLocal::new())
                .collect();
            for (i, key) in keys.iter().enumerate() {
                key.set(i);
                assert!(mirror_holds(), "after binding key {i}");
            }
            for (i, key) in keys.iter().enumerate() {
                assert_eq!(key.get(), Some(i));
            }
            // Unbinding leaves the entry linked; dropping a key unlinks its
            // entry on this thread.
            for key in keys.iter().step_by(3) {
                key.remove();
            }
            assert!(mirror_holds());
            let (kept, dropped): (Vec<_>, Vec<_>) =
                keys.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
            drop(dropped);
            assert!(mirror_holds());
            for (i, key) in &kept {
                assert_eq!(key.get(), (i % 3 != 0).then_some(*i));
            }
            // Keys that die on another thread while this one holds values
            // are reclaimed by this thread's next bind, a sweep, which also
            // shrinks the table once its upper part is empty.
            let dying: Vec<ThreadLocal<usize>> =
                (0..MIRRORED_SLOTS).map(|_| ThreadLocal::new()).collect();
            for key in &dying {
                key.set(0);
            }
            assert!(mirror_holds());
            std::thread::spawn(move || drop(dying)).join().unwrap();
            let before = with(|map| map.len.get());
            ThreadLocal::<u8>::new().set(0); // the bind sweeps; the key dies at once
            assert_eq!(with(|map| map.len.get()), before - MIRRORED_SLOTS);
            assert!(mirror_holds());
            drop(kept);
            assert!(mirror_holds());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_that_exits_leaves_nothing_in_its_mirror() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static MIRROR_WAS_EMPTY: AtomicBool = AtomicBool::new(false);
        struct ChecksAtExit;
        impl Drop for ChecksAtExit {
            fn drop(&mut self) {
                let empty = with(|map| map.mirror.iter().all(|m| m.get().is_none()));
                MIRROR_WAS_EMPTY.store(empty, Ordering::Relaxed);
            }
        }
        static KEY: ThreadLocal<ChecksAtExit> = ThreadLocal::new();
        std::thread::spawn(|| {
            KEY.set(ChecksAtExit);
        })
        .join()
        .unwrap();
        assert!(MIRROR_WAS_EMPTY.load(Ordering::Relaxed));
    }
}
