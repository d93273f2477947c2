//! Unit tests of every public `ThreadLocal` method and constructor, its
//! metadata (`id`, `info`, `label`, `named`, `per_thread`), `Debug` output
//! that never shows values, non-`Send` values, and compile-time `Send`/`Sync`.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Drops, on_new_thread, scaled};
use tl_core::checkpoint::{self, Mark, TaskScope};
use tl_core::death::{DeathNotice, DeathNotices};
use tl_core::inherit::Inheritance;
use tl_core::registry::{EntrySnapshot, ThreadInfo, ThreadRef, ThreadSnapshot};
use tl_core::{AccessError, Guard, KeyInfo, Policy, Scope, SetError, Stats, ThreadLocal};

// === compile-time Send/Sync ===

const fn assert_send_sync<T: Send + Sync>() {}
const fn assert_send<T: Send>() {}

const _: () = {
    // Values need not be `Send`: the handle is shared, the values stay put.
    assert_send_sync::<ThreadLocal<Rc<u32>>>();
    assert_send_sync::<ThreadLocal<Rc<RefCell<Vec<u8>>>>>();
    assert_send_sync::<ThreadLocal<Cell<u32>>>();
    assert_send_sync::<ThreadLocal<*const u8>>();
    assert_send_sync::<ThreadLocal<String>>();
    assert_send_sync::<KeyInfo>();
    assert_send_sync::<Policy>();
    assert_send_sync::<AccessError>();
    assert_send_sync::<SetError<u32>>();
    assert_send_sync::<Stats>();
    assert_send_sync::<ThreadRef>();
    assert_send_sync::<ThreadInfo>();
    assert_send_sync::<ThreadSnapshot>();
    assert_send_sync::<EntrySnapshot>();
    assert_send_sync::<DeathNotice>();
    assert_send_sync::<DeathNotices>();
    // An `Inheritance` is captured on the parent and installed on the child.
    assert_send::<Inheritance>();
};

/// Fails to compile if `T: Send` (both impls would apply, and the call
/// would be ambiguous): the `assert_not_impl_any` trick.
trait NotSend<A> {
    fn check() {}
}
impl<T: ?Sized> NotSend<()> for T {}
struct IfSend;
impl<T: ?Sized + Send> NotSend<IfSend> for T {}

/// Same for `Sync`.
trait NotSync<A> {
    fn check() {}
}
impl<T: ?Sized> NotSync<()> for T {}
struct IfSync;
impl<T: ?Sized + Sync> NotSync<IfSync> for T {}

// Guards, scopes, marks and task scopes act on the thread that made them.
const _: fn() = || {
    <Guard<u32> as NotSend<_>>::check();
    <Scope<u32> as NotSend<_>>::check();
    <Mark as NotSend<_>>::check();
    <Guard<u32> as NotSync<_>>::check();
    <Scope<u32> as NotSync<_>>::check();
};

// === constructors and basic access ===

static PLAIN: ThreadLocal<u64> = ThreadLocal::new();
static NAMED: ThreadLocal<String> = ThreadLocal::new().named("api::NAMED");
static COUNTER_INIT: ThreadLocal<u32> = ThreadLocal::with_initial(|| 7);

#[test]
fn new_is_unbound() {
    on_new_thread(|| {
        assert_eq!(PLAIN.get(), None);
        assert!(!PLAIN.is_set());
        assert!(PLAIN.with(|v| v.is_none()));
        assert_eq!(PLAIN.try_with(|v| v.copied()), Ok(None));
        assert_eq!(PLAIN.with_mut(|v| v.map(|v| *v)), None);
        assert_eq!(PLAIN.remove(), None);
        assert!(!PLAIN.is_set());
    });
}

#[test]
fn set_get_remove() {
    on_new_thread(|| {
        assert_eq!(PLAIN.set(5), None);
        assert!(PLAIN.is_set());
        assert_eq!(PLAIN.get(), Some(5));
        assert_eq!(PLAIN.set(6), Some(5));
        assert_eq!(PLAIN.get(), Some(6));
        assert_eq!(PLAIN.with(|v| v.copied()), Some(6));
        assert_eq!(PLAIN.remove(), Some(6));
        assert!(!PLAIN.is_set());
        assert_eq!(PLAIN.get(), None);
        assert_eq!(PLAIN.remove(), None);
        // Rebinding after a remove reuses the entry.
        assert_eq!(PLAIN.set(8), None);
        assert_eq!(PLAIN.get(), Some(8));
        PLAIN.remove();
    });
}

