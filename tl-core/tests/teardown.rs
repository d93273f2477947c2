//! Thread exit and teardown regression tests: thread-local access from
//! destructors run during thread exit (ours and std's `thread_local!`),
//! panicking drops (caught and counted in `stats().drop_panics`), and
//! handles dropped while their thread is exiting.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{Counted, Drops, OnDrop, PanicOnDrop, Worker, find_thread, serial};
use tl_core::{AccessError, ThreadLocal};

/// Serializes the tests that make drops panic, so each can count its own.
static DROP_PANICS: Mutex<()> = Mutex::new(());

fn drop_panics() -> u64 {
    tl_core::stats().drop_panics
}

static OURS: ThreadLocal<OnDrop> = ThreadLocal::new();
static OTHER: ThreadLocal<Counted> = ThreadLocal::new();
static INIT_CALLS: AtomicUsize = AtomicUsize::new(0);
static INIT: ThreadLocal<u32> = ThreadLocal::with_initial(|| {
    INIT_CALLS.fetch_add(1, Ordering::SeqCst);
    1
});

/// What a destructor running during thread exit saw.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    ours_bound: bool,
    ours_removed: bool,
    other: Option<u32>,
    other_removed: Option<u32>,
    other_is_set: bool,
    init: Option<u32>,
    init_with_mut: Option<u32>,
    try_with: Option<Result<(), AccessError>>,
    try_set: Option<AccessError>,
    try_set_value_back: bool,
    is_set_after_set: bool,
}

/// Probes every operation on our keys and others from inside a `Drop`.
fn probe(drops: &Drops, late_ours: &Drops) -> Seen {
    let late = late_ours.clone();
    // Binding a new value for our own key: dropped at once.
    OURS.set(OnDrop::new(move || drop(late.counted(0))));
    let err = OTHER.try_set(drops.counted(10)).err();
    let mut seen = Seen {
        ours_bound: OURS.with(|v| v.is_some()),
        ours_removed: OURS.remove().is_some(),
        other: OTHER.with(|v| v.map(|v| v.value)),
        other_removed: OTHER.remove().map(|v| v.value),
        other_is_set: OTHER.is_set(),
        init: INIT.get(),
        init_with_mut: INIT.with_mut(|v| v.copied()),
        try_with: Some(INIT.try_with(|_| ())),
        try_set: err.as_ref().map(|e| e.kind),
        try_set_value_back: err.is_some_and(|e| e.value.value == 10),
        is_set_after_set: false,
    };
    OTHER.set(drops.counted(11)); // dropped at once
    seen.is_set_after_set = OTHER.is_set();
    // Guards and scopes during exit bind nothing and restore nothing.
    {
        let _guard = OTHER.guard();
        let _scope = OTHER.scope(drops.counted(12));
    }
    seen
}

/// A value's `Drop`, run during thread exit, uses our key and others: no
/// abort, reads see `None`, `set` drops its argument, initializers do not
/// run, `try_` methods report `ThreadExiting`.
#[test]
fn access_during_thread_exit() {
    let drops = Drops::new();
    let late_ours = Drops::new();
    let (tx, rx) = mpsc::channel();
    let (d, l) = (drops.clone(), late_ours.clone());
    thread::spawn(move || {
        INIT.get(); // the initializer's one call on this thread
        OTHER.set(d.counted(1));
        OURS.set(OnDrop::new(move || tx.send(probe(&d, &l)).unwrap()));
    })
    .join()
    .unwrap();
    let seen = rx.recv().unwrap();
    assert_eq!(
        seen,
        Seen {
            ours_bound: false,
            ours_removed: false,
            other: None,
            other_removed: None,
            other_is_set: false,
            init: None,
            init_with_mut: None,
            try_with: Some(Err(AccessError::ThreadExiting)),
            try_set: Some(AccessError::ThreadExiting),
            try_set_value_back: true,
            is_set_after_set: false,
        }
    );
    assert_eq!(
        INIT_CALLS.load(Ordering::SeqCst),
        1,
        "no initializer during exit"
    );
    // 1 (thread exit), 10 (handed back, dropped by the probe), 11, 12.
    assert_eq!(drops.get(), 4);
    assert_eq!(late_ours.get(), 1, "the value set for our key during exit");
}

/// `try_with` during thread exit reports `ThreadExiting` for a key whose
/// id exists (used before, here or on another thread).
#[test]
fn try_with_during_exit() {
    static USED_ELSEWHERE: ThreadLocal<u32> = ThreadLocal::new();
    USED_ELSEWHERE.set(1); // creates the key, on this thread
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        OURS.set(OnDrop::new(move || {
            let used = USED_ELSEWHERE.try_with(|_| ());
            let with = USED_ELSEWHERE.with(|v| v.copied());
            tx.send((used, with)).unwrap();
        }));
    })
    .join()
    .unwrap();
    assert_eq!(rx.recv().unwrap(), (Err(AccessError::ThreadExiting), None));
    USED_ELSEWHERE.remove();
}

