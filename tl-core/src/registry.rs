//! The audit registry: every thread that holds thread-local values, and
//! consistent snapshots of their entries taken from any other thread.
//!
//! # Design
//! Each thread with a map registers one `ThreadShared` here on its first
//! insert and unregisters on exit. The owner changes its table's structure
//! (insert, delete, resize, exit) only while holding `ThreadShared::view`; a
//! snapshot takes the same lock for the few microseconds it needs to copy the
//! entry headers. Reading, rebinding and unbinding a value never take the
//! lock (only a thread's first bind of a key, which creates its entry, does):
//! they only write the header's atomics, so `get` costs no lock and no atomic
//! read-modify-write, and an idle pooled thread is inspected without its
//! cooperation.

use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock;
use crate::entry::{EntryShared, stamp};
use crate::key::KeyInfo;
use crate::map::{self, LocalMap};
use crate::registration::{self, ThreadShared};
use crate::sync::Ordering;

pub use crate::registration::ThreadInfo;

/// A registered thread, possibly exited since.
#[derive(Clone)]
pub struct ThreadRef(Arc<ThreadShared>);

impl ThreadRef {
    /// The thread's identity.
    pub fn info(&self) -> &ThreadInfo {
        &self.0.info
    }

    /// False once the thread has exited (its values were dropped then).
    pub fn is_alive(&self) -> bool {
        self.0.alive.load(Ordering::Acquire)
    }

    /// Whether the thread is inside a task scope right now (a
    /// [`TaskScope`](crate::checkpoint::TaskScope): a `#[thread_local_scoped]`
    /// handler, or an auditor's task wrapper). A thread that is not holds
    /// task-scoped values only if some work left them behind, or bound them
    /// outside any task. One atomic load; the answer may be stale by the time
    /// the caller acts on it.
    pub fn in_task(&self) -> bool {
        self.0.in_task.load(Ordering::Acquire)
    }

    /// Copies the thread's entries. Takes the thread's view lock for the
    /// duration of the copy only; the thread keeps running.
    pub fn snapshot(&self) -> ThreadSnapshot {
        let taken_at = clock::refresh();
        let linked = self.0.linked.load(Ordering::Relaxed);
        let view = self.0.view.lock();
        let mut entries = Vec::with_capacity(linked);
        entries.extend(view.entries().map(EntrySnapshot::read));
        drop(view);
        ThreadSnapshot {
            thread: self.0.info.clone(),
            alive: self.is_alive(),
            entries,
            taken_at,
        }
    }
}

impl ThreadRef {
    /// Calls `f` on each of the thread's entries (bound or not) without
    /// copying them into a vector: what a periodic scan of many threads wants.
    ///
    /// `f` runs while the inspected thread's view lock is held, so it must be
    /// short and must not wait for that thread; the thread keeps running,
    /// but creating or dropping entries waits for `f`. On the calling thread's
    /// own registration this takes a snapshot first instead, so that `f` may
    /// use thread-locals freely.
    pub fn for_each_entry(&self, mut f: impl FnMut(&EntrySnapshot)) {
        if self.0.info.std_id == std::thread::current().id() {
            self.snapshot().entries.iter().for_each(f);
            return;
        }
        clock::refresh();
        let view = self.0.view.lock();
        for entry in view.entries() {
            f(&EntrySnapshot::read(entry));
        }
    }
}

impl core::fmt::Debug for ThreadRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadRef")
            .field("info", self.info())
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// The calling thread's registration, if it has one (a thread registers when
/// it first binds a value, and unregisters when it exits).
pub fn current() -> Option<ThreadRef> {
    map::with(LocalMap::shared_ref).map(ThreadRef)
}

/// Every thread currently registered (threads that hold or held values and
/// have not exited).
pub fn threads() -> Vec<ThreadRef> {
    registration::registered()
        .into_iter()
        .map(ThreadRef)
        .collect()
}

/// Snapshots every registered thread, one at a time.
pub fn snapshot_all() -> Vec<ThreadSnapshot> {
    threads().iter().map(ThreadRef::snapshot).collect()
}

/// The entries of one thread at one moment.
#[derive(Clone, Debug)]
pub struct ThreadSnapshot {
    /// Whose entries these are.
    pub thread: ThreadInfo,
    /// False if the thread exited before or during the snapshot.
    pub alive: bool,
    /// Every entry, bound or not, in table order.
    pub entries: Vec<EntrySnapshot>,
    /// When the snapshot was taken.
    pub taken_at: Instant,
}

impl ThreadSnapshot {
    /// Entries holding a value.
    pub fn bound(&self) -> impl Iterator<Item = &EntrySnapshot> {
        self.entries.iter().filter(|e| e.bound)
    }

    /// Entries holding a value for a dead key: the leak the JDK cannot see.
    pub fn stale(&self) -> impl Iterator<Item = &EntrySnapshot> {
        self.bound().filter(|e| e.is_stale())
    }

    /// Sum of the retained bytes of bound values.
    pub fn retained_bytes(&self) -> usize {
        self.bound().map(|e| e.bytes).sum()
    }
}

/// One entry of a thread's map. Never contains the value.
#[derive(Clone, Copy, Debug)]
pub struct EntrySnapshot {
    /// The key's metadata; `key.alive == false` means the entry is stale.
    pub key: KeyInfo,
    /// Whether a value is bound (entries outlive `remove`, to make the next
    /// `set` allocation-free).
    pub bound: bool,
    /// Bytes retained by the bound value: `size_of` plus the key's heap size
    /// hook, if it has one.
    pub bytes: usize,
    /// Where the value was last bound.
    pub set_site: Option<&'static Location<'static>>,
    /// The value was bound by the key's initializer
    /// ([`ThreadLocal::with_initial`](crate::ThreadLocal::with_initial)) on
    /// a read at `set_site` that found nothing bound, not by a `set`.
    pub by_initializer: bool,
    /// When the value was last bound, at the clock's refresh granularity (see
    /// [`clock::refresh`]): never later than the real time.
    pub set_at: Instant,
    /// The thread's bind counter at the last bind: unique among the binds of
    /// one thread and increasing, so it identifies *this* bind (two binds in
    /// the same clock tick have equal `set_at` but different `bind_seq`).
    pub bind_seq: u64,
}

impl EntrySnapshot {
    pub(crate) fn read(header: &EntryShared) -> Self {
        let s = header.stamp();
        Self {
            key: header.key().info(),
            bound: s & stamp::SET != 0,
            bytes: header.bytes(),
            set_site: Some(header.set_site()),
            by_initializer: s & stamp::BY_INIT != 0,
            set_at: clock::instant_of(stamp::time_ms(s)),
            bind_seq: header.bind_seq(),
        }
    }

    /// The key died while this value was still bound.
    pub fn is_stale(&self) -> bool {
        self.bound && !self.key.alive
    }

    /// How long the value has been bound, as of `now`.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.set_at)
    }
}
