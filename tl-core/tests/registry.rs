//! The audit registry: snapshots of idle threads (names, types, declaration
//! and set sites, retained bytes, stale entries), unregistration at thread
//! exit, and snapshots racing a busy owner.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use common::{Worker, entry_of, find_thread, scaled};
use tl_core::registry::{self, EntrySnapshot, ThreadSnapshot};
use tl_core::{Policy, ThreadLocal};

/// Handles shared with a worker, with the lines they were declared on.
struct Keys {
    named: Arc<ThreadLocal<String>>,
    named_line: u32,
    sized: Arc<ThreadLocal<Vec<u8>>>,
    sized_line: u32,
    cache: Arc<ThreadLocal<u64>>,
}

fn keys() -> Keys {
    let named_line = line!() + 1;
    let named = Arc::new(ThreadLocal::new().named("registry::named"));
    let sized_line = line!() + 1;
    let sized = Arc::new(ThreadLocal::new().heap_size(|v: &Vec<u8>| v.capacity()));
    let cache = Arc::new(ThreadLocal::new().named("registry::cache").per_thread());
    Keys {
        named,
        named_line,
        sized,
        sized_line,
        cache,
    }
}

fn entry(snapshot: &ThreadSnapshot, key_id: u64) -> EntrySnapshot {
    entry_of(snapshot, key_id).unwrap_or_else(|| panic!("entry {key_id} in {snapshot:?}"))
}

/// An idle thread, blocked on a channel, is snapshotted from another
/// thread: every bound entry with its name, type, declaration site, set
/// site, bytes and the thread's name.
#[test]
fn idle_thread_snapshot() {
    let k = keys();
    let worker = Worker::named("registry-idle-worker");
    let (named, sized, cache) = (k.named.clone(), k.sized.clone(), k.cache.clone());
    let set_lines = worker.run(move || {
        let named_set = line!() + 1;
        named.set("secret-value".to_owned());
        let sized_set = line!() + 1;
        sized.set(Vec::with_capacity(100));
        cache.set(7);
        (named_set, sized_set)
    });
    // The worker is now blocked in `recv`.
    let before = Instant::now();
    let snapshot = worker.snapshot();
    assert!(snapshot.alive);
    assert_eq!(
        snapshot.thread.name.as_deref(),
        Some("registry-idle-worker")
    );
    assert_eq!(snapshot.thread.display_name(), "registry-idle-worker");
    assert_eq!(snapshot.thread.std_id, worker.thread_id());
    assert!(snapshot.taken_at >= before);
    assert_eq!(snapshot.entries.len(), 3);
    assert_eq!(snapshot.bound().count(), 3);
    assert_eq!(snapshot.stale().count(), 0);

    let named = entry(&snapshot, k.named.id());
    assert!(named.bound && !named.is_stale());
    assert_eq!(named.key.name, Some("registry::named"));
    assert_eq!(named.key.type_name, std::any::type_name::<String>());
    assert_eq!(named.key.declared_at.file(), file!());
    assert_eq!(named.key.declared_at.line(), k.named_line);
    assert_eq!(named.key.policy, Policy::TaskScoped);
    assert!(named.key.alive);
    let site = named.set_site.expect("set site recorded");
    assert_eq!((site.file(), site.line()), (file!(), set_lines.0));
    assert_eq!(
        named.bytes,
        size_of::<String>(),
        "no heap size hook: size_of only"
    );
    assert!(named.set_at <= snapshot.taken_at);
    assert!(named.age(snapshot.taken_at) < std::time::Duration::from_secs(3600));

    let sized = entry(&snapshot, k.sized.id());
    assert_eq!(sized.key.name, None);
    assert_eq!(sized.key.declared_at.line(), k.sized_line);
    assert_eq!(sized.key.type_name, std::any::type_name::<Vec<u8>>());
    assert_eq!(sized.set_site.unwrap().line(), set_lines.1);
    assert_eq!(sized.bytes, size_of::<Vec<u8>>() + 100);

    let cache = entry(&snapshot, k.cache.id());
    assert_eq!(cache.key.policy, Policy::PerThread);
    assert_eq!(cache.bytes, size_of::<u64>());
    assert_eq!(
        snapshot.retained_bytes(),
        size_of::<String>() + size_of::<Vec<u8>>() + 100 + size_of::<u64>()
    );
    assert!(
        !format!("{snapshot:?}").contains("secret-value"),
        "snapshots never contain values"
    );

    // `with_mut` recomputes the heap size; `remove` leaves an unbound entry.
    let (sized, named) = (k.sized.clone(), k.named.clone());
    worker.run(move || {
        sized.with_mut(|v| v.unwrap().reserve_exact(1000));
        named.remove();
    });
    let snapshot = worker.snapshot();
    let sized = entry(&snapshot, k.sized.id());
    assert!(sized.bytes >= size_of::<Vec<u8>>() + 1000, "{sized:?}");
    let named = entry(&snapshot, k.named.id());
    assert!(!named.bound, "entries outlive remove");
    assert_eq!(snapshot.bound().count(), 2);
    worker.join();
}