/// `try_with` on a key with no id yet (never used anywhere, or created
/// during exit), during thread exit, must report `ThreadExiting` as its
/// docs say ("reports ... a destroyed map as an error instead of ...
/// passing `None`").
#[test]
fn try_with_during_exit_on_unused_key() {
    static NEVER_USED: ThreadLocal<u32> = ThreadLocal::new();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        OURS.set(OnDrop::new(move || {
            let never = NEVER_USED.try_with(|_| ());
            let fresh = ThreadLocal::<u32>::new().try_with(|_| ());
            tx.send((never, fresh)).unwrap();
        }));
    })
    .join()
    .unwrap();
    let (never, fresh) = rx.recv().unwrap();
    assert_eq!(
        never,
        Err(AccessError::ThreadExiting),
        "a never-used static"
    );
    assert_eq!(
        fresh,
        Err(AccessError::ThreadExiting),
        "a key made during exit"
    );
}

/// A std `thread_local!` destructor that runs after our map was destroyed
/// (registered by a drop during our teardown, so it runs after it).
#[test]
fn access_from_std_tls_destructor_after_map_destroyed() {
    type Report = (Option<u32>, Option<AccessError>);
    struct Probe(Option<(Drops, Sender<Report>)>);
    impl Drop for Probe {
        fn drop(&mut self) {
            let Some((drops, tx)) = self.0.take() else {
                return;
            };
            OTHER.set(drops.counted(2)); // dropped at once
            let seen = OTHER.with(|v| v.map(|v| v.value));
            let err = INIT.try_set(5).err().map(|e| e.kind);
            let removed = OTHER.remove();
            assert!(removed.is_none());
            tx.send((seen, err)).unwrap();
        }
    }
    thread_local! {
        static PROBE: RefCell<Probe> = const { RefCell::new(Probe(None)) };
    }
    let drops = Drops::new();
    let (tx, rx) = mpsc::channel();
    let d = drops.clone();
    thread::spawn(move || {
        OTHER.set(d.counted(1));
        OURS.set(OnDrop::new(move || {
            // First touch of PROBE, during our teardown: its destructor is
            // registered now and runs after ours finished.
            PROBE.with_borrow_mut(|p| p.0 = Some((d, tx)));
        }));
    })
    .join()
    .unwrap();
    let (seen, err) = rx.recv().unwrap();
    assert_eq!(seen, None);
    assert_eq!(err, Some(AccessError::ThreadExiting));
    assert_eq!(drops.get(), 2);
}

/// A thread whose first use of tl-core is from a std `thread_local!`
/// destructor: the value is dropped exactly once, and the thread does not
/// stay registered.
#[test]
fn first_use_from_std_tls_destructor() {
    struct FirstUse(Option<Drops>);
    impl Drop for FirstUse {
        fn drop(&mut self) {
            if let Some(drops) = self.0.take() {
                OTHER.set(drops.counted(1));
                let _ = OTHER.is_set();
            }
        }
    }
    thread_local! {
        static FIRST: RefCell<FirstUse> = const { RefCell::new(FirstUse(None)) };
    }
    let drops = Drops::new();
    let d = drops.clone();
    let handle = thread::spawn(move || {
        FIRST.with_borrow_mut(|f| f.0 = Some(d));
    });
    let id = handle.thread().id();
    handle.join().unwrap();
    assert_eq!(drops.get(), 1);
    assert!(
        find_thread(id).is_none(),
        "an exited thread is unregistered"
    );
}

/// A handle kept in a std `thread_local!` is dropped during thread exit
/// (before or after our teardown): every thread's value is dropped once.
#[test]
fn handle_dropped_during_thread_exit() {
    thread_local! {
        static OWNED: RefCell<Option<Arc<ThreadLocal<Counted>>>> = const { RefCell::new(None) };
    }
    let drops = Drops::new();
    let holder = Worker::spawn();
    let d = drops.clone();
    let tl = Arc::new(ThreadLocal::new());
    {
        let (tl, d) = (tl.clone(), d.clone());
        holder.run(move || drop(tl.set(d.counted(1))));
    }
    thread::spawn(move || {
        tl.set(d.counted(2));
        OWNED.with_borrow_mut(|o| *o = Some(tl));
    })
    .join()
    .unwrap();
    assert_eq!(drops.get(), 1, "the exiting thread's own value");
    holder.run(|| OTHER.is_set());
    holder.run(|| drop(OTHER.set(Drops::new().counted(0))));
    assert_eq!(drops.get(), 2, "the holder's, at its next access");
}

