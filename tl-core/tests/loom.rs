//! Loom models of tl-core's cross-thread protocols: the registry snapshot
//! against its owner's binds, key death against binds and scans, thread
//! exit against scans, and inheritance and a task's carried value against
//! key death. Run with
//! `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`); `LOOM_MAX_PREEMPTIONS` bounds
//! the exploration.
#![cfg(loom)]

#[path = "common/pending.rs"]
mod pending;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use pending::{Pending, poll_once};
use tl_core::{__private, ThreadLocal, inherit, registry};

/// Spawns a model thread that ends with tl-core's exit teardown, which loom
/// cannot run from a thread-local destructor.
fn spawn(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        f();
        tl_core::__private::loom_thread_exit();
    })
}

/// Counts its drops, so a model can prove each value is dropped exactly once.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Everything an auditor does with a snapshot, minus reporting.
fn scan() -> usize {
    registry::threads()
        .iter()
        .map(|thread| {
            let snapshot = thread.snapshot();
            for entry in &snapshot.entries {
                assert!(entry.key.type_name.ends_with("Counted"));
                assert!(entry.bytes >= size_of::<Counted>());
            }
            snapshot.bound().count()
        })
        .sum()
}

/// Runs `f` under loom and prints the executions explored, so a run shows
/// how much loom checked. The count is per model (the test harness runs
/// models in parallel, so a shared static would mix their counts).
fn model(f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // A bind or a scan is a few dozen atomic operations; the default bound of
    // 1,000 branches is meant for single data structures.
    builder.max_branches = 20_000;
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    let started = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "{}: explored {} executions in {:.1?}",
        std::thread::current().name().unwrap_or("model"),
        executions.load(Ordering::Relaxed),
        started.elapsed(),
    );
}

/// (a) The auditor snapshots a thread's entries while that thread binds,
/// unbinds and rebinds: the first key's first bind also creates the entry and
/// the thread's table, under the view lock the snapshot takes; the second
/// key's entry fills a slot of that table without the lock.
#[test]
fn snapshot_while_owner_sets_and_removes() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (first, second) = (Arc::new(ThreadLocal::new()), Arc::new(ThreadLocal::new()));
        let owner = {
            let (first, second) = (Arc::clone(&first), Arc::clone(&second));
            let drops = Arc::clone(&drops);
            spawn(move || {
                first.set(Counted(Arc::clone(&drops)));
                second.set(Counted(Arc::clone(&drops)));
                drop(first.remove());
                first.set(Counted(drops));
                drop(first.remove());
                drop(second.remove());
            })
        };
        scan();
        owner.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    });
}

/// (b) A key dies while another thread binds it and a third scans: the value
/// is dropped exactly once, on its own thread, whichever thread kills the key.
#[test]
fn key_dies_while_bound_and_scanned() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let key = Arc::new(ThreadLocal::new());
        let holder = {
            let (key, drops) = (Arc::clone(&key), Arc::clone(&drops));
            spawn(move || {
                key.set(Counted(drops));
                drop(key);
            })
        };
        let scanner = spawn(|| {
            scan();
        });
        drop(key);
        holder.join().unwrap();
        scanner.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// (c) A thread exits, dropping its values and unregistering, while the
/// auditor scans it.
#[test]
fn thread_exits_while_scanned() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let key = Arc::new(ThreadLocal::new());
        let exiting = {
            let (key, drops) = (Arc::clone(&key), Arc::clone(&drops));
            spawn(move || {
                key.set(Counted(drops));
            })
        };
        let bound = scan();
        assert!(bound <= 1);
        exiting.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(scan(), 0);
    });
}

/// An inheritable value: the parent's counts its drops in one counter, the
/// child copies that `child_value` makes count theirs in another.
struct Lineage {
    #[expect(dead_code, reason = "held for its `Drop`, never read")]
    own: Counted,
    made: Arc<AtomicUsize>,
    child_drops: Arc<AtomicUsize>,
}

impl Lineage {
    /// The key's `child_value`: counts the copies it makes.
    fn child(parent: &Self) -> Self {
        parent.made.fetch_add(1, Ordering::SeqCst);
        Self {
            own: Counted(Arc::clone(&parent.child_drops)),
            made: Arc::clone(&parent.made),
            child_drops: Arc::clone(&parent.child_drops),
        }
    }
}

/// Drops one of a key's two handles and counts it: a thread that reads
/// `released == 2` knows both drops, hence the key's death, happened before.
fn let_go(key: Arc<ThreadLocal<Lineage>>, released: &AtomicUsize) {
    drop(key);
    released.fetch_add(1, Ordering::AcqRel);
}