#[test]
fn get_clones_out() {
    on_new_thread(|| {
        NAMED.set("alice".to_owned());
        let mut copy = NAMED.get().unwrap();
        copy.push_str(" and bob");
        assert_eq!(NAMED.get().as_deref(), Some("alice"));
        assert_eq!(NAMED.with(|v| v.map(String::len)), Some(5));
        NAMED.remove();
    });
}

#[test]
fn with_initial_binds_on_first_read() {
    on_new_thread(|| {
        assert!(!COUNTER_INIT.is_set(), "is_set never runs the initializer");
        assert_eq!(COUNTER_INIT.get(), Some(7));
        assert!(COUNTER_INIT.is_set());
        assert_eq!(COUNTER_INIT.set(9), Some(7));
        assert_eq!(COUNTER_INIT.get(), Some(9));
        assert_eq!(COUNTER_INIT.remove(), Some(9));
        assert!(!COUNTER_INIT.is_set());
        assert_eq!(COUNTER_INIT.with(|v| v.copied()), Some(7));
        assert_eq!(COUNTER_INIT.remove(), Some(7));
        assert_eq!(COUNTER_INIT.with_mut(|v| v.map(|v| *v)), Some(7));
        assert_eq!(COUNTER_INIT.try_with(|v| v.copied()), Ok(Some(7)));
        COUNTER_INIT.remove();
    });
}

#[test]
fn with_initial_fn_runs_closure_per_bind() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let tl = ThreadLocal::with_initial_fn(move || counted.fetch_add(1, Ordering::SeqCst) + 100);
    assert!(!tl.is_set());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(tl.get(), Some(100));
    assert_eq!(tl.get(), Some(100));
    assert_eq!(tl.with(|v| v.copied()), Some(100));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "once per bind");
    tl.remove();
    assert_eq!(tl.get(), Some(101));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let tl = Arc::new(tl);
    let remote = tl.clone();
    let on_other = on_new_thread(move || remote.get());
    assert_eq!(
        on_other,
        Some(102),
        "each thread binds its own initial value"
    );
    assert_eq!(tl.get(), Some(101));
}

#[test]
fn with_mut_mutates_in_place() {
    let tl: ThreadLocal<Vec<u32>> = ThreadLocal::new();
    assert!(tl.with_mut(|v| v.is_none()));
    tl.set(vec![1]);
    tl.with_mut(|v| v.unwrap().push(2));
    assert_eq!(tl.get(), Some(vec![1, 2]));

    let init: ThreadLocal<Vec<u32>> = ThreadLocal::with_initial(Vec::new);
    init.with_mut(|v| v.expect("initialized").push(3));
    assert_eq!(init.get(), Some(vec![3]));
}

