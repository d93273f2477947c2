//! Inheritable thread-locals: copied to threads spawned with
//! `tl_core::thread` and through `inherit::capture`/`install`; `child_value`
//! applied; non-inheritable, removed and dead keys not copied (the JDK's
//! `ITLRemoveTest` among them).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Drops, on_new_thread, scaled};
use tl_core::{ThreadLocal, inherit, thread as tl_thread};

static TENANT: ThreadLocal<String> = ThreadLocal::new().named("inherit::tenant").inheritable();
static DEPTH: ThreadLocal<u32> = ThreadLocal::new().inheritable_with(|parent| parent + 1);
static PRIVATE: ThreadLocal<String> = ThreadLocal::new();

fn all() -> (Option<String>, Option<u32>, Option<String>) {
    (TENANT.get(), DEPTH.get(), PRIVATE.get())
}

#[test]
fn spawn_copies_inheritable_values() {
    on_new_thread(|| {
        TENANT.set("acme".to_owned());
        DEPTH.set(0);
        PRIVATE.set("mine".to_owned());
        let child = tl_thread::spawn(all).join().unwrap();
        assert_eq!(child, (Some("acme".to_owned()), Some(1), None));
        // The parent keeps its own values.
        assert_eq!(
            all(),
            (Some("acme".to_owned()), Some(0), Some("mine".to_owned()))
        );
        // A plain std thread inherits nothing.
        assert_eq!(std::thread::spawn(all).join().unwrap(), (None, None, None));
    });
}

#[test]
fn grandchildren_and_independence() {
    on_new_thread(|| {
        TENANT.set("acme".to_owned());
        DEPTH.set(0);
        let grandchild = tl_thread::spawn(|| {
            TENANT.set("changed in child".to_owned());
            tl_thread::spawn(all).join().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(grandchild.0.as_deref(), Some("changed in child"));
        assert_eq!(grandchild.1, Some(2), "child_value applied at each spawn");
        assert_eq!(
            TENANT.get().as_deref(),
            Some("acme"),
            "the parent is unaffected"
        );
    });
}

#[test]
fn builder_spawn_and_scoped() {
    on_new_thread(|| {
        TENANT.set("named".to_owned());
        let handle = tl_thread::Builder::new()
            .name("inherit-child".to_owned())
            .stack_size(256 * 1024)
            .spawn(|| {
                (
                    std::thread::current().name().map(str::to_owned),
                    TENANT.get(),
                )
            })
            .unwrap();
        let (name, tenant) = handle.join().unwrap();
        assert_eq!(name.as_deref(), Some("inherit-child"));
        assert_eq!(tenant.as_deref(), Some("named"));

        let borrowed = String::from("borrowed");
        std::thread::scope(|s| {
            let h = tl_thread::Builder::default()
                .spawn_scoped(s, || (TENANT.get(), borrowed.len()))
                .unwrap();
            assert_eq!(h.join().unwrap(), (Some("named".to_owned()), 8));
        });
    });
}

#[test]
fn capture_and_install() {
    on_new_thread(|| {
        TENANT.set("acme".to_owned());
        DEPTH.set(5);
        PRIVATE.set("x".to_owned());
        let inherited = inherit::capture();
        assert_eq!(inherited.len(), 2);
        assert!(!inherited.is_empty());
        assert!(format!("{inherited:?}").contains('2'));
        // Changes after the capture are not seen: the child value was
        // computed at capture time.
        DEPTH.set(50);
        let child = std::thread::spawn(move || {
            assert_eq!(all(), (None, None, None));
            inherited.install();
            all()
        })
        .join()
        .unwrap();
        assert_eq!(child, (Some("acme".to_owned()), Some(6), None));
        // Nothing to capture on a thread without inheritable values.
        assert!(on_new_thread(inherit::capture).is_empty());
    });
}

/// JDK `ITLRemoveTest`: a value removed in the parent before the child is
/// created is not inherited (the child sees the initial state).
#[test]
fn itl_remove_test() {
    let threads = scaled(20, 3);
    on_new_thread(move || {
        for i in 0..threads {
            TENANT.set(format!("t{i}"));
            let removed = i % 2 == 0;
            if removed {
                TENANT.remove();
            }
            let child = tl_thread::spawn(|| TENANT.get()).join().unwrap();
            let expected = (!removed).then(|| format!("t{i}"));
            assert_eq!(child, expected, "thread {i}");
        }
    });
}

/// `child_value` runs on the parent, once per child, at spawn time.
#[test]
fn child_value_runs_on_parent() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static PARENT: std::sync::Mutex<Option<std::thread::ThreadId>> = std::sync::Mutex::new(None);
    static COUNTED: ThreadLocal<u32> = ThreadLocal::new().inheritable_with(|v| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        assert_eq!(Some(std::thread::current().id()), *PARENT.lock().unwrap());
        *v * 10
    });
    on_new_thread(|| {
        *PARENT.lock().unwrap() = Some(std::thread::current().id());
        COUNTED.set(3);
        let handles: Vec<_> = (0..3).map(|_| tl_thread::spawn(|| COUNTED.get())).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), Some(30));
        }
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    });
}

