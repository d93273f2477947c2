//! Reentrancy regression tests: initializers, `Drop`s and `with` closures
//! that call back into thread-locals (the same one or others), borrow
//! conflicts, and how nested guards and scopes restore outer values.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Counted, Drops, OnDrop, Worker, on_new_thread};
use tl_core::{AccessError, ThreadLocal};

// === initializers ===

static SIDE_A: ThreadLocal<u32> = ThreadLocal::new();
static SIDE_B: ThreadLocal<String> = ThreadLocal::new();
static SETS_OTHERS: ThreadLocal<u32> = ThreadLocal::with_initial(|| {
    SIDE_A.set(1);
    SIDE_B.set("b".to_owned());
    // Reads of other keys, and of this key's not-yet-bound state.
    assert_eq!(SIDE_A.get(), Some(1));
    assert!(!SETS_OTHERS.is_set());
    10
});

/// An initializer that binds other keys, on a fresh thread (so the first
/// bind that creates the map happens inside the initializer) and again after
/// a `remove`.
#[test]
fn reentrant_init() {
    on_new_thread(|| {
        assert_eq!(SETS_OTHERS.get(), Some(10));
        assert_eq!(SIDE_A.get(), Some(1));
        assert_eq!(SIDE_B.get().as_deref(), Some("b"));
        SIDE_A.set(5);
        assert_eq!(SETS_OTHERS.remove(), Some(10));
        assert_eq!(SETS_OTHERS.with(|v| v.copied()), Some(10));
        assert_eq!(SIDE_A.get(), Some(1), "the initializer ran again");
    });
}

static SELF_INIT_DROPS: AtomicUsize = AtomicUsize::new(0);

