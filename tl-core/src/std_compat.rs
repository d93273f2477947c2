//! [`thread_local!`](crate::thread_local!) with std's syntax, and
//! [`LocalKey`], its keys with std's methods: adopting tl in a codebase
//! written against `std::thread_local!` starts with one `use` line.
//!
//! # Design
//! A [`LocalKey<T>`] is a [`ThreadLocal<T>`] with an initializer (the
//! declaration's expression, run lazily once per thread, like std's), named
//! after its static and, by default, [per-thread](crate::Policy::PerThread): the
//! auditor counts, sizes and lists its values in summaries and never reports
//! them as unreleased, since a std thread-local is meant to live as long as
//! its thread. `#[task_scoped]` in the declaration makes it
//! [task-scoped](crate::Policy::TaskScoped) instead. It derefs to its
//! [`ThreadLocal`], so `remove`, `scope`, `guard` and
//! `#[thread_local_scoped(KEY)]` work on it too.
//!
//! How its behaviour differs from std's is in [`LocalKey`]'s docs (this
//! module is private).
//!
//! # Reentrancy
//! `with` closures nest (shared borrows), and an initializer may use other
//! thread-locals, as with std. `Cell`/`RefCell` methods borrow the value
//! only for the call, as std's do.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::ops::Deref;

use crate::error::{AccessError, SetError};
use crate::local::ThreadLocal;
use crate::ops;

/// What std panics with when a key is used during or after its destruction.
const DESTROYED: &str = "cannot access a Thread Local Storage value during or after destruction";

/// A key declared by [`thread_local!`](crate::thread_local!): std's
/// [`LocalKey`](std::thread::LocalKey) methods over a [`ThreadLocal`].
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use tl_core::thread_local;
///
/// thread_local! {
///     static COUNTER: Cell<u32> = const { Cell::new(0) };
///     static NAMES: RefCell<Vec<String>> = RefCell::new(Vec::new());
/// }
///
/// COUNTER.set(COUNTER.get() + 1);
/// assert_eq!(COUNTER.replace(10), 1);
/// NAMES.with_borrow_mut(|names| names.push("alice".to_owned()));
/// assert_eq!(NAMES.with_borrow(|names| names.len()), 1);
/// assert_eq!(NAMES.take(), ["alice"]);
///
/// // Named after the static, per-thread by default.
/// assert_eq!(COUNTER.info().name, Some("COUNTER"));
/// assert_eq!(COUNTER.info().policy, tl_core::Policy::PerThread);
/// ```
///
/// It derefs to its [`ThreadLocal`], whose methods unbind the value
/// (`remove`), bind one for a block (`scope`, `guard`), or inspect it
/// (`is_set`, `info`); `#[thread_local_scoped(KEY)]` works on it too.
///
/// # Differences from std
/// - The value lives in tl-core's per-thread map rather than in a native TLS
///   slot: a few more instructions per access, and each access may first
///   drop this thread's values of dead keys.
/// - A `const { .. }` initializer is checked at compile time, as std does,
///   but the value is still bound on first access (std skips the lazy
///   state check).
/// - Thread exit: tl-core unlinks every value of the exiting thread at once,
///   then drops them. From that point on (inside any value's `Drop`, or a
///   std thread-local's destructor that runs later), *every* key declared
///   with tl-core is gone: `try_with` returns [`AccessError::ThreadExiting`] and
///   `with` panics, as std does for a key whose destructor is running or
///   has run. std instead destroys keys one by one, in an unspecified order,
///   so there a destructor may still reach a key not yet destroyed (or
///   lazily create one). Code that needs a thread-local during thread exit
///   must use `try_with` with either.
/// - `try_with` also fails with [`AccessError::Borrowed`] if the value is
///   mutably borrowed by [`ThreadLocal::with_mut`] (reachable only through
///   the `Deref`, never through std's methods).
/// - The declaration site in reports is the `thread_local!` invocation
///   (shared by all keys of one invocation; their names tell them apart).
pub struct LocalKey<T: 'static> {
    inner: ThreadLocal<T>,
}

// === impl LocalKey: construction ===

impl<T: 'static> LocalKey<T> {
    /// Wraps a thread-local that has an initializer: what the macro expands to.
    pub(crate) const fn from_thread_local(inner: ThreadLocal<T>) -> Self {
        Self { inner }
    }

    /// The underlying [`ThreadLocal`] (also reachable through `Deref`).
    pub const fn thread_local(&'static self) -> &'static ThreadLocal<T> {
        &self.inner
    }
}

