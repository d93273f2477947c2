//! `tl_core::thread_local!` behaves like `std::thread_local!`: one list of
//! behaviours, instantiated once with each macro (the only difference
//! between the two modules is the `use` line, as in a migration), then the
//! tl-only parts: names, policies, the `Deref` to `ThreadLocal`, and what
//! the registry sees.
//!
//! One known difference is not on the shared list: during thread exit, a
//! destructor can still reach a std key that was not destroyed yet, while
//! every tl-core key is gone at once (`try_with` returns an error). It is
//! tested below, under `tl_only`, and documented in `tl_core::LocalKey`'s
//! module.

/// The shared list. `$use` brings `thread_local!` into scope.
macro_rules! local_key_behaviour {
    ($($use:item)*) => {
        $($use)*

        use std::cell::{Cell, RefCell};
        use std::panic::{AssertUnwindSafe, catch_unwind};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        use std::thread;

        #[test]
        fn initial_value() {
            thread_local! { static ANSWER: u32 = 6 * 7; }
            ANSWER.with(|v| assert_eq!(*v, 42));
            assert_eq!(ANSWER.try_with(|v| *v + 1), Ok(43));
        }

        #[test]
        fn const_initial_value() {
            thread_local! { static ANSWER: u32 = const { 6 * 7 } }
            ANSWER.with(|v| assert_eq!(*v, 42));
        }

        #[test]
        fn const_initializer_uses_outer_constants() {
            const INIT: u32 = 5;
            thread_local! { static A: Cell<u32> = const { Cell::new(INIT) }; }
            assert_eq!(A.get(), 5);
        }

        #[test]
        fn initializer_runs_lazily_once_per_thread() {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            thread_local! {
                static KEY: u32 = {
                    RUNS.fetch_add(1, SeqCst);
                    1
                };
            }
            let runs = || {
                thread::spawn(|| {
                    let before = RUNS.load(SeqCst);
                    KEY.with(|v| assert_eq!(*v, 1));
                    KEY.with(|v| assert_eq!(*v, 1));
                    (before, RUNS.load(SeqCst))
                })
                .join()
                .unwrap()
            };
            assert_eq!(runs(), (0, 1));
            assert_eq!(runs(), (1, 2));
        }

        #[test]
        fn threads_are_isolated() {
            thread_local! { static KEY: Cell<u32> = const { Cell::new(0) }; }
            KEY.set(5);
            let seen = thread::spawn(|| {
                let initial = KEY.get();
                KEY.set(9);
                (initial, KEY.get())
            })
            .join()
            .unwrap();
            assert_eq!(seen, (0, 9));
            assert_eq!(KEY.get(), 5);
        }

        #[test]
        fn cell_methods() {
            thread_local! { static KEY: Cell<u32> = Cell::new(1); }
            assert_eq!(KEY.get(), 1);
            KEY.set(2);
            assert_eq!(KEY.get(), 2);
            assert_eq!(KEY.replace(3), 2);
            assert_eq!(KEY.take(), 3);
            assert_eq!(KEY.get(), 0, "take leaves the default");
        }

        #[test]
        fn refcell_methods() {
            thread_local! { static KEY: RefCell<Vec<u32>> = RefCell::new(vec![1]); }
            assert_eq!(KEY.with_borrow(|v| v.clone()), [1]);
            KEY.with_borrow_mut(|v| v.push(2));
            assert_eq!(KEY.with_borrow(Vec::len), 2);
            KEY.set(vec![3]);
            assert_eq!(KEY.replace(vec![4, 5]), [3]);
            assert_eq!(KEY.take(), [4, 5]);
            assert_eq!(KEY.with_borrow(Vec::len), 0, "take leaves the default");
        }

        /// `set` binds its argument without running the initializer.
        #[test]
        fn set_does_not_run_the_initializer() {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            thread_local! {
                static CELL: Cell<u32> = { RUNS.fetch_add(1, SeqCst); Cell::new(1) };
                static REFCELL: RefCell<u32> = { RUNS.fetch_add(1, SeqCst); RefCell::new(1) };
            }
            thread::spawn(|| {
                CELL.set(7);
                REFCELL.set(8);
                assert_eq!((CELL.get(), REFCELL.take()), (7, 8));
            })
            .join()
            .unwrap();
            assert_eq!(RUNS.load(SeqCst), 0);
        }

        #[test]
        fn with_calls_nest() {
            thread_local! { static KEY: Cell<u32> = const { Cell::new(1) }; }
            let sum = KEY.with(|outer| KEY.with(|inner| outer.get() + inner.get()));
            assert_eq!(sum, 2);
        }

        #[test]
        fn initializer_may_use_other_thread_locals() {
            thread_local! {
                static BASE: Cell<u32> = const { Cell::new(10) };
                static DERIVED: u32 = BASE.get() * 2;
            }
            thread::spawn(|| {
                BASE.set(21);
                DERIVED.with(|v| assert_eq!(*v, 42));
            })
            .join()
            .unwrap();
        }

        #[test]
        fn panicking_initializer_runs_again_on_the_next_access() {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            thread_local! {
                static KEY: u32 = if RUNS.fetch_add(1, SeqCst) == 0 { panic!("first run") } else { 2 };
            }
            thread::spawn(|| {
                assert!(catch_unwind(|| KEY.with(|v| *v)).is_err());
                assert_eq!(KEY.with(|v| *v), 2);
            })
            .join()
            .unwrap();
            assert_eq!(RUNS.load(SeqCst), 2);
        }

        #[test]
        fn values_are_dropped_when_their_thread_exits() {
            static DROPS: AtomicUsize = AtomicUsize::new(0);
            struct Counted;
            impl Drop for Counted {
                fn drop(&mut self) {
                    DROPS.fetch_add(1, SeqCst);
                }
            }
            thread_local! { static KEY: Counted = const { Counted }; }
            thread::spawn(|| KEY.with(|_| ())).join().unwrap();
            thread::spawn(|| KEY.with(|_| ())).join().unwrap();
            // A thread that never touched the key has nothing to drop.
            thread::spawn(|| ()).join().unwrap();
            assert_eq!(DROPS.load(SeqCst), 2);
        }

        /// A value's destructor, run at thread exit, cannot reach its own
        /// key: `try_with` fails and `with` panics.
        #[test]
        fn access_from_own_destructor_during_thread_exit() {
            static TRY_WITH_FAILED: AtomicBool = AtomicBool::new(false);
            static WITH_PANICKED: AtomicBool = AtomicBool::new(false);
            struct Probe;
            impl Drop for Probe {
                fn drop(&mut self) {
                    TRY_WITH_FAILED.store(KEY.try_with(|_| ()).is_err(), SeqCst);
                    let with = catch_unwind(AssertUnwindSafe(|| KEY.with(|_| ())));
                    WITH_PANICKED.store(with.is_err(), SeqCst);
                }
            }
            thread_local! { static KEY: Probe = Probe; }
            thread::spawn(|| KEY.with(|_| ())).join().unwrap();
            assert!(TRY_WITH_FAILED.load(SeqCst), "try_with returned Ok");
            assert!(WITH_PANICKED.load(SeqCst), "with did not panic");
        }

        /// Several declarations, attributes, doc comments and visibility.
        mod declarations {
            // Not `use super::*`: a glob import of `thread_local` is
            // ambiguous with std's prelude macro (see MIGRATING.md).
            $($use)*
            use std::cell::RefCell;

            thread_local! {
                /// Documented.
                pub static PUBLIC: u8 = 1;
                #[allow(dead_code)]
                pub(crate) static CRATE: u8 = const { 2 };
                pub(super) static SUPER: u8 = 3;
                static PRIVATE: RefCell<String> = RefCell::new(String::from("4"))
            }

            #[test]
            fn all_are_declared() {
                let sum = PUBLIC.with(|a| CRATE.with(|b| SUPER.with(|c| a + b + c)));
                assert_eq!(sum, 6);
                assert_eq!(PRIVATE.with_borrow(|s| s.clone()), "4");
            }
        }
    };
}