/// The set site is the caller's line for every binding method.
#[test]
fn set_sites() {
    static INIT: ThreadLocal<u32> = ThreadLocal::with_initial(|| 1);
    fn site_of(key_id: u64) -> u32 {
        let me = find_thread(std::thread::current().id()).unwrap();
        entry(&me.snapshot(), key_id).set_site.unwrap().line()
    }
    let tl: ThreadLocal<u32> = ThreadLocal::new();
    let line = line!() + 1;
    tl.set(1);
    assert_eq!(site_of(tl.id()), line);
    let line = line!() + 1;
    let _ = tl.try_set(2);
    assert_eq!(site_of(tl.id()), line);
    let line = line!() + 1;
    tl.replace(3);
    assert_eq!(site_of(tl.id()), line);
    let line = line!() + 1;
    let scope = tl.scope(4);
    assert_eq!(site_of(tl.id()), line);
    drop(scope);
    INIT.remove();
    let line = line!() + 1;
    INIT.get();
    assert_eq!(
        site_of(INIT.id()),
        line,
        "an initial value: the reading call"
    );
    INIT.remove();
    let line = line!() + 1;
    INIT.with(|_| ());
    assert_eq!(site_of(INIT.id()), line);
}

/// A dead key's values on an idle thread show as stale until the thread's
/// next access reclaims them.
#[test]
fn stale_after_key_death() {
    static OTHER: ThreadLocal<u8> = ThreadLocal::new();
    let k = keys();
    let worker = Worker::spawn();
    let named = k.named.clone();
    worker.run(move || {
        named.set("x".to_owned());
        OTHER.set(1);
    });
    let id = k.named.id();
    drop(k);
    let snapshot = worker.snapshot();
    let stale = entry(&snapshot, id);
    assert!(stale.bound && stale.is_stale() && !stale.key.alive);
    assert_eq!(
        stale.key.name,
        Some("registry::named"),
        "metadata outlives the handle"
    );
    assert_eq!(snapshot.stale().count(), 1);
    assert_eq!(snapshot.thread.display_name(), "<unnamed>");

    worker.run(|| OTHER.get());
    let snapshot = worker.snapshot();
    assert!(entry_of(&snapshot, id).is_some(), "a read does not sweep");
    worker.run(|| OTHER.set(2));
    let snapshot = worker.snapshot();
    assert!(
        entry_of(&snapshot, id).is_none(),
        "reclaimed by the next write"
    );
    assert_eq!(snapshot.stale().count(), 0);
}

/// Threads register on their first bind and disappear from `threads()` when
/// they exit; a kept `ThreadRef` then reports an exited, empty thread.
#[test]
fn exited_threads_disappear() {
    static KEY: ThreadLocal<String> = ThreadLocal::new();
    let worker = Worker::named("registry-exiting");
    assert!(
        worker.registration().is_none(),
        "not registered before a bind"
    );
    worker.run(|| drop(KEY.set("v".to_owned())));
    let registration = worker.registration().expect("registered");
    assert!(registration.is_alive());
    assert!(format!("{registration:?}").contains("registry-exiting"));
    let id = worker.thread_id();
    assert!(
        registry::snapshot_all()
            .iter()
            .any(|s| s.thread.std_id == id)
    );
    worker.join();
    assert!(find_thread(id).is_none());
    assert!(
        registry::snapshot_all()
            .iter()
            .all(|s| s.thread.std_id != id)
    );
    assert!(!registration.is_alive());
    let after = registration.snapshot();
    assert!(!after.alive);
    assert!(after.entries.is_empty());
}