struct Noisy(u32);
impl Drop for Noisy {
    fn drop(&mut self) {
        SELF_INIT_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

static SETS_ITSELF: ThreadLocal<Noisy> = ThreadLocal::with_initial(|| {
    // Binds this very key: the initializer's result wins, and the value
    // bound here is dropped (Java's `setInitialValue`).
    assert!(SETS_ITSELF.set(Noisy(1)).is_none());
    assert_eq!(SETS_ITSELF.with(|v| v.map(|v| v.0)), Some(1));
    Noisy(2)
});

/// An initializer that sets the same key it initializes.
#[test]
fn reentrant_init_sets_same_key() {
    on_new_thread(|| {
        assert_eq!(SETS_ITSELF.with(|v| v.map(|v| v.0)), Some(2));
        assert_eq!(SELF_INIT_DROPS.load(Ordering::SeqCst), 1, "the displaced 1");
        assert_eq!(SETS_ITSELF.remove().map(|v| v.0), Some(2));
        assert_eq!(SELF_INIT_DROPS.load(Ordering::SeqCst), 2);
    });
}

/// An initializer that reads another key with an initializer of its own,
/// inside a `with` of a third.
#[test]
fn reentrant_init_chain() {
    static FIRST: ThreadLocal<u32> = ThreadLocal::with_initial(|| SECOND.get().unwrap() + 1);
    static SECOND: ThreadLocal<u32> = ThreadLocal::with_initial(|| THIRD.with(|v| *v.unwrap()) + 1);
    static THIRD: ThreadLocal<u32> = ThreadLocal::with_initial(|| 1);
    on_new_thread(|| {
        SIDE_A.set(0);
        SIDE_A.with(|_| {
            assert_eq!(FIRST.get(), Some(3));
        });
        assert_eq!((SECOND.get(), THIRD.get()), (Some(2), Some(1)));
    });
}

static PANIC_INIT_CALLS: AtomicUsize = AtomicUsize::new(0);
static PANICKY_INIT: ThreadLocal<u32> = ThreadLocal::with_initial(|| {
    SIDE_A.set(7); // a side effect before the panic stays
    if PANIC_INIT_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        panic!("initializer fails once (deliberate test panic)");
    }
    3
});

/// A panicking initializer binds nothing and leaves the map usable.
#[test]
fn panic_in_initializer() {
    on_new_thread(|| {
        let result = catch_unwind(|| PANICKY_INIT.get());
        assert!(result.is_err());
        assert!(!PANICKY_INIT.is_set(), "nothing bound");
        assert_eq!(SIDE_A.get(), Some(7));
        assert_eq!(PANICKY_INIT.try_set(1).ok(), Some(None));
        assert_eq!(PANICKY_INIT.remove(), Some(1));
        assert_eq!(PANICKY_INIT.get(), Some(3), "the next read retries");
        assert_eq!(PANIC_INIT_CALLS.load(Ordering::SeqCst), 2);
    });
}

// === Drops that use thread-locals ===

static DROP_TARGET: ThreadLocal<u32> = ThreadLocal::new();
static DROP_TARGET_2: ThreadLocal<Vec<u32>> = ThreadLocal::new();

/// A value whose `Drop` sets other keys, on each path that drops values:
/// remove, replace, key death on the owner (a dead-key drop run by tl-core),
/// a sweep on a holder thread, scope exit, and thread exit.
#[test]
fn drop_sets_other_keys() {
    fn setter(n: u32) -> OnDrop {
        OnDrop::new(move || {
            DROP_TARGET.set(n);
            DROP_TARGET_2.with_mut(|v| match v {
                Some(v) => v.push(n),
                None => drop(DROP_TARGET_2.set(vec![n])),
            });
        })
    }
    let tl = Arc::new(ThreadLocal::new());
    let remote = tl.clone();
    on_new_thread(move || {
        let tl = remote;
        tl.set(setter(1));
        drop(tl.remove());
        assert_eq!(DROP_TARGET.get(), Some(1), "remove");
        tl.set(setter(2));
        drop(tl.set(setter(3)));
        assert_eq!(DROP_TARGET.get(), Some(2), "replace");
        drop(tl.scope(setter(4)));
        assert_eq!(DROP_TARGET.get(), Some(4), "scope exit");
        let local = ThreadLocal::new();
        local.set(setter(5));
        drop(local);
        assert_eq!(DROP_TARGET.get(), Some(5), "key death on the owner");
        assert_eq!(DROP_TARGET_2.get(), Some(vec![1, 2, 4, 5]));
        // Many binds from drops at once: the table grows during the drops.
        let locals: Vec<ThreadLocal<OnDrop>> = (0..32)
            .map(|i| {
                let l = ThreadLocal::new();
                l.set(OnDrop::new(move || {
                    let fresh = ThreadLocal::new();
                    fresh.set(i);
                    drop(fresh); // a key born and killed inside a drop
                    DROP_TARGET.set(100 + i);
                }));
                l
            })
            .collect();
        drop(locals);
        assert_eq!(DROP_TARGET.get(), Some(131));
    });
    drop(tl);

    // Sweep on a holder thread: the dead key's value sets others while the
    // holder reclaims it.
    let holder = Worker::spawn();
    let tl = Arc::new(ThreadLocal::new());
    {
        let tl = tl.clone();
        holder.run(move || drop(tl.set(setter(6))));
    }
    drop(tl);
    let seen = holder.run(|| {
        // A write sweeps (a read would not).
        static SWEEP: ThreadLocal<()> = ThreadLocal::new();
        SWEEP.set(());
        SWEEP.remove();
        (DROP_TARGET.get(), DROP_TARGET_2.get())
    });
    assert_eq!(seen, (Some(6), Some(vec![6])), "sweep");

    // Thread exit: the sets find the map destroyed and drop their arguments.
    let drops = Drops::new();
    let keep = {
        let drops = drops.clone();
        holder.run(move || {
            let keep = ThreadLocal::new();
            let d = drops.clone();
            keep.set(OnDrop::new(move || {
                static LATE: ThreadLocal<Counted> = ThreadLocal::new();
                assert!(LATE.set(d.counted(1)).is_none());
                assert!(!LATE.is_set());
                DROP_TARGET.set(9);
                assert_eq!(DROP_TARGET.get(), None);
            }));
            drop(drops);
            keep // outlives the thread: its exit drops the value
        })
    };
    holder.join();
    assert_eq!(drops.get(), 1, "set during exit dropped its argument");
    drop(keep);
}

static READS_ITSELF: ThreadLocal<ReadsSelf> = ThreadLocal::new();
static READ_LOG: std::sync::Mutex<Vec<(u32, Option<u32>)>> = std::sync::Mutex::new(Vec::new());

/// A value whose `Drop` reads its own key.
struct ReadsSelf(u32);
impl Drop for ReadsSelf {
    fn drop(&mut self) {
        let seen = READS_ITSELF.with(|v| v.map(|v| v.0));
        READ_LOG.lock().unwrap().push((self.0, seen));
    }
}

/// A value whose `Drop` reads the same key: it sees the state after the
/// operation that dropped it, never itself or a torn state.
#[test]
fn drop_reads_same_key() {
    on_new_thread(|| {
        READS_ITSELF.set(ReadsSelf(1));
        drop(READS_ITSELF.set(ReadsSelf(2))); // 1 sees 2
        drop(READS_ITSELF.remove()); // 2 sees nothing
        READS_ITSELF.set(ReadsSelf(3));
        drop(READS_ITSELF.scope(ReadsSelf(4))); // 4 sees 3 restored
        {
            let _guard = READS_ITSELF.guard();
            READS_ITSELF.set(ReadsSelf(5)); // 3 sheltered
        } // 5 sees 3 restored
        READS_ITSELF.set(ReadsSelf(6)); // the returned 3 sees 6
        READ_LOG.lock().unwrap().push((0, None)); // end of the thread's body
        // 6 is dropped at thread exit and sees nothing.
    });
    let log = READ_LOG.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            (1, Some(2)),
            (2, None),
            (4, Some(3)),
            (5, Some(3)),
            (3, Some(6)),
            (0, None),
            (6, None),
        ]
    );
}