#[test]
fn take_and_replace() {
    let tl: ThreadLocal<String> = ThreadLocal::new();
    assert_eq!(tl.take(), "");
    assert!(!tl.is_set(), "take leaves nothing bound");
    assert_eq!(tl.replace("a".to_owned()), "");
    assert!(tl.is_set());
    assert_eq!(tl.replace("b".to_owned()), "a");
    assert_eq!(tl.take(), "b");
    assert!(!tl.is_set());

    // Neither runs the initializer: only reads do.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let init = ThreadLocal::with_initial_fn(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        42u32
    });
    assert_eq!(init.take(), 0);
    assert_eq!(init.replace(5), 0);
    assert_eq!(init.take(), 5);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(init.get(), Some(42));
    assert_eq!(init.take(), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn default_is_new() {
    let line = line!() + 1;
    let tl: ThreadLocal<u8> = ThreadLocal::default();
    assert_eq!(tl.get(), None);
    let info = tl.info();
    assert_eq!(info.declared_at.file(), file!());
    assert_eq!(
        info.declared_at.line(),
        line,
        "declared where `default` was called"
    );
}

#[test]
fn non_clone_values() {
    struct NoClone(u32);
    let tl: ThreadLocal<NoClone> = ThreadLocal::new();
    assert!(tl.set(NoClone(1)).is_none());
    assert_eq!(tl.with(|v| v.map(|v| v.0)), Some(1));
    tl.with_mut(|v| v.unwrap().0 += 1);
    assert_eq!(tl.remove().map(|v| v.0), Some(2));
}

// === borrow errors ===

#[test]
fn try_with_reports_mut_borrow() {
    let tl = ThreadLocal::new();
    tl.set(1u32);
    tl.with_mut(|v| {
        assert_eq!(v.copied(), Some(1));
        assert_eq!(tl.try_with(|v| v.copied()), Err(AccessError::Borrowed));
        assert!(tl.is_set(), "a mutably borrowed value is still bound");
    });
    // Shared borrows nest.
    tl.with(|outer| {
        tl.with(|inner| assert_eq!(outer, inner));
        assert_eq!(tl.try_with(|v| v.copied()), Ok(Some(1)));
        assert_eq!(tl.get(), Some(1));
    });
    assert_eq!(tl.try_with(|v| v.copied()), Ok(Some(1)));
}

#[test]
fn try_set_hands_value_back_when_borrowed() {
    let drops = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(drops.counted(1));
    let err = tl.with(|_| tl.try_set(drops.counted(2)).unwrap_err());
    assert_eq!(err.kind, AccessError::Borrowed);
    assert_eq!(err.value.value, 2, "the very value comes back");
    assert_eq!(drops.get(), 0, "nothing was dropped");
    let err = tl.with_mut(|_| tl.try_set(drops.counted(3)).unwrap_err());
    assert_eq!(err.kind, AccessError::Borrowed);
    assert_eq!(drops.get(), 0);
    drop(err);
    assert_eq!(drops.get(), 1);
    // Unborrowed, try_set is set.
    let old = tl.try_set(drops.counted(4)).ok().flatten();
    assert_eq!(old.map(|v| v.value), Some(1));
    assert_eq!(tl.with(|v| v.map(|v| v.value)), Some(4));
}

#[test]
fn set_error_display_and_debug() {
    let err = SetError {
        value: "secret-token".to_owned(),
        kind: AccessError::Borrowed,
    };
    let debug = format!("{err:?}");
    let display = err.to_string();
    assert!(debug.contains("Borrowed"), "{debug}");
    assert!(!debug.contains("secret-token"), "{debug}");
    assert!(!display.contains("secret-token"), "{display}");
    assert!(display.contains("borrowed"), "{display}");
    assert!(
        AccessError::ThreadExiting
            .to_string()
            .contains("thread exit")
    );
    let _: &dyn std::error::Error = &err;
    let _: &dyn std::error::Error = &AccessError::Borrowed;
}

fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn mutating_while_borrowed_panics() {
    let tl = ThreadLocal::new();
    tl.set(1u32);
    assert!(panics(|| tl.with(|_| {
        let _ = tl.remove();
    })));
    assert!(panics(|| tl.with(|_| {
        let _ = tl.set(2);
    })));
    assert!(panics(|| tl.with(|_| tl.with_mut(|_| ()))));
    assert!(panics(|| tl.with_mut(|_| {
        let _ = tl.get();
    })));
    assert!(panics(|| tl.with_mut(|_| tl.with(|_| ()))));
    assert!(panics(|| tl.with_mut(|_| tl.with_mut(|_| ()))));
    assert!(panics(|| tl.with_mut(|_| {
        let _ = tl.take();
    })));
    // Every borrow was released during the unwinds, and the value survived.
    assert_eq!(tl.get(), Some(1));
    assert_eq!(tl.set(3), Some(1));
    assert_eq!(tl.remove(), Some(3));
}

#[test]
fn panic_in_with_releases_borrow() {
    let tl = ThreadLocal::new();
    tl.set(1u32);
    assert!(panics(|| tl.with(|_| panic!("in with"))));
    assert!(panics(|| tl.with_mut(|v| {
        *v.unwrap() = 2;
        panic!("in with_mut")
    })));
    assert_eq!(tl.set(4), Some(2));
    assert_eq!(tl.try_with(|v| v.copied()), Ok(Some(4)));
}

#[derive(Debug, PartialEq)]
struct PanickyClone(u32);

impl Clone for PanickyClone {
    fn clone(&self) -> Self {
        if self.0 == 13 {
            panic!("unlucky clone");
        }
        Self(self.0)
    }
}

#[test]
fn panic_in_clone_releases_borrow() {
    let tl = ThreadLocal::new();
    tl.set(PanickyClone(13));
    assert!(panics(|| {
        let _ = tl.get();
    }));
    assert_eq!(tl.set(PanickyClone(1)), Some(PanickyClone(13)));
    assert_eq!(tl.get(), Some(PanickyClone(1)));
}

static CLONE_READS: ThreadLocal<ReadsDuringClone> = ThreadLocal::new();

/// A `Clone` that reads (and tries to replace) its own thread-local.
#[derive(Debug)]
struct ReadsDuringClone(u32);

impl Clone for ReadsDuringClone {
    fn clone(&self) -> Self {
        let seen = CLONE_READS.with(|v| v.map(|v| v.0));
        assert_eq!(seen, Some(self.0), "a read nested in `get`'s clone");
        let err = CLONE_READS.try_set(ReadsDuringClone(0)).unwrap_err();
        assert_eq!(err.kind, AccessError::Borrowed);
        Self(self.0)
    }
}

#[test]
fn with_nested_in_clone() {
    on_new_thread(|| {
        CLONE_READS.set(ReadsDuringClone(3));
        assert_eq!(CLONE_READS.get().map(|v| v.0), Some(3));
        assert_eq!(CLONE_READS.remove().map(|v| v.0), Some(3));
    });
}

// === scope and guard basics ===

#[test]
fn scope_binds_and_restores() {
    let tl = ThreadLocal::new();
    {
        let _outer = tl.scope(1u32);
        assert_eq!(tl.get(), Some(1));
        {
            let _inner = tl.scope(2);
            assert_eq!(tl.get(), Some(2));
        }
        assert_eq!(tl.get(), Some(1));
    }
    assert!(!tl.is_set());
    tl.set(5);
    drop(tl.scope(6));
    assert_eq!(tl.get(), Some(5));
}

#[test]
fn guard_removes_what_was_bound_inside() {
    let tl = ThreadLocal::new();
    {
        let _guard = tl.guard();
        tl.set(1u32);
        assert_eq!(tl.set(2), Some(1), "values bound inside are returned");
    }
    assert!(!tl.is_set());
    tl.set(9);
    {
        let _guard = tl.guard();
        assert_eq!(tl.get(), Some(9), "the guard does not hide the outer value");
    }
    assert_eq!(tl.get(), Some(9));
    let guard = tl.guard();
    let scope = tl.scope(1);
    assert!(format!("{guard:?}").contains("Guard"));
    assert!(format!("{scope:?}").contains("Scope"));
    drop(scope);
    drop(guard);
}

// === identity and metadata ===

#[test]
fn ids_are_unique_and_stable() {
    let n = scaled(2_000, 50);
    let keys: Vec<ThreadLocal<u8>> = (0..n).map(|_| ThreadLocal::new()).collect();
    let mut ids = HashSet::new();
    for key in &keys {
        let id = key.id();
        assert_ne!(id, 0);
        assert_eq!(key.id(), id, "stable");
        assert!(ids.insert(id), "unique");
    }
    // Keys created on other threads (from their own id blocks) too.
    let remote: Vec<u64> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                (0..n)
                    .map(|_| ThreadLocal::<u8>::new().id())
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    for id in remote {
        assert!(ids.insert(id), "unique across threads");
    }
    // Dropped keys' ids are never reused.
    drop(keys);
    for _ in 0..n {
        assert!(ids.insert(ThreadLocal::<u8>::new().id()));
    }
}

#[test]
fn id_is_shared_across_threads() {
    let tl = Arc::new(ThreadLocal::<u8>::new());
    let remote = tl.clone();
    let seen = on_new_thread(move || remote.id());
    assert_eq!(seen, tl.id());
}

#[test]
fn info_reports_metadata() {
    let line = line!() + 1;
    let tl: ThreadLocal<Vec<String>> = ThreadLocal::new();
    let info = tl.info();
    assert_eq!(info.id, tl.id());
    assert_eq!(info.name, None);
    assert_eq!(info.type_name, std::any::type_name::<Vec<String>>());
    assert_eq!(info.declared_at.file(), file!());
    assert_eq!(info.declared_at.line(), line);
    assert_eq!(info.policy, Policy::TaskScoped);
    assert!(info.alive);
    assert_eq!(
        info.display_name(),
        format!("ThreadLocal<{}>@{}", info.type_name, info.declared_at)
    );

    let named = ThreadLocal::<u8>::new().named("Service.cache").per_thread();
    let info = named.info();
    assert_eq!(info.name, Some("Service.cache"));
    assert_eq!(info.display_name(), "Service.cache");
    assert_eq!(info.policy, Policy::PerThread);

    let policy = ThreadLocal::<u8>::with_initial(|| 0).policy(Policy::PerThread);
    assert_eq!(policy.info().policy, Policy::PerThread);
    let back = ThreadLocal::<u8>::new()
        .per_thread()
        .policy(Policy::TaskScoped);
    assert_eq!(back.info().policy, Policy::TaskScoped);
}

#[test]
fn static_info_points_at_declaration() {
    let info = NAMED.info();
    assert_eq!(info.name, Some("api::NAMED"));
    assert_eq!(info.declared_at.file(), file!());
    let source = include_str!("api.rs");
    let line = source
        .lines()
        .position(|l| l.starts_with("static NAMED:"))
        .unwrap()
        + 1;
    assert_eq!(info.declared_at.line() as usize, line);
}

#[test]
fn label_names_once() {
    let tl: ThreadLocal<u8> = ThreadLocal::new();
    let declared = tl.info().declared_at;
    assert!(tl_core::__private::label(&tl, "Handler.conn", None));
    assert_eq!(tl.info().name, Some("Handler.conn"));
    assert_eq!(tl.info().declared_at, declared, "kept without a new site");
    assert!(
        !tl_core::__private::label(&tl, "Other", None),
        "labelled once"
    );
    assert_eq!(tl.info().name, Some("Handler.conn"));

    let site = std::panic::Location::caller();
    let relabelled: ThreadLocal<u8> = ThreadLocal::new();
    assert!(tl_core::__private::label(&relabelled, "Field", Some(site)));
    assert_eq!(relabelled.info().declared_at, site);

    let named: ThreadLocal<u8> = ThreadLocal::new().named("given");
    assert!(
        !tl_core::__private::label(&named, "ignored", Some(site)),
        "a `named` key counts as labelled"
    );
    assert_eq!(named.info().name, Some("given"));
    assert_ne!(named.info().declared_at, site);
}

#[test]
fn policy_names() {
    assert_eq!(Policy::default(), Policy::TaskScoped);
    assert_eq!(Policy::TaskScoped.as_str(), "task-scoped");
    assert_eq!(Policy::PerThread.to_string(), "per-thread");
}

#[derive(Clone, Debug, Default)]
struct Secret(#[allow(dead_code, reason = "read only through Debug")] String);

#[test]
fn debug_never_prints_values() {
    let tl: ThreadLocal<Secret> = ThreadLocal::new().named("TOKEN");
    tl.set(Secret("hunter2".to_owned()));
    let guard = tl.guard();
    let scope = tl.scope(Secret("hunter3".to_owned()));
    let printed = [
        format!("{tl:?}"),
        format!("{:?}", tl.info()),
        format!("{guard:?}"),
        format!("{scope:?}"),
        format!("{:?}", tl_core::registry::snapshot_all()),
        format!("{:?}", checkpoint::bound()),
        format!("{:?}", checkpoint::mark().leftovers()),
        format!("{:?}", tl_core::inherit::capture()),
        format!("{:?}", TaskScope::enter("task")),
    ];
    for text in &printed {
        assert!(!text.contains("hunter"), "value printed: {text}");
    }
    assert!(printed[0].contains("TOKEN"), "{}", printed[0]);
    assert!(printed[0].contains("Secret"), "{}", printed[0]);
    drop(scope);
    drop(guard);
    assert!(tl.remove().is_some());
}

// === non-Send values ===

static SHARED_RC: ThreadLocal<Rc<RefCell<Vec<u32>>>> =
    ThreadLocal::with_initial(|| Rc::new(RefCell::new(Vec::new())));

#[test]
fn rc_refcell_values() {
    let tl: ThreadLocal<Rc<RefCell<Vec<u32>>>> = ThreadLocal::new();
    let rc = Rc::new(RefCell::new(vec![1]));
    tl.set(rc.clone());
    assert_eq!(Rc::strong_count(&rc), 2);
    tl.with(|v| v.unwrap().borrow_mut().push(2));
    let got = tl.get().unwrap();
    assert_eq!(Rc::strong_count(&rc), 3);
    assert_eq!(*got.borrow(), vec![1, 2]);
    drop(got);
    drop(tl);
    assert_eq!(
        Rc::strong_count(&rc),
        1,
        "key drop released the thread's Rc"
    );

    // A static of a non-Send type: one Rc per thread.
    let here = SHARED_RC.get().unwrap();
    here.borrow_mut().push(1);
    let there = on_new_thread(|| {
        SHARED_RC.with(|v| v.unwrap().borrow_mut().push(2));
        SHARED_RC.with(|v| v.unwrap().borrow().clone())
    });
    assert_eq!(there, vec![2]);
    assert_eq!(*SHARED_RC.get().unwrap().borrow(), vec![1]);
    SHARED_RC.remove();
}

#[test]
fn cell_values() {
    let tl: ThreadLocal<Cell<u32>> = ThreadLocal::with_initial(|| Cell::new(0));
    for _ in 0..3 {
        tl.with(|c| c.unwrap().set(c.unwrap().get() + 1));
    }
    assert_eq!(tl.get().map(|c| c.get()), Some(3));
}

// === many keys on one thread ===

/// Grows and shrinks one thread's table through the public API, with
/// removals and key deaths in between.
#[test]
fn many_keys_on_one_thread() {
    on_new_thread(|| {
        let n = scaled(3_000, 120);
        let mut keys: Vec<Option<ThreadLocal<usize>>> =
            (0..n).map(|_| Some(ThreadLocal::new())).collect();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(key.as_ref().unwrap().set(i), None);
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(key.as_ref().unwrap().get(), Some(i));
        }
        // Remove every third value, kill every other key.
        for (i, key) in keys.iter_mut().enumerate() {
            if i % 3 == 0 {
                assert_eq!(key.as_ref().unwrap().remove(), Some(i));
            }
            if i % 2 == 0 {
                *key = None;
            }
        }
        for (i, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                let expected = (i % 3 != 0).then_some(i);
                assert_eq!(key.get(), expected, "key {i}");
            }
        }
        // Kill nearly all: the table shrinks and the survivors stay reachable.
        let survivors: Vec<(usize, ThreadLocal<usize>)> = keys
            .into_iter()
            .enumerate()
            .filter_map(|(i, k)| k.filter(|_| i % 7 == 1).map(|k| (i, k)))
            .collect();
        for (i, key) in &survivors {
            assert_eq!(key.get(), (i % 3 != 0).then_some(*i));
        }
    });
}