/// tl-core's thread numbers are unique.
#[test]
fn thread_ids_are_unique() {
    static KEY: ThreadLocal<u8> = ThreadLocal::new();
    let workers: Vec<Worker> = (0..3).map(|_| Worker::spawn()).collect();
    for w in &workers {
        w.run(|| KEY.set(1));
    }
    let mut ids: Vec<u64> = workers
        .iter()
        .map(|w| w.registration().unwrap().info().id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert!(tl_core::stats().threads >= 3);
}

/// Binds a 1000-byte outer value (returning the line), then a 10-byte one
/// inside a guard, and checks the guard put the outer one back.
fn outer_then_guarded_inner(tl: &ThreadLocal<Vec<u8>>) -> u32 {
    let outer_line = line!() + 1;
    tl.set(Vec::with_capacity(1000));
    {
        let _guard = tl.guard();
        tl.set(Vec::with_capacity(10));
    }
    assert_eq!(tl.with(|v| v.unwrap().capacity()), 1000);
    outer_line
}

/// A guard restoring an outer value restores the bytes the registry
/// reports for it (a leak report would otherwise understate it).
#[test]
fn guard_restore_reports_outer_bytes() {
    let tl: ThreadLocal<Vec<u8>> = ThreadLocal::new().heap_size(|v| v.capacity());
    outer_then_guarded_inner(&tl);
    let me = find_thread(std::thread::current().id()).unwrap();
    let e = entry(&me.snapshot(), tl.id());
    assert_eq!(
        e.bytes,
        size_of::<Vec<u8>>() + 1000,
        "bytes of the restored value"
    );
}

/// A guard restoring an outer value restores where it was bound (a leak
/// report would otherwise blame the inner `set`, whose value is gone).
#[test]
fn guard_restore_reports_outer_set_site() {
    let tl: ThreadLocal<Vec<u8>> = ThreadLocal::new();
    let outer_line = outer_then_guarded_inner(&tl);
    let me = find_thread(std::thread::current().id()).unwrap();
    let e = entry(&me.snapshot(), tl.id());
    assert_eq!(
        e.set_site.unwrap().line(),
        outer_line,
        "where the restored value was bound"
    );
}

/// A heap size hook reporting more than fits is saturated, not overflowed:
/// binding must not panic.
#[test]
fn heap_size_saturates() {
    let tl: ThreadLocal<u8> = ThreadLocal::new().heap_size(|_| usize::MAX);
    tl.set(1);
    tl.with_mut(|v| *v.unwrap() += 1);
    drop(tl.scope(3));
    let me = find_thread(std::thread::current().id()).unwrap();
    let e = entry(&me.snapshot(), tl.id());
    assert!(e.bytes >= u32::MAX as usize, "{e:?}");
}

/// The coarse clock: stamps are never later than the real bind time.
#[test]
fn set_at_is_not_in_the_future() {
    let tl: ThreadLocal<u8> = ThreadLocal::new();
    let now = tl_core::clock::refresh();
    assert!(now <= Instant::now());
    tl.set(1);
    let after = Instant::now();
    let me = find_thread(std::thread::current().id()).unwrap();
    let snapshot = me.snapshot();
    let e = entry(&snapshot, tl.id());
    assert!(e.set_at <= after);
    assert!(e.age(snapshot.taken_at) >= std::time::Duration::ZERO);
}

/// A scope restoring an outer value recomputes its bytes.
#[test]
fn scope_restore_reports_outer_bytes() {
    let tl: ThreadLocal<Vec<u8>> = ThreadLocal::new().heap_size(|v| v.capacity());
    tl.set(Vec::with_capacity(1000));
    drop(tl.scope(Vec::with_capacity(10)));
    let me = find_thread(std::thread::current().id()).unwrap();
    let e = entry(&me.snapshot(), tl.id());
    assert_eq!(e.bytes, size_of::<Vec<u8>>() + 1000);
}

/// Snapshots taken while the owner binds, removes, creates and kills keys
/// (growing and shrinking its table) see consistent entries. Under Miri this
/// also checks the view lock for data races.
#[test]
fn snapshots_race_a_busy_owner() {
    let rounds = scaled(2_000, 30);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let owner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            static FIXED: ThreadLocal<u64> = ThreadLocal::new().named("registry::fixed");
            FIXED.set(0);
            tx.send(std::thread::current().id()).unwrap();
            go_rx.recv().unwrap(); // registered and found: start

            let mut keys: Vec<ThreadLocal<u64>> = Vec::new();
            for i in 0..rounds as u64 {
                FIXED.set(i);
                if i % 7 == 0 {
                    FIXED.remove();
                }
                if keys.len() < 40 {
                    let k = ThreadLocal::new();
                    k.set(i);
                    keys.push(k);
                } else {
                    keys.truncate(if i % 2 == 0 { 3 } else { 20 });
                }
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let id = rx.recv().unwrap();
    let thread = find_thread(id).unwrap();
    go_tx.send(()).unwrap();
    let mut snapshots = 0;
    while !stop.load(Ordering::SeqCst) || snapshots == 0 {
        let snapshot = thread.snapshot();
        assert!(snapshot.entries.len() <= 42, "{}", snapshot.entries.len());
        for e in &snapshot.entries {
            assert!(e.key.id != 0);
            if e.key.name == Some("registry::fixed") {
                assert_eq!(e.key.type_name, "u64");
            }
        }
        snapshots += 1;
        std::thread::yield_now();
    }
    owner.join().unwrap();
    assert!(snapshots > 0);
}

/// `for_each_entry` sees what `snapshot` sees, without the copy, on an idle
/// thread; on the calling thread's own registration it snapshots first, so
/// the callback may bind thread-locals (which would otherwise wait for the
/// lock the callback runs under).
#[test]
fn for_each_entry_matches_snapshot() {
    let k = keys();
    let worker = Worker::named("registry-visit-worker");
    let (named, sized) = (k.named.clone(), k.sized.clone());
    worker.run(move || {
        named.set("visited".to_owned());
        sized.set(Vec::with_capacity(64));
        sized.remove();
    });
    let registration = worker.registration().expect("registered");
    let mut visited = Vec::new();
    registration.for_each_entry(|entry| visited.push((entry.key.id, entry.bound, entry.bytes)));
    visited.sort_unstable();
    let mut expected: Vec<_> = registration
        .snapshot()
        .entries
        .iter()
        .map(|e| (e.key.id, e.bound, e.bytes))
        .collect();
    expected.sort_unstable();
    assert_eq!(visited, expected);
    assert_eq!(visited.len(), 2);

    common::on_new_thread(|| {
        static OWN: ThreadLocal<u32> = ThreadLocal::new();
        static BOUND_IN_CALLBACK: ThreadLocal<u32> = ThreadLocal::new();
        OWN.set(1);
        let me = registry::current().expect("registered by the first bind");
        let mut seen = 0;
        me.for_each_entry(|_| {
            seen += 1;
            BOUND_IN_CALLBACK.set(2);
        });
        assert_eq!(seen, 1);
        assert_eq!(BOUND_IN_CALLBACK.get(), Some(2));
        BOUND_IN_CALLBACK.remove();
        OWN.remove();
    });
}

/// `current` is the calling thread's registration, absent until it binds.
#[test]
fn current_is_this_threads_registration() {
    common::on_new_thread(|| {
        assert!(registry::current().is_none());
        static KEY: ThreadLocal<u8> = ThreadLocal::new();
        KEY.set(1);
        let me = registry::current().expect("registered");
        assert_eq!(me.info().std_id, std::thread::current().id());
        assert!(me.is_alive());
        KEY.remove();
    });
}
