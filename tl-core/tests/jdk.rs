//! The JDK's own `ThreadLocal` regression tests, re-expressed: `Basic`
//! (per-thread values, one initial value per thread), `TLRemoveTest`,
//! `InitialValue`, `TestThreadId` and `ThreadLocalSupplierTest`. (`MemoryLeak`
//! lives in `memory.rs`, with its counting allocator; `ITLRemoveTest` in
//! `inherit.rs`.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread;

use common::scaled;
use tl_core::ThreadLocal;

/// JDK `Basic`: every thread gets its own initial value from a counting
/// initializer (called exactly once per thread) and sees only its own value.
#[test]
fn basic_one_initial_value_per_thread() {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static N: ThreadLocal<usize> = ThreadLocal::with_initial(|| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        NEXT.fetch_add(1, Ordering::SeqCst)
    });

    let threads = scaled(100, 6);
    let x: Arc<Vec<AtomicUsize>> = Arc::new((0..threads).map(|_| AtomicUsize::new(0)).collect());
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let x = x.clone();
            thread::spawn(move || {
                let id = N.get().unwrap();
                for _ in 0..id {
                    x[id].fetch_add(1, Ordering::SeqCst);
                    assert_eq!(N.get(), Some(id), "a thread sees only its own value");
                    thread::yield_now();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for (i, count) in x.iter().enumerate() {
        assert_eq!(count.load(Ordering::SeqCst), i, "x[{i}]");
    }
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        threads,
        "initialValue once per thread"
    );
}

/// Each thread sets its own value; no thread sees another's, even with all
/// of them bound at the same time.
#[test]
fn basic_set_get_per_thread() {
    static V: ThreadLocal<String> = ThreadLocal::new();
    let threads = scaled(16, 3);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                assert_eq!(V.get(), None, "a new thread starts unbound");
                V.set(format!("thread {i}"));
                barrier.wait();
                assert_eq!(V.get(), Some(format!("thread {i}")));
                barrier.wait();
                assert_eq!(V.remove(), Some(format!("thread {i}")));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(V.get(), None, "the spawning thread never bound one");
}

/// JDK `TLRemoveTest`: `remove` resets to the initial value; `remove` then
/// `set` keeps the set value.
#[test]
fn tl_remove_test() {
    const INITIAL_VALUE: usize = 101;
    const REMOVE_SET_VALUE: usize = 102;
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static N: ThreadLocal<usize> = ThreadLocal::with_initial(|| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        INITIAL_VALUE
    });

    let thread_count = scaled(100, 12);
    let remove_node: &[usize] = if cfg!(miri) {
        &[3, 5, 10]
    } else {
        &[10, 20, 45, 38, 88]
    };
    let remove_and_set: &[usize] = if cfg!(miri) { &[5, 10] } else { &[12, 34, 10] };
    let handles: Vec<_> = (0..thread_count)
        .map(|thread_id| {
            let remove_node = remove_node.to_vec();
            let remove_and_set = remove_and_set.to_vec();
            thread::spawn(move || {
                N.set(thread_id);
                if remove_node.contains(&thread_id) {
                    N.remove();
                    if remove_and_set.contains(&thread_id) {
                        N.set(REMOVE_SET_VALUE);
                    }
                }
                N.get().unwrap()
            })
        })
        .collect();
    let mut initial_expected = 0;
    for (i, h) in handles.into_iter().enumerate() {
        let x = h.join().unwrap();
        let expected = if remove_and_set.contains(&i) && remove_node.contains(&i) {
            REMOVE_SET_VALUE
        } else if remove_node.contains(&i) {
            initial_expected += 1;
            INITIAL_VALUE
        } else {
            i
        };
        assert_eq!(x, expected, "thread {i}");
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), initial_expected);
}

/// JDK `InitialValue`: an initializer that creates another thread-local and
/// sets it; on a fresh thread, that `set` creates the map the outer `get`
/// then binds into (or the other way round). Both values are visible after.
#[test]
fn initial_value_sets_other() {
    static OTHER: OnceLock<Mutex<Option<Arc<ThreadLocal<String>>>>> = OnceLock::new();
    fn other_slot() -> &'static Mutex<Option<Arc<ThreadLocal<String>>>> {
        OTHER.get_or_init(|| Mutex::new(None))
    }

    let passed = thread::spawn(|| {
        let local = ThreadLocal::with_initial_fn(|| {
            let other = Arc::new(ThreadLocal::new());
            other.set("Other".to_owned());
            *other_slot().lock().unwrap() = Some(other);
            "Initial".to_owned()
        });
        let s1 = local.get();
        let other = other_slot().lock().unwrap().clone().unwrap();
        let s2 = other.get();
        (s1, s2)
    })
    .join()
    .unwrap();
    assert_eq!(passed.0.as_deref(), Some("Initial"));
    assert_eq!(passed.1.as_deref(), Some("Other"));
}

/// The same with a `static` initializer setting a `static`, for many keys at
/// once: the map grows while an initializer runs inside a bind.
#[test]
fn initial_value_sets_many_others() {
    static OTHERS: [ThreadLocal<u32>; 16] = [const { ThreadLocal::new() }; 16];
    static OUTER: ThreadLocal<u32> = ThreadLocal::with_initial(|| {
        for (i, other) in OTHERS.iter().enumerate() {
            other.set(i as u32);
        }
        99
    });
    thread::spawn(|| {
        assert_eq!(OUTER.get(), Some(99));
        for (i, other) in OTHERS.iter().enumerate() {
            assert_eq!(other.get(), Some(i as u32));
        }
    })
    .join()
    .unwrap();
}

/// JDK `TestThreadId`: a `with_initial` counter hands out a distinct id to
/// each thread, stable for the thread's life.
#[test]
fn test_thread_id() {
    static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
    static THREAD_ID: ThreadLocal<usize> =
        ThreadLocal::with_initial(|| NEXT_ID.fetch_add(1, Ordering::SeqCst));

    let rounds = scaled(10, 2);
    let threads = scaled(20, 3);
    let seen = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..rounds {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let seen = seen.clone();
                thread::spawn(move || {
                    let id = THREAD_ID.get().unwrap();
                    for _ in 0..scaled(100, 3) {
                        assert_eq!(THREAD_ID.get(), Some(id), "stable within a thread");
                    }
                    seen.lock().unwrap().push(id);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    let mut seen = seen.lock().unwrap().clone();
    let total = seen.len();
    assert_eq!(total, rounds * threads);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "ids are distinct per thread");
}

/// JDK `ThreadLocalSupplierTest`: `withInitial` with a supplier, and a
/// supplier that throws (here: panics) leaves the thread-local unbound.
#[test]
fn supplier() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let tl = ThreadLocal::with_initial_fn(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        assert!(n != 1, "the supplier fails on its second call");
        n * 10
    });
    assert_eq!(tl.get(), Some(0));
    tl.remove();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tl.get()));
    assert!(failed.is_err());
    assert!(!tl.is_set());
    assert_eq!(tl.get(), Some(20));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