#[test]
fn dropping_unused_key_is_harmless() {
    let tl: ThreadLocal<String> = ThreadLocal::new();
    drop(tl);
    let tl: ThreadLocal<String> = ThreadLocal::with_initial(String::new);
    let _ = tl.id();
    drop(tl);
}

#[test]
fn stats_are_readable() {
    PLAIN.set(1);
    let stats = tl_core::stats();
    assert!(stats.threads >= 1, "this thread is registered: {stats:?}");
    PLAIN.remove();
}

/// Threads racing to create one key all get the same id; the losers' key
/// blocks are freed (Miri checks the publication for races and leaks).
#[test]
fn racing_key_creation() {
    let threads = scaled(8, 3);
    for _ in 0..scaled(20, 2) {
        let tl = Arc::new(ThreadLocal::<u32>::new());
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (tl, barrier) = (tl.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let id = if i % 2 == 0 {
                        tl.id()
                    } else {
                        tl.set(i as u32);
                        tl.info().id
                    };
                    (id, tl.get())
                })
            })
            .collect();
        let results: Vec<(u64, Option<u32>)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (i, &(id, value)) in results.iter().enumerate() {
            assert_eq!(id, tl.id());
            assert_eq!(value, (i % 2 == 1).then_some(i as u32));
        }
    }
}

#[test]
fn zero_sized_values() {
    let tl: ThreadLocal<()> = ThreadLocal::new();
    assert_eq!(tl.set(()), None);
    assert_eq!(tl.get(), Some(()));
    assert!(tl.is_set());
    assert_eq!(tl.remove(), Some(()));
    let marker = ThreadLocal::with_initial(|| std::marker::PhantomData::<Rc<u8>>);
    assert!(marker.get().is_some());
}
