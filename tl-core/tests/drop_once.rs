//! Every value is dropped exactly once, on every path out of a thread-local:
//! replacement, removal, `take`, key death (on the owning thread, on another
//! thread, with or without a later access by the holder), thread exit,
//! scopes and guards (normal and panicking, nested), and inheritance.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use common::{Counted, Drops, Worker, on_new_thread, scaled};
use tl_core::{ThreadLocal, thread as tl_thread};

#[test]
fn set_replacing() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    let old = tl.set(drops.counted(2)).unwrap();
    assert_eq!((old.value, drops.get()), (1, 0), "handed back, not dropped");
    drop(old);
    assert_eq!(drops.get(), 1);
    tl.set(drops.counted(3)); // the returned value is dropped by the caller
    assert_eq!(drops.get(), 2);
    drop(tl);
    assert_eq!(drops.get(), 3);
}

#[test]
fn remove_and_take() {
    let drops = Drops::new();
    let tl: ThreadLocal<Option<Counted>> = ThreadLocal::new();
    tl.set(Some(drops.counted(1)));
    let removed = tl.remove().unwrap();
    assert_eq!(drops.get(), 0);
    drop(removed);
    assert_eq!(drops.get(), 1);
    assert!(tl.remove().is_none());

    tl.set(Some(drops.counted(2)));
    let taken = tl.take();
    assert_eq!(drops.get(), 1);
    drop(taken);
    assert_eq!(drops.get(), 2);
    drop(tl.take()); // `None`: nothing to drop
    assert_eq!(drops.get(), 2);

    let replaced = tl.replace(Some(drops.counted(3)));
    assert!(replaced.is_none());
    drop(tl.replace(None));
    assert_eq!(drops.get(), 3);
    drop(tl);
    assert_eq!(drops.get(), 3, "a bound `None` holds nothing");
}

#[test]
fn set_panicking_on_borrow_drops_argument() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    let result = catch_unwind(AssertUnwindSafe(|| {
        tl.with(|_| {
            tl.set(drops.counted(2));
        });
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 1, "the rejected argument, once");
    drop(tl);
    assert_eq!(drops.get(), 2);
}

#[test]
fn key_drop_on_owning_thread() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    drop(tl);
    assert_eq!(drops.get(), 1, "dropped at once");
    // A removed value is not dropped again by the key's death.
    let tl = ThreadLocal::new();
    tl.set(drops.counted(2));
    let v = tl.remove();
    drop(tl);
    assert_eq!(drops.get(), 1);
    drop(v);
    assert_eq!(drops.get(), 2);
}

#[test]
fn key_drop_on_other_thread_then_holder_access() {
    static OTHER: ThreadLocal<u32> = ThreadLocal::new();
    let drops = Drops::new();
    let holder = Worker::spawn();
    let tl = Arc::new(ThreadLocal::new());
    {
        let (tl, drops) = (tl.clone(), drops.clone());
        holder.run(move || {
            tl.set(drops.counted(1));
            OTHER.set(0);
        });
    }
    tl.set(drops.counted(2));
    drop(Arc::into_inner(tl).unwrap());
    assert_eq!(drops.get(), 1, "the dropping thread's value goes at once");
    assert_eq!(holder.run(|| 0), 0); // no thread-local access: value kept
    assert_eq!(drops.get(), 1);
    assert_eq!(holder.run(|| OTHER.get()), Some(0));
    assert_eq!(drops.get(), 1, "a read does not sweep");
    holder.run(|| OTHER.set(1));
    assert_eq!(drops.get(), 2, "the holder's next set reclaims it");
    holder.join();
    assert_eq!(drops.get(), 2);
}

/// Each way a thread changes its bindings (a write, a scope, a guard, the
/// start of a task) reclaims dead keys' values; reads do not, so that `get`
/// pays no death-epoch check.
#[test]
fn key_drop_reclaimed_by_writes_scopes_and_task_starts() {
    static OTHER: ThreadLocal<u32> = ThreadLocal::with_initial(|| 0);
    type Access = fn();
    let reads: [(&str, Access); 5] = [
        ("get", || {
            let _ = OTHER.get();
        }),
        ("with", || OTHER.with(|_| ())),
        ("try_with", || OTHER.try_with(|_| ()).unwrap()),
        ("with_mut", || OTHER.with_mut(|_| ())),
        ("is_set", || {
            let _ = OTHER.is_set();
        }),
    ];
    let sweeps: [(&str, Access); 7] = [
        ("set", || {
            let _ = OTHER.set(1);
        }),
        ("remove", || {
            let _ = OTHER.remove();
        }),
        ("scope", || drop(OTHER.scope(2))),
        ("guard", || drop(OTHER.guard())),
        ("task start", || {
            drop(tl_core::checkpoint::TaskScope::enter("drop_once::task"))
        }),
        ("mark().leftovers", || {
            drop(tl_core::checkpoint::mark().leftovers())
        }),
        ("inherit::capture", || drop(tl_core::inherit::capture())),
    ];
    let holder = Worker::spawn();
    for (name, access) in sweeps {
        // Bound, so that the reads below find a value and do not run the
        // initializer (its bind is a write, and sweeps).
        holder.run(|| OTHER.set(0));
        let drops = Drops::new();
        let tl = Arc::new(ThreadLocal::new());
        {
            let (tl, drops) = (tl.clone(), drops.clone());
            holder.run(move || drop(tl.set(drops.counted(1))));
        }
        drop(tl);
        assert_eq!(drops.get(), 0, "{name}: kept until the holder's access");
        for (read, access) in reads {
            holder.run(access);
            assert_eq!(drops.get(), 0, "{read}: a read does not reclaim");
        }
        holder.run(access);
        assert_eq!(drops.get(), 1, "{name}: reclaimed by the access");
    }
}