// === borrow conflicts ===

/// `set` inside `with` of the same key panics (the argument is dropped);
/// `try_set` returns `Borrowed` and hands the value back.
#[test]
fn with_then_set_panics() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    let result = catch_unwind(AssertUnwindSafe(|| {
        tl.with(|v| {
            assert_eq!(v.map(|v| v.value), Some(1));
            tl.set(drops.counted(2));
        })
    }));
    let payload = result.unwrap_err();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    assert!(message.contains("borrowed"), "{message}");
    assert_eq!(drops.get(), 1, "the rejected argument");
    assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(1), "still bound");

    let back = tl.with(|_| match tl.try_set(drops.counted(3)) {
        Err(err) => {
            assert_eq!(err.kind, AccessError::Borrowed);
            err.value
        }
        Ok(_) => panic!("try_set succeeded inside with"),
    });
    assert_eq!((back.value, drops.get()), (3, 1));
    // After the borrow ends, the value can be bound.
    let old = tl.set(back).unwrap();
    assert_eq!(old.value, 1);
}

/// Dropping a handle from inside another key's `with` and from a value's
/// `Drop` run by a sweep (a dead key's value killing another key).
#[test]
fn drop_kills_other_key() {
    let drops = Drops::new();
    let inner = Arc::new(ThreadLocal::new());
    let outer = Arc::new(ThreadLocal::new());
    let holder = Worker::spawn();
    {
        let (inner, outer, drops) = (inner.clone(), outer.clone(), drops.clone());
        holder.run(move || {
            inner.set(drops.counted(1));
            // Outer's value owns the last handle of `inner`, once we drop ours.
            let owned = Arc::clone(&inner);
            drop(inner);
            outer.set(OnDrop::new(move || drop(owned)));
        });
    }
    drop(inner);
    drop(outer); // the holder's outer value is now stale
    assert_eq!(drops.get(), 0);
    // The sweep drops outer's value, which kills `inner` on the holder and
    // drops the holder's inner value at once.
    holder.run(|| DROP_TARGET.set(0));
    assert_eq!(drops.get(), 1);
    holder.join();
    assert_eq!(drops.get(), 1);
}

// === guards and scopes ===

static CONN: ThreadLocal<String> = ThreadLocal::new();

fn conn() -> Option<String> {
    CONN.get()
}

/// A guard restores the value an enclosing scope bound, whatever the body
/// did with it.
#[test]
fn guard_restores_outer() {
    on_new_thread(|| {
        let _outer = CONN.scope("outer".to_owned());
        {
            let _guard = CONN.guard();
            assert_eq!(conn().as_deref(), Some("outer"));
            assert_eq!(
                CONN.set("inner".to_owned()),
                None,
                "outer value not handed out"
            );
            assert_eq!(conn().as_deref(), Some("inner"));
            assert_eq!(CONN.set("inner 2".to_owned()).as_deref(), Some("inner"));
        }
        assert_eq!(conn().as_deref(), Some("outer"));
        // The same outer value bound with a plain `set`.
        drop(CONN.set("plain".to_owned()));
        {
            let _guard = CONN.guard();
            CONN.set("inner".to_owned());
        }
        assert_eq!(conn().as_deref(), Some("plain"));
    });
}

/// `remove` inside a guard of an outer value returns `None`, and the outer
/// value comes back when the guard ends.
#[test]
fn remove_inside_guard_of_outer_value() {
    on_new_thread(|| {
        CONN.set("outer".to_owned());
        {
            let _guard = CONN.guard();
            assert_eq!(CONN.remove(), None);
            assert!(!CONN.is_set());
            assert_eq!(CONN.take(), "");
            CONN.set("inner".to_owned());
            assert_eq!(CONN.remove().as_deref(), Some("inner"));
        }
        assert_eq!(conn().as_deref(), Some("outer"));
    });
}

