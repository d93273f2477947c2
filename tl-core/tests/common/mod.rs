//! Helpers shared by tl-core's integration tests: drop counters, values that
//! track their own drops, idle worker threads and Miri-scaled loop counts.

// Every test binary compiles this module and uses a different part of it.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

pub mod pending;

use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::{self, JoinHandle, ThreadId};

use tl_core::registry::{self, EntrySnapshot, ThreadRef, ThreadSnapshot};

/// `normal` in an ordinary run, `miri` under Miri, which is ~1000x slower.
pub const fn scaled(normal: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { normal }
}

/// Locks a mutex that serializes tests, ignoring poisoning from a failed test.
pub fn serial(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

// === drop counters ===

/// A shared count of drops.
#[derive(Clone, Default, Debug)]
pub struct Drops(Arc<AtomicUsize>);

impl Drops {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// A value that bumps this counter when dropped.
    pub fn counted(&self, value: u32) -> Counted {
        Counted {
            value,
            drops: self.0.clone(),
        }
    }
}

/// A value whose drop bumps a shared counter. Deliberately not `Clone`: each
/// `Counted` is one value, dropped once.
#[derive(Debug)]
pub struct Counted {
    pub value: u32,
    drops: Arc<AtomicUsize>,
}

impl Counted {
    /// Another value sharing this one's counter (`Counted` is not `Clone`).
    pub fn sibling(&self, value: u32) -> Self {
        Self {
            value,
            drops: self.drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A value that runs a closure when dropped (for reentrancy and teardown
/// tests: a `Drop` that uses thread-locals).
pub struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl OnDrop {
    pub fn new(f: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// A value whose drop panics (after bumping its counter).
pub struct PanicOnDrop(pub Drops);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        panic!("PanicOnDrop dropped (deliberate test panic)");
    }
}

// === values that track each instance ===

/// Drop counts per instance id, shared by every [`Tracked`] of one test.
#[derive(Clone, Default)]
pub struct Tracker {
    next: Arc<AtomicU64>,
    drops: Arc<Mutex<HashMap<u64, usize>>>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new instance carrying `val`.
    pub fn make(&self, val: u64) -> Tracked {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, 0);
        Tracked {
            id,
            val,
            tracker: self.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, usize>> {
        self.drops.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How often instance `id` was dropped.
    pub fn drops_of(&self, id: u64) -> usize {
        self.lock()[&id]
    }

    /// Instances created so far.
    pub fn created(&self) -> usize {
        self.lock().len()
    }

    /// Panics unless every instance was dropped exactly once.
    pub fn assert_all_dropped_once(&self) {
        let drops = self.lock();
        let mut wrong: Vec<(u64, usize)> = drops
            .iter()
            .filter(|&(_, &n)| n != 1)
            .map(|(&id, &n)| (id, n))
            .collect();
        wrong.sort_unstable();
        assert!(
            wrong.is_empty(),
            "instances not dropped exactly once (id, drops): {wrong:?}"
        );
    }
}

/// A value with a unique instance id; cloning makes a new instance.
pub struct Tracked {
    pub id: u64,
    pub val: u64,
    tracker: Tracker,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.tracker.make(self.val)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        *self.tracker.lock().get_mut(&self.id).expect("tracked id") += 1;
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked#{}({})", self.id, self.val)
    }
}

// === threads ===

type Job = Box<dyn FnOnce() + Send>;

/// A thread that runs closures on request and blocks on a channel between
/// them: an idle pooled thread, as far as tl-core can tell.
pub struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
    id: ThreadId,
}

impl Worker {
    pub fn spawn() -> Self {
        Self::with_builder(thread::Builder::new())
    }

    pub fn named(name: &str) -> Self {
        Self::with_builder(thread::Builder::new().name(name.to_owned()))
    }

    fn with_builder(builder: thread::Builder) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        let handle = builder
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawn worker");
        let id = handle.thread().id();
        Self {
            jobs: Some(jobs),
            handle: Some(handle),
            id,
        }
    }

    /// Runs `f` on the worker and returns its result; a panic in `f` is
    /// resumed here.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel::<Result<R, Box<dyn Any + Send>>>();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            tx.send(result).expect("result receiver");
        });
        self.jobs
            .as_ref()
            .expect("worker running")
            .send(job)
            .expect("worker alive");
        match rx.recv().expect("worker answered") {
            Ok(value) => value,
            Err(panic) => resume_unwind(panic),
        }
    }

    pub fn thread_id(&self) -> ThreadId {
        self.id
    }

    /// The worker's registration, if it registered (bound a value).
    pub fn registration(&self) -> Option<ThreadRef> {
        find_thread(self.id)
    }

    /// Snapshots the worker from the calling thread while it idles.
    pub fn snapshot(&self) -> ThreadSnapshot {
        self.registration()
            .expect("worker is registered")
            .snapshot()
    }

    /// Lets the thread exit and waits for it (its values are dropped by then).
    pub fn join(mut self) {
        self.stop().expect("worker thread panicked");
    }

    fn stop(&mut self) -> thread::Result<()> {
        drop(self.jobs.take());
        match self.handle.take() {
            Some(handle) => handle.join(),
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let result = self.stop();
        if !thread::panicking() {
            result.expect("worker thread panicked");
        }
    }
}

/// Runs `f` on a new thread and waits for it to exit; resumes its panic.
pub fn on_new_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match thread::spawn(f).join() {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
    }
}

/// The registered thread with std id `id`.
pub fn find_thread(id: ThreadId) -> Option<ThreadRef> {
    registry::threads()
        .into_iter()
        .find(|t| t.info().std_id == id)
}

/// The entry of key `key_id` in `snapshot`.
pub fn entry_of(snapshot: &ThreadSnapshot, key_id: u64) -> Option<EntrySnapshot> {
    snapshot
        .entries
        .iter()
        .copied()
        .find(|e| e.key.id == key_id)
}