/// A key that dies between capture and install is skipped, and its copy
/// dropped once.
#[test]
fn dead_key_not_installed() {
    let drops = Drops::new();
    let d = drops.clone();
    on_new_thread(move || {
        let key = Arc::new(
            ThreadLocal::new().inheritable_with(|c: &common::Counted| c.sibling(c.value + 1)),
        );
        key.set(d.counted(1));
        let inherited = inherit::capture();
        let probe = Arc::downgrade(&key);
        drop(key); // parent's value dropped
        assert_eq!(d.get(), 1);
        std::thread::spawn(move || {
            inherited.install();
            assert!(probe.upgrade().is_none());
        })
        .join()
        .unwrap();
        assert_eq!(d.get(), 2, "the uninstalled copy");
    });
    assert_eq!(drops.get(), 2);
}

/// Inheritable non-`Clone` values through `inheritable_with`, and values
/// a `child_value` may build from scratch.
#[test]
fn inheritable_with_non_clone() {
    struct Conn {
        id: u32,
    }
    static CONN: ThreadLocal<Conn> = ThreadLocal::new().inheritable_with(|parent| Conn {
        id: parent.id + 100,
    });
    on_new_thread(|| {
        CONN.set(Conn { id: 1 });
        let child = tl_thread::spawn(|| CONN.with(|c| c.map(|c| c.id)))
            .join()
            .unwrap();
        assert_eq!(child, Some(101));
    });
}

/// A mutably borrowed value cannot be read for a child: it is skipped
/// rather than aliased.
#[test]
fn capture_during_with_mut_skips_value() {
    on_new_thread(|| {
        TENANT.set("busy".to_owned());
        DEPTH.set(1);
        let inherited = TENANT.with_mut(|_| inherit::capture());
        assert_eq!(inherited.len(), 1, "only DEPTH");
        let shared = TENANT.with(|_| inherit::capture());
        assert_eq!(shared.len(), 2, "a shared borrow can be read");
    });
}

/// A key that dies while a child is installing its inherited copy (here:
/// while the child runs the key's heap size hook, just before the bind) must
/// not leave a dead key's value stranded on the child: the docs promise
/// that other threads drop dead keys' values at their next access.
#[test]
fn install_racing_key_death() {
    use std::sync::atomic::AtomicU8;
    // 0: idle, 1: the child is in the hook, 2: the key is dead, go on.
    static GATE: AtomicU8 = AtomicU8::new(0);
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    fn gated_size(_: &common::Counted) -> usize {
        if ARMED.swap(false, Ordering::SeqCst) {
            GATE.store(1, Ordering::SeqCst);
            while GATE.load(Ordering::SeqCst) != 2 {
                std::thread::yield_now();
            }
        }
        0
    }
    static OTHER: ThreadLocal<u8> = ThreadLocal::new();

    let drops = Drops::new();
    let key = ThreadLocal::new()
        .inheritable_with(|c: &common::Counted| c.sibling(c.value + 1))
        .heap_size(gated_size);
    key.set(drops.counted(1));
    let inherited = inherit::capture();
    ARMED.store(true, Ordering::SeqCst);
    let child = common::Worker::spawn();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            child.run(move || {
                inherited.install();
                tx.send(()).unwrap();
            });
        });
        while GATE.load(Ordering::SeqCst) != 1 {
            std::thread::yield_now();
        }
        drop(key); // dies while the child is between its check and its bind
        assert_eq!(drops.get(), 1, "the parent's value");
        GATE.store(2, Ordering::SeqCst);
    });
    rx.recv().unwrap();
    child.run(|| OTHER.set(1)); // the child's next access
    assert_eq!(
        drops.get(),
        2,
        "the child's copy, dropped at its next access"
    );
}
