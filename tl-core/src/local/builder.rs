//! `ThreadLocal`'s `const` constructors and builder methods: what a handle
//! records about its key before the key exists.

use core::fmt;
use core::marker::PhantomData;
use core::panic::Location;

use super::{Init, ThreadLocal};
use crate::inherit;
use crate::key::Policy;
use crate::keybox::{Hooks, InheritHooks, KeySpec};
use crate::lazykey::LazyKey;
use crate::sync::const_unless_loom;

impl<T: 'static> ThreadLocal<T> {
    const_unless_loom! {
        fn from_parts(declared_at: &'static Location<'static>, init: Init<T>) -> Self {
            Self {
                key: LazyKey::new(),
                spec: KeySpec {
                    name: None,
                    declared_at,
                    policy: Policy::TaskScoped,
                    hooks: Hooks::NONE,
                },
                init,
                _marker: PhantomData,
            }
        }
    }

    const_unless_loom! {
        /// A thread-local with no initial value: [`get`](Self::get) returns `None`
        /// until the thread binds one. Records the caller as the declaration site.
        #[track_caller]
        #[must_use]
        pub fn new() -> Self {
            Self::from_parts(Location::caller(), Init::None)
        }
    }

    const_unless_loom! {
        /// A thread-local whose first read on each thread (and the first read
        /// after each `remove`) binds `init()`: Java's `ThreadLocal.withInitial`.
        ///
        /// ```
        /// use tl_core::ThreadLocal;
        ///
        /// static DEPTH: ThreadLocal<u32> = ThreadLocal::with_initial(|| 0);
        ///
        /// assert_eq!(DEPTH.get(), Some(0));
        /// DEPTH.set(3);
        /// assert_eq!(DEPTH.get(), Some(3));
        /// DEPTH.remove();
        /// assert_eq!(DEPTH.get(), Some(0));
        /// ```
        #[track_caller]
        #[must_use]
        pub fn with_initial(init: fn() -> T) -> Self {
            Self::from_parts(Location::caller(), Init::Fn(init))
        }
    }

    /// Like [`with_initial`](Self::with_initial), for an initializer that
    /// captures state (not usable in a `static`).
    #[track_caller]
    #[must_use]
    pub fn with_initial_fn(init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self::from_parts(Location::caller(), Init::Boxed(Box::new(init)))
    }

    /// Names the thread-local in reports (otherwise it is shown by type and
    /// declaration site).
    #[must_use]
    pub const fn named(mut self, name: &'static str) -> Self {
        self.spec.name = Some(name);
        self
    }

    /// Declares a deliberate per-thread cache ([`Policy::PerThread`]): its
    /// values live as long as their thread and are never reported as unreleased.
    #[must_use]
    pub const fn per_thread(self) -> Self {
        self.policy(Policy::PerThread)
    }

    /// Sets the lifetime policy (the default is [`Policy::TaskScoped`]).
    #[must_use]
    pub const fn policy(mut self, policy: Policy) -> Self {
        self.spec.policy = policy;
        self
    }

    /// Reports `size_of::<T>() + heap_size(value)` as a value's retained
    /// bytes, instead of `size_of::<T>()` alone. Computed on the owning thread
    /// at each bind and after each `with_mut`.
    ///
    /// ```
    /// use tl_core::ThreadLocal;
    ///
    /// static BUFFER: ThreadLocal<Vec<u8>> = ThreadLocal::new().heap_size(|buf| buf.capacity());
    /// ```
    #[must_use]
    pub const fn heap_size(mut self, heap_size: fn(&T) -> usize) -> Self {
        self.spec.hooks.heap_size = Some(heap_size);
        self
    }

    /// Lets reports made on the owning thread (values left behind when a task
    /// ends) show the value with its `Debug` form. Off by default, because
    /// thread-locals hold user ids, tokens and connections.
    #[must_use]
    pub const fn reveal_in_reports(mut self) -> Self
    where
        T: fmt::Debug,
    {
        self.spec.hooks.reveal = Some(<T as fmt::Debug>::fmt);
        self
    }

    /// Makes values inheritable, like Java's `InheritableThreadLocal`: a
    /// thread spawned with [`crate::thread::spawn`] (or any closure run after
    /// [`crate::inherit::Inheritance::install`]) starts with a clone of the
    /// parent's value.
    #[must_use]
    pub const fn inheritable(self) -> Self
    where
        T: Clone + Send,
    {
        self.inheritable_with(T::clone)
    }

    /// Like [`inheritable`](Self::inheritable), with the child's value computed
    /// by `child_value` from the parent's (Java's `childValue`).
    #[must_use]
    pub const fn inheritable_with(mut self, child_value: fn(&T) -> T) -> Self
    where
        T: Send,
    {
        self.spec.hooks.inherit = Some(InheritHooks {
            child_value,
            package: inherit::package::<T>,
        });
        self
    }
}

impl<T: 'static> Default for ThreadLocal<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}