mod std_thread_local {
    local_key_behaviour!(
        use std::thread_local;
    );
}

mod tl_thread_local {
    local_key_behaviour!(
        use tl_core::thread_local;
    );
}

/// What only tl-core's keys have.
mod tl_only {
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::thread;

    use tl_core::{AccessError, LocalKey, Policy, registry, thread_local};

    const INVOCATION_LINE: u32 = line!() + 1;
    thread_local! {
        static PER_THREAD: Cell<u32> = const { Cell::new(0) };
        /// Bound per task.
        #[allow(dead_code)]
        #[task_scoped]
        #[doc(alias = "scoped")]
        pub(crate) static SCOPED: RefCell<Option<String>> = RefCell::new(None);
    }

    #[test]
    fn keys_are_named_after_their_static_and_per_thread_by_default() {
        let info = PER_THREAD.info();
        assert_eq!(info.name, Some("PER_THREAD"));
        assert_eq!(info.policy, Policy::PerThread);
        assert_eq!(info.type_name, core::any::type_name::<Cell<u32>>());
        // The invocation's site: its file, and the line of `thread_local!`.
        assert!(
            info.declared_at.file().ends_with("std_compat.rs"),
            "{}",
            info.declared_at
        );
        assert_eq!(info.declared_at.line(), SCOPED.info().declared_at.line());
        assert_eq!(info.declared_at.line(), INVOCATION_LINE);
        let info = SCOPED.info();
        assert_eq!(info.name, Some("SCOPED"));
        assert_eq!(info.policy, Policy::TaskScoped);
    }

