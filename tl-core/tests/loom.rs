//! Loom models of tl-core's cross-thread protocols: the registry snapshot
//! against its owner's binds, key death against binds and scans, and thread
//! exit against scans. Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`);
//! `LOOM_MAX_PREEMPTIONS` bounds the exploration.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use tl_core::{ThreadLocal, registry};

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

/// Executions explored, printed so a run shows how much loom checked.
static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // A bind or a scan is a few dozen atomic operations; the default bound of
    // 1,000 branches is meant for single data structures.
    builder.max_branches = 20_000;
    EXECUTIONS.store(0, std::sync::atomic::Ordering::Relaxed);
    builder.check(move || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    println!(
        "explored {} executions",
        EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// (a) The auditor snapshots a thread's entries while that thread binds,
/// unbinds and rebinds (the first bind also creates the entry and the
/// thread's table, under the view lock the snapshot takes).
#[test]
fn snapshot_while_owner_sets_and_removes() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let key = Arc::new(ThreadLocal::new());
        let owner = {
            let (key, drops) = (Arc::clone(&key), Arc::clone(&drops));
            spawn(move || {
                key.set(Counted(Arc::clone(&drops)));
                drop(key.remove());
                key.set(Counted(drops));
                drop(key.remove());
            })
        };
        scan();
        owner.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
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