/// A parent binds an inheritable value, captures it and spawns a child that
/// installs it, while the key's last handle is dropped: on `main`, or on the
/// parent, whichever lets go last. With `release_first`, the parent lets go
/// of its handle before capturing, so nothing orders the capture (a pin
/// taken on the parent) with the handle's drop on `main`: the death may race
/// the child's install with no happens-before to the pin at all.
///
/// Checked: every value is dropped exactly once (the child's copy by the
/// installer, a sweep, or the child's exit), and a child that knows the key
/// is dead (the handle's drop happened before) holds no value of it after
/// its next access to any thread-local: either the installer saw the key
/// dead, or the death was announced to the child.
fn inheritance_races_key_death(release_first: bool) {
    model(move || {
        let parent_drops = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let child_drops = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(AtomicUsize::new(0));
        let key = Arc::new(ThreadLocal::new().inheritable_with(Lineage::child));
        let parent = {
            let key = Arc::clone(&key);
            let (parent_drops, made) = (Arc::clone(&parent_drops), Arc::clone(&made));
            let (child_drops, released) = (Arc::clone(&child_drops), Arc::clone(&released));
            // Not `spawn`: the parent models its own exit, then hands `main`
            // the child's join handle.
            thread::spawn(move || {
                key.set(Lineage {
                    own: Counted(parent_drops),
                    made: Arc::clone(&made),
                    child_drops: Arc::clone(&child_drops),
                });
                let key = if release_first {
                    let_go(key, &released);
                    None
                } else {
                    Some(key)
                };
                let inherited = inherit::capture();
                let child = {
                    let released = Arc::clone(&released);
                    spawn(move || {
                        inherited.install();
                        if released.load(Ordering::Acquire) == 2 {
                            // A bind sweeps what an announced death left.
                            ThreadLocal::<u8>::new().set(0);
                            assert_eq!(
                                child_drops.load(Ordering::SeqCst),
                                made.load(Ordering::SeqCst),
                                "the child kept a value of a dead key past a bind",
                            );
                        }
                    })
                };
                if let Some(key) = key {
                    let_go(key, &released);
                }
                tl_core::__private::loom_thread_exit();
                child
            })
        };
        let_go(key, &released);
        let child = parent.join().unwrap();
        child.join().unwrap();
        assert_eq!(parent_drops.load(Ordering::SeqCst), 1);
        assert!(made.load(Ordering::SeqCst) <= 1);
        assert_eq!(
            child_drops.load(Ordering::SeqCst),
            made.load(Ordering::SeqCst)
        );
    });
}

/// (d) Inheritance against key death, the key's last handle dropped on a
/// thread that never saw the capture: nothing orders the parent's pin with
/// the dropping thread's reads.
#[test]
fn inheritance_races_key_death_on_another_thread() {
    inheritance_races_key_death(true);
}

/// (e) The same, the parent capturing before it lets go of its handle, so the
/// capture happens before the key's death whichever thread drops last.
#[test]
fn inheritance_races_key_death_after_capture() {
    inheritance_races_key_death(false);
}

/// (f) An `async fn` handler's value, carried between polls, is bound again
/// on a thread with no entry of its key (turning the task's pin into a
/// holder) while the key's last handle is dropped on another thread. The
/// key is not inheritable, so the handle's drop fences only because it sees
/// the task's pin (taken through the handle, so ordered before the drop).
///
/// Checked: the value is dropped exactly once, and a thread that knows the
/// key is dead holds no entry of it after its next bind: either the task
/// saw the key dead, or the death counted the task's entry and was announced.
#[test]
fn carried_value_races_key_death() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(AtomicUsize::new(0));
        let key = Arc::new(ThreadLocal::new());
        let carried = __private::carried(&*key);
        let body = {
            let (key, drops) = (Arc::clone(&key), Arc::clone(&drops));
            async move {
                key.set(Counted(drops));
                drop(key);
                Pending::once().await;
            }
        };
        let task = __private::task_future("model", __private::here(), carried, body);
        // The first poll binds the value and carries it off at the `.await`;
        // that thread's exit frees its (now empty) entry.
        let mut task = thread::spawn(move || {
            let mut task = Box::pin(task);
            assert!(poll_once(task.as_mut()).is_pending());
            __private::loom_thread_exit();
            task
        })
        .join()
        .unwrap();
        let resumer = {
            let released = Arc::clone(&released);
            spawn(move || {
                assert!(poll_once(task.as_mut()).is_ready());
                drop(task);
                if released.load(Ordering::Acquire) == 1 {
                    // A bind sweeps what an announced death left.
                    ThreadLocal::<u8>::new().set(0);
                    let snapshot = registry::current().unwrap().snapshot();
                    assert!(
                        snapshot.entries.iter().all(|entry| entry.key.alive),
                        "the thread kept an entry of a dead key past a bind",
                    );
                }
            })
        };
        drop(key);
        released.fetch_add(1, Ordering::AcqRel);
        resumer.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}