    /// `Deref` gives the `ThreadLocal`'s methods: `remove` unbinds, and the
    /// next access runs the initializer again.
    #[test]
    fn remove_unbinds_and_the_initializer_runs_again() {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static KEY: Cell<u32> = {
                RUNS.fetch_add(1, SeqCst);
                Cell::new(1)
            };
        }
        thread::spawn(|| {
            assert!(!KEY.is_set());
            KEY.set(5); // binds without the initializer
            assert_eq!(KEY.remove().map(Cell::into_inner), Some(5));
            assert_eq!(KEY.get(), 1);
            assert!(KEY.is_set());
            let key: &'static tl_core::ThreadLocal<Cell<u32>> = KEY.thread_local();
            key.remove();
            assert_eq!(KEY.get(), 1);
        })
        .join()
        .unwrap();
        assert_eq!(RUNS.load(SeqCst), 2);
    }

    #[test]
    fn scope_binds_a_task_scoped_value_for_a_block() {
        thread::spawn(|| {
            {
                let _user = SCOPED.scope(RefCell::new(Some("alice".to_owned())));
                assert_eq!(SCOPED.with_borrow(Option::clone).as_deref(), Some("alice"));
            }
            assert!(!SCOPED.is_set());
            assert_eq!(SCOPED.with_borrow(Option::clone), None, "the initial value");
        })
        .join()
        .unwrap();
    }

    /// `#[thread_local_scoped(KEY)]` guards a std-syntax key too (through
    /// the `Deref` to its `ThreadLocal`).
    #[cfg(feature = "macros")]
    #[tl_core::thread_local_scoped(SCOPED)]
    fn handler(user: &str) -> bool {
        SCOPED.set(Some(user.to_owned()));
        SCOPED.is_set()
    }

    #[cfg(feature = "macros")]
    #[test]
    fn thread_local_scoped_unbinds_a_std_syntax_key() {
        thread::spawn(|| {
            assert!(handler("carol"));
            assert!(!SCOPED.is_set(), "unbound when the handler returned");
        })
        .join()
        .unwrap();
    }

    /// The auditor's view: values of std-syntax keys are in the registry,
    /// with their names and policies.
    #[test]
    fn the_registry_sees_the_values() {
        thread::spawn(|| {
            PER_THREAD.set(3);
            SCOPED.set(Some("bob".to_owned()));
            let snapshot = registry::current().expect("registered").snapshot();
            let seen = |name| {
                snapshot
                    .bound()
                    .find(|e| e.key.name == Some(name))
                    .map(|e| (e.key.policy, e.bytes >= size_of::<u32>()))
            };
            assert_eq!(seen("PER_THREAD"), Some((Policy::PerThread, true)));
            assert_eq!(seen("SCOPED"), Some((Policy::TaskScoped, true)));
            SCOPED.remove();
        })
        .join()
        .unwrap();
    }

    /// The `const` form declares no named item, so no constant of the
    /// user's can be shadowed. (std's expansion declares
    /// `__RUST_STD_INTERNAL_INIT`: with std, this test does not compile.)
    #[test]
    fn const_initializer_never_shadows_a_constant() {
        #[allow(non_upper_case_globals)]
        const __RUST_STD_INTERNAL_INIT: u32 = 6;
        thread_local! { static B: Cell<u32> = const { Cell::new(__RUST_STD_INTERNAL_INIT) }; }
        assert_eq!(B.get(), 6);
    }

    /// Keys can be passed around as `&'static LocalKey<T>`, as std's are.
    #[test]
    fn keys_are_static_references() {
        fn bump(key: &'static LocalKey<Cell<u32>>) -> u32 {
            key.set(key.get() + 1);
            key.get()
        }
        thread::spawn(|| {
            assert_eq!(bump(&PER_THREAD), 1);
            assert_eq!(bump(&PER_THREAD), 2);
        })
        .join()
        .unwrap();
    }

    /// The documented difference from std: during thread exit, once tl-core
    /// drops this thread's values, no tl-core key can be reached, not even
    /// one that held no value (std would lazily create it).
    #[test]
    fn every_key_is_gone_once_thread_exit_drops_values() {
        static OTHER_FAILED: AtomicBool = AtomicBool::new(false);
        thread_local! {
            static UNTOUCHED: u32 = 1;
            static KEY: Probe = Probe;
        }
        struct Probe;
        impl Drop for Probe {
            fn drop(&mut self) {
                let other = UNTOUCHED.try_with(|v| *v);
                OTHER_FAILED.store(other == Err(AccessError::ThreadExiting), SeqCst);
            }
        }
        thread::spawn(|| KEY.with(|_| ())).join().unwrap();
        assert!(OTHER_FAILED.load(SeqCst));
    }
}