impl<T: 'static> Deref for LocalKey<T> {
    type Target = ThreadLocal<T>;

    fn deref(&self) -> &ThreadLocal<T> {
        &self.inner
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LocalKey").field(&self.inner).finish()
    }
}

// === impl LocalKey: std's methods ===

impl<T: 'static> LocalKey<T> {
    /// Runs `f` with a reference to this thread's value, initializing it
    /// first if this thread has none (std's `LocalKey::with`).
    ///
    /// # Panics
    /// If this thread's thread-locals were destroyed (a destructor running
    /// during thread exit: see [`try_with`](Self::try_with)), if the
    /// initializer panics, or if the value is mutably borrowed through
    /// [`ThreadLocal::with_mut`].
    #[track_caller]
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(result) => result,
            Err(AccessError::ThreadExiting) => {
                panic!("{DESTROYED}: {}", AccessError::ThreadExiting)
            }
            Err(AccessError::Borrowed) => ops::borrowed_panic(),
        }
    }

    /// Like [`with`](Self::with), but returns [`AccessError::ThreadExiting`]
    /// instead of panicking when this thread's thread-locals were destroyed
    /// (std's `LocalKey::try_with` and its `AccessError`).
    ///
    /// # Errors
    /// [`AccessError::ThreadExiting`] during thread exit, once this thread's
    /// values are being dropped (see [how this differs from std](LocalKey#differences-from-std)); [`AccessError::Borrowed`] if the value is mutably
    /// borrowed through [`ThreadLocal::with_mut`].
    ///
    /// # Panics
    /// If the initializer panics.
    #[track_caller]
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        // With an initializer, `None` means the value could not be bound:
        // the map is destroyed (or the initializer unbound it again).
        self.inner
            .try_with(|value| value.map(f))?
            .ok_or(AccessError::ThreadExiting)
    }

    /// Binds `value` directly if this thread has none, without running the
    /// initializer (as std's `Cell`/`RefCell` `set` do); otherwise runs `f`
    /// on the bound value and `value`.
    #[track_caller]
    fn initialize_with(&'static self, value: T, f: impl FnOnce(&T, T)) {
        if self.inner.is_set() {
            let mut value = Some(value);
            return self.with(|bound| f(bound, value.take().expect("taken once")));
        }
        match self.inner.try_set(value) {
            Ok(_) => {}
            Err(SetError { kind, .. }) => match kind {
                AccessError::ThreadExiting => panic!("{DESTROYED}: {kind}"),
                AccessError::Borrowed => ops::borrowed_panic(),
            },
        }
    }
}