#[test]
fn holder_exit_without_access() {
    let drops = Drops::new();
    let holders: Vec<Worker> = (0..scaled(3, 2)).map(|_| Worker::spawn()).collect();
    let tl = Arc::new(ThreadLocal::new());
    for (i, holder) in holders.iter().enumerate() {
        let (tl, drops) = (tl.clone(), drops.clone());
        holder.run(move || drop(tl.set(drops.counted(i as u32))));
    }
    drop(tl);
    assert_eq!(drops.get(), 0, "idle holders keep their values");
    for (i, holder) in holders.into_iter().enumerate() {
        holder.join();
        assert_eq!(drops.get(), i + 1, "thread exit drops the dead key's value");
    }
}

#[test]
fn thread_exit_with_values() {
    static A: ThreadLocal<Counted> = ThreadLocal::new();
    static B: ThreadLocal<Vec<Counted>> = ThreadLocal::new();
    let drops = Drops::new();
    let c = ThreadLocal::new();
    let c = Arc::new(c);
    let removed = Drops::new();
    let keys = {
        let (drops, c, removed) = (drops.clone(), c.clone(), removed.clone());
        on_new_thread(move || {
            A.set(drops.counted(1));
            B.set(vec![drops.counted(2), drops.counted(3)]);
            c.set(drops.counted(4));
            c.set(drops.counted(5)); // 4 dropped here
            let keys: Vec<ThreadLocal<Counted>> = (0..scaled(50, 5))
                .map(|i| {
                    let tl = ThreadLocal::new();
                    tl.set(drops.counted(100 + i as u32));
                    tl
                })
                .collect();
            let gone = ThreadLocal::new();
            gone.set(removed.counted(0));
            drop(gone.remove());
            // The handles outlive the thread, so only its exit drops these values.
            keys
        })
    };
    assert_eq!(drops.get(), 5 + scaled(50, 5));
    assert_eq!(removed.get(), 1);
    assert!(!c.is_set(), "values are per thread");
    drop(c);
    drop(keys);
    assert_eq!(drops.get(), 5 + scaled(50, 5));
}

#[test]
fn scope_exit_normal_and_panic() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    {
        let _scope = tl.scope(drops.counted(1));
        assert_eq!(drops.get(), 0);
    }
    assert_eq!(drops.get(), 1);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _scope = tl.scope(drops.counted(2));
        panic!("inside a scope");
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 2);
    assert!(!tl.is_set());

    // Restoring a previous value: the scoped one goes, the previous stays.
    tl.set(drops.counted(3));
    {
        let _scope = tl.scope(drops.counted(4));
    }
    assert_eq!(drops.get(), 3);
    assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(3));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _scope = tl.scope(drops.counted(5));
        panic!("inside a scope");
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 4);
    drop(tl);
    assert_eq!(drops.get(), 5);
}

#[test]
fn scope_with_rebind_inside() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    {
        let _scope = tl.scope(drops.counted(2));
        drop(tl.set(drops.counted(3))); // 2 dropped
        assert_eq!(drops.get(), 1);
    }
    // Scope exit restores 1 and drops 3.
    assert_eq!(drops.get(), 2);
    assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(1));
    {
        let _scope = tl.scope(drops.counted(4));
        drop(tl.remove()); // 4 dropped
    }
    assert_eq!(drops.get(), 3);
    assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(1));
    drop(tl);
    assert_eq!(drops.get(), 4);
}

#[test]
fn guard_exit_normal_and_panic() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    {
        let _guard = tl.guard();
        tl.set(drops.counted(1));
        drop(tl.set(drops.counted(2)));
        assert_eq!(drops.get(), 1);
    }
    assert_eq!(drops.get(), 2);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _guard = tl.guard();
        tl.set(drops.counted(3));
        panic!("inside a guard");
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 3);
    assert!(!tl.is_set());

    // With an outer value: the guard keeps it and restores it.
    tl.set(drops.counted(10));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _guard = tl.guard();
        assert!(tl.set(drops.counted(11)).is_none(), "outer value sheltered");
        assert!(tl.remove().is_some());
        tl.set(drops.counted(12));
        panic!("inside a guard");
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 5, "11 and 12 dropped, 10 kept");
    assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(10));
    drop(tl);
    assert_eq!(drops.get(), 6);
}

