//! Thread registration: the process-wide list of threads that hold (or
//! held) values, and each one's shared part: its identity, whether it is
//! alive and inside a task, and the lock-guarded view of its table that
//! `registry` snapshots. The map registers its thread on the first insert and
//! unregisters it on exit.
//!
//! # Invariants
//! - A thread is in the list from its registration until its exit (when its
//!   map is already empty and `alive` is false).
//! - `in_task` and `alive` have one writer, the owning thread: plain
//!   `Release` stores, no read-modify-write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::ThreadId;

use crate::clock;
use crate::entry::{EntryHeader, EntryShared};
use crate::sync::{self, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering, SpinLock, lock};
use crate::table::Table;

sync::global! {
    static REGISTRY: Mutex<BTreeMap<u64, Arc<ThreadShared>>> = Mutex::new(BTreeMap::new());
}
sync::global! {
    static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);
}

/// What an auditor may read of a thread's table, guarded by the view lock.
///
/// Invariant (kept by the owner's map, which writes `table` only while
/// holding the lock): `table` is the owner's live table, or the empty one,
/// and every entry linked in it stays live and linked while the lock is held.
pub(crate) struct View {
    pub(crate) table: Table,
}

impl View {
    /// The shared parts of the thread's entries, in table order: readable
    /// for as long as the view (hence its lock) is borrowed.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &EntryShared> {
        // SAFETY: `&self` comes from the view lock's guard, so by the
        // invariant above the table is live and unmodified, and its entries
        // live, for the borrow.
        unsafe { self.table.entries_from_other_thread() }.map(|entry| {
            // SAFETY: as above; only the `Sync` shared part is handed out.
            let header: &EntryHeader = unsafe { entry.as_ref() };
            &**header
        })
    }
}

/// A thread's registration: its identity and the lock-guarded view of its table.
pub(crate) struct ThreadShared {
    pub(crate) info: ThreadInfo,
    pub(crate) view: SpinLock<View>,
    /// How many entries the thread has linked: a capacity hint for
    /// snapshots. Written by the owner alone (plain stores); may be behind
    /// the table while the owner links one without the view lock.
    pub(crate) linked: AtomicUsize,
    pub(crate) alive: AtomicBool,
    /// Whether the thread is inside a task scope now. Written by the owner
    /// alone (plain stores, no read-modify-write) when its outermost task
    /// scope opens and closes; `Release`, so an auditor that reads `false`
    /// with `Acquire` also sees the unbinds the task made before it ended.
    pub(crate) in_task: AtomicBool,
}

impl ThreadShared {
    #[inline]
    pub(crate) fn set_in_task(&self, in_task: bool) {
        self.in_task.store(in_task, Ordering::Release);
    }

    pub(crate) fn mark_exited(&self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// Identifies a thread in reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThreadInfo {
    /// tl-core's own thread number: small, unique for the process, never
    /// reused (`std::thread::ThreadId` has no stable integer form).
    pub id: u64,
    /// The standard library's id of the thread.
    pub std_id: ThreadId,
    /// The thread's name, if it has one.
    pub name: Option<Arc<str>>,
}

impl ThreadInfo {
    /// The name, or `<unnamed>`.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }
}

/// Registers the calling thread; `in_task`: whether it is inside a task scope.
pub(crate) fn register(in_task: bool) -> Arc<ThreadShared> {
    clock::refresh();
    let current = std::thread::current();
    let shared = Arc::new(ThreadShared {
        info: ThreadInfo {
            id: NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed),
            std_id: current.id(),
            name: current.name().map(Arc::from),
        },
        view: SpinLock::new(View {
            table: Table::empty(),
        }),
        linked: AtomicUsize::new(0),
        alive: AtomicBool::new(true),
        in_task: AtomicBool::new(in_task),
    });
    lock(&REGISTRY).insert(shared.info.id, Arc::clone(&shared));
    shared
}

pub(crate) fn unregister(id: u64) {
    lock(&REGISTRY).remove(&id);
}

/// Every registered thread's shared part.
pub(crate) fn registered() -> Vec<Arc<ThreadShared>> {
    lock(&REGISTRY).values().cloned().collect()
}