/// std's methods for keys holding a [`Cell`].
impl<T: 'static> LocalKey<Cell<T>> {
    /// Sets the value, initializing the key with it (without running the
    /// initializer) if this thread has none.
    ///
    /// # Panics
    /// As [`with`](Self::with).
    #[track_caller]
    pub fn set(&'static self, value: T) {
        self.initialize_with(Cell::new(value), |cell, value| cell.set(value.into_inner()));
    }

    /// A copy of the value.
    ///
    /// # Panics
    /// As [`with`](Self::with).
    #[track_caller]
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the value, leaving `T::default()` in the cell (the key stays
    /// bound, as with std: use [`ThreadLocal::remove`] to unbind it).
    ///
    /// # Panics
    /// As [`with`](Self::with).
    #[track_caller]
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the value, returning the old one.
    ///
    /// # Panics
    /// As [`with`](Self::with).
    #[track_caller]
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

/// std's methods for keys holding a [`RefCell`].
impl<T: 'static> LocalKey<RefCell<T>> {
    /// Runs `f` with a shared borrow of the value.
    ///
    /// # Panics
    /// As [`with`](Self::with), and if the value is mutably borrowed.
    #[track_caller]
    pub fn with_borrow<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Runs `f` with a mutable borrow of the value.
    ///
    /// # Panics
    /// As [`with`](Self::with), and if the value is borrowed.
    #[track_caller]
    pub fn with_borrow_mut<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&mut T) -> R,
    {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Sets the value, initializing the key with it (without running the
    /// initializer) if this thread has none.
    ///
    /// # Panics
    /// As [`with`](Self::with), and if the value is borrowed.
    #[track_caller]
    pub fn set(&'static self, value: T) {
        self.initialize_with(RefCell::new(value), |cell, value| {
            *cell.borrow_mut() = value.into_inner();
        });
    }

    /// Takes the value, leaving `T::default()` (the key stays bound, as with
    /// std: use [`ThreadLocal::remove`] to unbind it).
    ///
    /// # Panics
    /// As [`with`](Self::with), and if the value is borrowed.
    #[track_caller]
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the value, returning the old one.
    ///
    /// # Panics
    /// As [`with`](Self::with), and if the value is borrowed.
    #[track_caller]
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

/// Declares thread-locals with std's [`thread_local!`](std::thread_local)
/// syntax, as [`LocalKey`]s backed by tl-core, so that the auditor sees them.
///
/// Every form std accepts: `static NAME: T = init;` (run lazily, once per
/// thread), `static NAME: T = const { init };`, several declarations in one
/// invocation (the last `;` optional), attributes and doc comments, and any
/// visibility. Each key is named after its static and is
/// [per-thread](crate::Policy::PerThread) (counted, sized and listed in summaries,
/// never reported as unreleased), unless marked `#[task_scoped]`: then its
/// value must be removed before each task ends (with `KEY.remove()`, a
/// `KEY.scope(..)`/`KEY.guard()`, or `#[thread_local_scoped(KEY)]`), or the
/// auditor reports it.
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use tl_core::thread_local; // was: std's prelude `thread_local!`
///
/// thread_local! {
///     /// Requests served by this thread.
///     pub static SERVED: Cell<u64> = const { Cell::new(0) };
///     #[allow(dead_code)]
///     pub(crate) static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64));
///     // Bound per request: the auditor reports a value left at a task's end.
///     #[task_scoped]
///     static USER: RefCell<Option<String>> = RefCell::new(None)
/// }
///
/// SERVED.set(SERVED.get() + 1);
/// USER.set(Some("alice".to_owned()));
/// assert_eq!(USER.with_borrow(|user| user.clone()).as_deref(), Some("alice"));
/// USER.remove(); // through `Deref` to the `ThreadLocal`: unbinds the value
/// assert!(!USER.is_set());
/// assert_eq!(USER.info().policy, tl_core::Policy::TaskScoped);
/// ```
#[macro_export]
macro_rules! thread_local {
    () => {};

    // Attributes one at a time, so that `#[task_scoped]` can sit among them.
    (@attrs [$($attrs:tt)*] [$policy:ident] #[task_scoped] $($rest:tt)*) => {
        $crate::thread_local!(@attrs [$($attrs)*] [task_scoped] $($rest)*);
    };
    (@attrs [$($attrs:tt)*] [$policy:ident] #[$attr:meta] $($rest:tt)*) => {
        $crate::thread_local!(@attrs [$($attrs)* #[$attr]] [$policy] $($rest)*);
    };

    // One declaration, then the rest.
    (@attrs [$($attrs:tt)*] [$policy:ident]
        $vis:vis static $name:ident : $t:ty = const $init:block $(; $($rest:tt)*)?) => {
        $($attrs)*
        $vis static $name: $crate::__private::LocalKey<$t> = $crate::__private::local_key(
            $crate::thread_local!(@policy $policy,
                // An inline `const` block: evaluated at compile time, as
                // std's is, and (unlike a named `const` item) unable to
                // shadow a constant that the initializer uses.
                $crate::__private::ThreadLocal::with_initial(|| -> $t { const $init })
                .named(::core::stringify!($name))
            ),
        );
        $crate::thread_local!($($($rest)*)?);
    };
    (@attrs [$($attrs:tt)*] [$policy:ident]
        $vis:vis static $name:ident : $t:ty = $init:expr $(; $($rest:tt)*)?) => {
        $($attrs)*
        $vis static $name: $crate::__private::LocalKey<$t> = $crate::__private::local_key(
            $crate::thread_local!(@policy $policy,
                $crate::__private::ThreadLocal::with_initial(|| -> $t { $init })
                    .named(::core::stringify!($name))
            ),
        );
        $crate::thread_local!($($($rest)*)?);
    };

    (@policy per_thread, $local:expr) => { $local.per_thread() };
    (@policy task_scoped, $local:expr) => { $local };

    ($($declarations:tt)+) => {
        $crate::thread_local!(@attrs [] [per_thread] $($declarations)+);
    };
}