#[test]
fn nested_guards_restore_in_order() {
    on_new_thread(|| {
        CONN.set("0".to_owned());
        {
            let _g1 = CONN.guard();
            CONN.set("1".to_owned());
            {
                let _g2 = CONN.guard();
                assert_eq!(conn().as_deref(), Some("1"));
                CONN.set("2".to_owned());
                {
                    let _g3 = CONN.guard();
                    assert_eq!(CONN.remove(), None);
                }
                assert_eq!(conn().as_deref(), Some("2"));
            }
            assert_eq!(conn().as_deref(), Some("1"));
        }
        assert_eq!(conn().as_deref(), Some("0"));
        // Guards with nothing bound outside leave nothing bound.
        CONN.remove();
        {
            let _g1 = CONN.guard();
            {
                let _g2 = CONN.guard();
                CONN.set("x".to_owned());
            }
            assert!(!CONN.is_set());
            CONN.set("y".to_owned());
        }
        assert!(!CONN.is_set());
    });
}

#[test]
fn nested_scopes_restore_in_order() {
    on_new_thread(|| {
        let s1 = CONN.scope("1".to_owned());
        let s2 = CONN.scope("2".to_owned());
        let s3 = CONN.scope("3".to_owned());
        assert_eq!(conn().as_deref(), Some("3"));
        drop(s3);
        assert_eq!(conn().as_deref(), Some("2"));
        drop(s2);
        assert_eq!(conn().as_deref(), Some("1"));
        drop(s1);
        assert!(!CONN.is_set());
    });
}

#[test]
fn guard_inside_scope() {
    on_new_thread(|| {
        let _scope = CONN.scope("scope".to_owned());
        for _ in 0..3 {
            let _guard = CONN.guard();
            CONN.set("handler".to_owned());
            CONN.remove();
            CONN.set("handler again".to_owned());
        }
        assert_eq!(conn().as_deref(), Some("scope"));
        drop(_scope);
        assert!(!CONN.is_set());
    });
}

#[test]
fn scope_inside_guard() {
    on_new_thread(|| {
        CONN.set("outer".to_owned());
        {
            let _guard = CONN.guard();
            {
                let _scope = CONN.scope("scope".to_owned());
                assert_eq!(conn().as_deref(), Some("scope"));
                {
                    let _inner = CONN.scope("inner".to_owned());
                    assert_eq!(conn().as_deref(), Some("inner"));
                }
                assert_eq!(conn().as_deref(), Some("scope"));
            }
            // The scope had nothing of its own to restore; the outer value is
            // still sheltered by the guard.
            assert!(!CONN.is_set());
        }
        assert_eq!(conn().as_deref(), Some("outer"));
    });
}

/// A panic unwinding through nested guards and scopes restores every level.
#[test]
fn nested_guards_and_scopes_unwind() {
    on_new_thread(|| {
        let _outer = CONN.scope("outer".to_owned());
        let result = catch_unwind(|| {
            let _g1 = CONN.guard();
            CONN.set("a".to_owned());
            let _s = CONN.scope("b".to_owned());
            let _g2 = CONN.guard();
            CONN.set("c".to_owned());
            panic!("deep inside (deliberate test panic)");
        });
        assert!(result.is_err());
        assert_eq!(conn().as_deref(), Some("outer"));
    });
}

/// Guards of different keys interleave freely.
#[test]
fn guards_of_different_keys() {
    on_new_thread(|| {
        CONN.set("c".to_owned());
        SIDE_A.set(1);
        {
            let _ga = SIDE_A.guard();
            let _gc = CONN.guard();
            CONN.set("c2".to_owned());
            SIDE_A.set(2);
        }
        assert_eq!(conn().as_deref(), Some("c"));
        assert_eq!(SIDE_A.get(), Some(1));
    });
}

/// A guard on a key with an initializer: the value initialized inside the
/// guard is removed at its end.
#[test]
fn guard_on_initialized_key() {
    static INIT: ThreadLocal<u32> = ThreadLocal::with_initial(|| 5);
    on_new_thread(|| {
        {
            let _guard = INIT.guard();
            assert_eq!(INIT.get(), Some(5));
        }
        assert!(!INIT.is_set());
        INIT.set(1);
        {
            let _guard = INIT.guard();
            INIT.remove();
            assert_eq!(INIT.get(), Some(5), "re-initialized inside the guard");
        }
        assert_eq!(INIT.get(), Some(1));
    });
}

/// A `with` closure may bind and remove other keys, and read its own.
#[test]
fn with_uses_other_keys() {
    on_new_thread(|| {
        CONN.set("c".to_owned());
        CONN.with(|c| {
            SIDE_A.set(1);
            SIDE_B.set(c.unwrap().clone());
            let keys: Vec<ThreadLocal<u8>> = (0..64).map(|_| ThreadLocal::new()).collect();
            for k in &keys {
                k.set(1); // grows the table while `c` is borrowed
            }
            drop(keys);
            assert_eq!(CONN.get().as_deref(), Some("c"));
            assert_eq!(c.map(String::as_str), Some("c"));
        });
        assert_eq!(SIDE_B.get().as_deref(), Some("c"));
    });
}