/// During thread exit, a value's `Drop` kills another key that also has a
/// value on the exiting thread.
#[test]
fn drop_during_exit_kills_another_key() {
    let drops = Drops::new();
    let d = drops.clone();
    let killer = thread::spawn(move || {
        let victim = ThreadLocal::new();
        victim.set(d.counted(1));
        let killer = ThreadLocal::new();
        killer.set(OnDrop::new(move || drop(victim)));
        killer // outlives the thread
    })
    .join()
    .unwrap();
    assert_eq!(drops.get(), 1);
    drop(killer);
}

/// A thread that panics with values bound drops them as it unwinds out.
#[test]
fn thread_panics_with_values() {
    let drops = Drops::new();
    let d = drops.clone();
    let (tx, rx) = mpsc::channel();
    let result = thread::spawn(move || {
        OTHER.set(d.counted(1));
        let _scope = OTHER.scope(d.counted(2));
        let local = Arc::new(ThreadLocal::new());
        local.set(d.counted(3));
        tx.send(local.clone()).unwrap(); // outlives the thread
        panic!("thread body panics (deliberate test panic)");
    })
    .join();
    assert!(result.is_err());
    assert_eq!(drops.get(), 3);
    drop(rx.recv().unwrap());
}

/// A value that panics when dropped during thread exit: no abort, the other
/// values are still dropped, and `stats().drop_panics` counts it.
#[test]
fn panic_in_drop_during_exit() {
    let _serial = serial(&DROP_PANICS);
    let before = drop_panics();
    let drops = Drops::new();
    let panicked = Drops::new();
    let (d, p) = (drops.clone(), panicked.clone());
    let handles = thread::spawn(move || {
        static PANICKY: ThreadLocal<PanicOnDrop> = ThreadLocal::new();
        OTHER.set(d.counted(1));
        PANICKY.set(PanicOnDrop(p.clone()));
        let more = ThreadLocal::new();
        more.set(d.counted(2));
        let second = ThreadLocal::new();
        second.set(PanicOnDrop(p));
        (more, second) // outlive the thread
    })
    .join()
    .expect("the thread exits cleanly");
    assert_eq!(panicked.get(), 2);
    assert_eq!(drops.get(), 2, "the other values were still dropped");
    assert_eq!(drop_panics() - before, 2);
    drop(handles);
}

/// A dead key's value that panics when the holder reclaims it: the panic
/// does not surface in the unrelated access that triggered the sweep.
#[test]
fn panic_in_drop_during_sweep() {
    let _serial = serial(&DROP_PANICS);
    let before = drop_panics();
    let panicked = Drops::new();
    let holder = Worker::spawn();
    let tl = Arc::new(ThreadLocal::new());
    {
        let (tl, p) = (tl.clone(), panicked.clone());
        holder.run(move || drop(tl.set(PanicOnDrop(p))));
    }
    drop(tl);
    let seen = holder.run(|| {
        OTHER.set(Drops::new().counted(7));
        OTHER.with(|v| v.map(|v| v.value))
    });
    assert_eq!(seen, Some(7));
    assert_eq!(panicked.get(), 1);
    assert_eq!(drop_panics() - before, 1);
}

/// Dropping a key whose value panics on the owning thread: caught and
/// counted, like every drop tl-core runs itself.
#[test]
fn panic_in_drop_on_key_death() {
    let _serial = serial(&DROP_PANICS);
    let before = drop_panics();
    let panicked = Drops::new();
    let tl = ThreadLocal::new();
    tl.set(PanicOnDrop(panicked.clone()));
    drop(tl);
    assert_eq!(panicked.get(), 1);
    assert_eq!(drop_panics() - before, 1);
}

/// A value that panics when a scope or guard drops it during an unwind: no
/// double-panic abort; the outer value is still restored.
#[test]
fn panic_in_drop_during_unwind() {
    let _serial = serial(&DROP_PANICS);
    static SLOT: ThreadLocal<Option<PanicOnDrop>> = ThreadLocal::new();
    let panicked = Drops::new();
    let p = panicked.clone();
    let restored = thread::spawn(move || {
        SLOT.set(None);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = SLOT.guard();
            SLOT.set(Some(PanicOnDrop(p.clone())));
            let _scope = SLOT.scope(Some(PanicOnDrop(p)));
            panic!("unwinding through a scope and a guard (deliberate test panic)");
        }));
        assert!(result.is_err());
        SLOT.with(|v| v.map(Option::is_none))
    })
    .join()
    .expect("no abort, no escaped panic");
    assert_eq!(restored, Some(true));
    assert_eq!(panicked.get(), 2);
}