#[test]
fn nested_scopes_and_guards() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    {
        let _s1 = tl.scope(drops.counted(1));
        {
            let _g1 = tl.guard();
            tl.set(drops.counted(2));
            {
                let _s2 = tl.scope(drops.counted(3));
                {
                    let _g2 = tl.guard();
                    assert!(tl.remove().is_none(), "3 belongs to the scope outside");
                    tl.set(drops.counted(4));
                }
                assert_eq!(drops.get(), 1); // 4
                assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(3));
            }
            assert_eq!(drops.get(), 2); // 3
            assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(2));
        }
        assert_eq!(drops.get(), 3); // 2
        assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(1));
    }
    assert_eq!(drops.get(), 4);
    assert!(!tl.is_set());
    drop(tl);
    assert_eq!(drops.get(), 4);
}

#[test]
fn scope_outliving_its_key() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    let scope = tl.scope(drops.counted(2));
    drop(tl); // 2 (bound) dropped now
    assert_eq!(drops.get(), 1);
    drop(scope); // 1 (kept by the scope) dropped now
    assert_eq!(drops.get(), 2);
}

#[test]
fn guard_outliving_its_key() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    let guard = tl.guard();
    tl.set(drops.counted(2)); // 1 sheltered by the guard
    drop(tl); // 2 dropped
    assert_eq!(drops.get(), 1);
    drop(guard); // 1 dropped: nowhere to restore it
    assert_eq!(drops.get(), 2);
}

/// A scope (holding 1) and a guard (sheltering 2, with 3 bound inside) on
/// a holder thread outlive their key, killed on another thread; they are
/// dropped before or after the holder's next access reclaims the entry.
fn scope_and_guard_across_remote_death(sweep_first: bool) {
    static OTHER: ThreadLocal<u8> = ThreadLocal::new();
    std::thread_local! {
        static KEEP: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let drops = Drops::new();
    let tl = Arc::new(ThreadLocal::new());
    let holder = Worker::spawn();
    {
        let (tl, drops) = (tl.clone(), drops.clone());
        holder.run(move || {
            tl.set(drops.counted(1));
            let scope = tl.scope(drops.counted(2));
            let guard = tl.guard();
            tl.set(drops.counted(3)); // 2 sheltered by the guard, 3 bound
            // Keep the scope (holding 1) and the guard alive past this job.
            KEEP.with_borrow_mut(|keep| {
                keep.push(Box::new(scope));
                keep.push(Box::new(guard));
            });
        });
    }
    drop(Arc::into_inner(tl).unwrap());
    assert_eq!(drops.get(), 0);
    if sweep_first {
        holder.run(|| OTHER.set(1));
        assert_eq!(drops.get(), 1, "the sweep dropped the bound 3");
    }
    let unwind = || {
        KEEP.with_borrow_mut(|keep| {
            while let Some(last) = keep.pop() {
                drop(last);
            }
        });
    };
    holder.run(unwind);
    if !sweep_first {
        // The guard and the scope acted on the dead, unswept entry
        // (dropping 3, then 2); the restored 1 goes at the next access.
        assert_eq!(drops.get(), 2);
        holder.run(|| OTHER.set(1));
    }
    assert_eq!(drops.get(), 3);
    holder.join();
    assert_eq!(drops.get(), 3);
}

#[test]
fn scope_and_guard_outliving_a_remote_key_death() {
    scope_and_guard_across_remote_death(false);
}

#[test]
fn scope_and_guard_outliving_a_remote_key_death_after_sweep() {
    scope_and_guard_across_remote_death(true);
}

#[test]
fn inherited_values() {
    static INHERITED: ThreadLocal<Counted> =
        ThreadLocal::new().inheritable_with(|parent| parent.sibling(parent.value + 1));
    let drops = Drops::new();
    INHERITED.set(drops.counted(1));
    let child = tl_thread::spawn(|| INHERITED.with(|v| v.map(|v| v.value)));
    assert_eq!(child.join().unwrap(), Some(2));
    assert_eq!(drops.get(), 1, "the child's copy, at the child's exit");
    let captured = tl_core::inherit::capture();
    assert_eq!(captured.len(), 1);
    drop(captured); // never installed
    assert_eq!(drops.get(), 2, "an uninstalled copy");
    // Installed where the key already has a value: the displaced one goes.
    INHERITED.set(drops.counted(5));
    assert_eq!(drops.get(), 3);
    let captured = tl_core::inherit::capture();
    captured.install(); // binds 6, displacing 5, on this same thread
    assert_eq!(drops.get(), 4);
    assert_eq!(INHERITED.with(|v| v.map(|v| v.value)), Some(6));
    drop(INHERITED.remove());
    assert_eq!(drops.get(), 5);
}
