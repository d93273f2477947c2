//! Regression tests for bugs found in review: entries freed while borrowed
//! by inheritance or a report, guard shield bookkeeping, a guard whose
//! lookup sweeps, and a panicking drop of a value `set` after thread exit.

mod common;

use std::sync::{Arc, Mutex};

use common::{Drops, on_new_thread};
use tl_core::{ThreadLocal, checkpoint, inherit};

/// `child_value` drops the key's last handle: the entry it borrows must stay
/// alive until it returns, and be reclaimed afterwards.
#[test]
fn key_killed_by_child_value() {
    static HANDLE: Mutex<Option<ThreadLocal<Box<u64>>>> = Mutex::new(None);
    #[allow(
        clippy::borrowed_box,
        reason = "`child_value` takes `&T`, and `T` is a box here"
    )]
    fn child(parent: &Box<u64>) -> Box<u64> {
        drop(HANDLE.lock().unwrap().take());
        Box::new(**parent + 1)
    }
    on_new_thread(|| {
        let key = ThreadLocal::new().inheritable_with(child);
        key.set(Box::new(41));
        *HANDLE.lock().unwrap() = Some(key);
        let inherited = inherit::capture();
        // The key is dead, so nothing is installed.
        std::thread::spawn(move || inherited.install())
            .join()
            .unwrap();
        // The dead key's value is gone at the next access on this thread.
        assert!(checkpoint::bound().is_empty());
        assert!(
            tl_core::registry::current()
                .unwrap()
                .snapshot()
                .bound()
                .next()
                .is_none()
        );
    });
}

/// A revealing `Debug` drops the key's last handle while the report borrows
/// the value.
#[test]
fn key_killed_by_reveal() {
    static HANDLE: Mutex<Option<ThreadLocal<Noisy>>> = Mutex::new(None);
    struct Noisy(u32);
    impl std::fmt::Debug for Noisy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            drop(HANDLE.lock().unwrap().take());
            write!(f, "Noisy({})", self.0)
        }
    }
    on_new_thread(|| {
        let key = ThreadLocal::new().reveal_in_reports();
        key.set(Noisy(7));
        *HANDLE.lock().unwrap() = Some(key);
        let found = checkpoint::bound();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].value.as_deref(), Some("Noisy(7)"));
        assert!(checkpoint::bound().is_empty(), "reclaimed once released");
    });
}

/// The last handle dies on another thread while `child_value` runs, and
/// `child_value` then touches an unrelated thread-local (which sweeps).
#[test]
fn key_killed_elsewhere_during_child_value() {
    static OTHER: ThreadLocal<u32> = ThreadLocal::new();
    static SIGNAL: Mutex<Option<std::sync::mpsc::SyncSender<()>>> = Mutex::new(None);
    static RESUME: Mutex<Option<std::sync::mpsc::Receiver<()>>> = Mutex::new(None);
    #[allow(
        clippy::ptr_arg,
        reason = "`child_value` takes `&T`, and `T` is `String` here"
    )]
    fn child(parent: &String) -> String {
        SIGNAL.lock().unwrap().take().unwrap().send(()).unwrap();
        RESUME.lock().unwrap().take().unwrap().recv().unwrap();
        OTHER.set(1); // sweeps: the key is dead by now
        OTHER.remove();
        parent.clone()
    }
    let (signal, signalled) = std::sync::mpsc::sync_channel(0);
    let (resume, resumed) = std::sync::mpsc::sync_channel(0);
    *SIGNAL.lock().unwrap() = Some(signal);
    *RESUME.lock().unwrap() = Some(resumed);
    let key = Arc::new(ThreadLocal::new().inheritable_with(child));
    let parent = {
        let key = Arc::clone(&key);
        std::thread::spawn(move || {
            key.set("parent".to_owned());
            let weak = Arc::downgrade(&key);
            drop(key);
            let inherited = inherit::capture();
            drop(inherited);
            assert!(weak.upgrade().is_none());
            assert!(checkpoint::bound().is_empty());
        })
    };
    signalled.recv().unwrap();
    drop(key); // the last handle
    resume.send(()).unwrap();
    parent.join().unwrap();
}

/// A guard that pushed no shield must not clear an enclosing guard's.
#[test]
fn unshielded_inner_guard_keeps_outer_shield() {
    static K: ThreadLocal<&'static str> = ThreadLocal::new();
    on_new_thread(|| {
        K.set("outer");
        {
            let _g1 = K.guard();
            {
                let _g2 = K.guard();
                assert_eq!(K.remove(), None, "sheltered by g1... or g2");
                {
                    let _g3 = K.guard(); // nothing bound: no shield
                }
            }
            assert_eq!(K.set("inner"), None, "the outer value is still sheltered");
        }
        assert_eq!(K.get(), Some("outer"));
        K.remove();
    });
}

/// A value bound by a `Drop` that the guard's own lookup runs (a sweep) was
/// bound before the guard: the guard leaves it.
#[test]
fn guard_lookup_sweep_binds_before_the_guard() {
    static K: ThreadLocal<u32> = ThreadLocal::new();
    on_new_thread(|| {
        let dying = Arc::new(ThreadLocal::new());
        dying.set(common::OnDrop::new(|| {
            K.set(7);
        }));
        // The last handle dies on another thread: this thread sweeps at its
        // next access, the guard's lookup.
        std::thread::spawn(move || drop(dying)).join().unwrap();
        {
            let _guard = K.guard();
            assert_eq!(K.get(), Some(7));
        }
        assert_eq!(
            K.get(),
            Some(7),
            "bound before the guard, so not the guard's to remove"
        );
        K.remove();
    });
}

/// A value `set` after the thread's thread-locals were destroyed is dropped
/// at once; a panic in its `Drop` is caught (a panic escaping a TLS
/// destructor would abort the process).
#[test]
fn panic_in_drop_of_value_set_after_exit() {
    static LATE: ThreadLocal<common::PanicOnDrop> = ThreadLocal::new();
    struct SetLate(Drops);
    impl Drop for SetLate {
        fn drop(&mut self) {
            LATE.set(common::PanicOnDrop(self.0.clone()));
        }
    }
    std::thread_local! {
        static STD: std::cell::RefCell<Option<SetLate>> = const { std::cell::RefCell::new(None) };
    }
    static TRIGGER: ThreadLocal<u8> = ThreadLocal::new();
    let before = tl_core::stats().drop_panics;
    let drops = Drops::default();
    let d = drops.clone();
    on_new_thread(move || {
        // Thread-local destructors run in reverse order of registration:
        // registering `STD` first makes tl-core's teardown run before it, so
        // its `Drop` sets `LATE` on a destroyed map.
        STD.with(|s| *s.borrow_mut() = Some(SetLate(d)));
        TRIGGER.set(1);
    });
    assert_eq!(drops.get(), 1, "the late value was dropped");
    assert!(
        tl_core::stats().drop_panics > before,
        "its panic was caught and counted"
    );
}
