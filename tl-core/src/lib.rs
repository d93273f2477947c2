//! Java-semantics thread-locals for Rust, with weak keys, eager reclaim of
//! dead keys' values, and a registry an auditor can inspect.
//!
//! # The problem this solves
//! Java's `ThreadLocal` keeps each thread's values in a `ThreadLocalMap` keyed
//! by weak references. When a `ThreadLocal` dies, its values stay on every
//! thread that set them until that thread touches its map again or exits. In
//! a thread pool threads never exit, so the values leak: memory grows, pooled
//! resources (a bound database connection) are never returned, and one
//! request's data is visible to the next request on the same thread. The
//! cure is `remove()` in a `finally`:
//!
//! ```java
//! private static final ThreadLocal<Connection> CONN = new ThreadLocal<>();
//!
//! void placeOrder(Order order) {
//!     CONN.set(pool.getConnection());
//!     try {
//!         insertOrder(order);          // reads CONN.get() deep in the call chain
//!     } finally {
//!         CONN.remove();               // forget this and the pooled thread keeps it
//!     }
//! }
//! ```
//!
//! The same in Rust, where the guard runs on every way out, including `?` and
//! a panic, and nested handlers restore the outer binding:
//!
//! ```
//! use tl_core::ThreadLocal;
//! # struct Connection; struct Order; struct Pool;
//! # impl Pool { fn get(&self) -> Connection { Connection } }
//! # fn insert_order(_: &Order) -> Result<(), String> { Ok(()) }
//!
//! static CONN: ThreadLocal<Connection> = ThreadLocal::new().named("CONN");
//!
//! fn place_order(pool: &Pool, order: Order) -> Result<(), String> {
//!     let _conn = CONN.scope(pool.get()); // unbound when `_conn` drops
//!     insert_order(&order)?;              // reads CONN.with(..) deep in the call chain
//!     Ok(())
//! }
//! # place_order(&Pool, Order).unwrap();
//! # assert!(!CONN.is_set());
//! ```
//!
//! (`tl-macros`' `#[thread_local_scoped(CONN)]` writes that guard for you.)
//!
//! # What is different from Java
//! - Key death is exact: dropping a `ThreadLocal` that is a field of a
//!   service kills its key now, not at the next garbage collection. The
//!   dropping thread's value is dropped at once; every other thread holding a
//!   value is told through a cheap epoch check and drops it (on its own
//!   thread, since values need not be `Send`) at its next bind (`set`, or an
//!   initializer's), unbind, scope, guard or task start. Reads (`get`,
//!   `with`) do not look, so that they cost no more than a lookup.
//! - Every value is visible to an auditor: [`registry`] snapshots any live
//!   thread's entries without stopping it, [`death`] streams key deaths, and
//!   [`checkpoint`] tells what a task left behind. tl-core itself never logs;
//!   `tl-audit` turns this data into reports.
//! - Each key carries a name, its declaration site, its value type and a
//!   [`Policy`]: task-scoped (the default; must be removed before a pooled
//!   thread's task ends) or per-thread (a deliberate cache).
//!
//! | Java | tl-core |
//! |---|---|
//! | `new ThreadLocal<>()` | [`ThreadLocal::new`] (`const`, usable in a `static`) |
//! | `ThreadLocal.withInitial(supplier)` / `initialValue()` | [`ThreadLocal::with_initial`], [`ThreadLocal::with_initial_fn`] |
//! | `get()` | [`ThreadLocal::get`] (clone), [`ThreadLocal::with`] (borrow) |
//! | `set(v)` | [`ThreadLocal::set`] (returns the old value) |
//! | `remove()` | [`ThreadLocal::remove`] (returns the value) |
//! | `try { set } finally { remove }` | [`ThreadLocal::scope`], [`ThreadLocal::guard`] |
//! | context propagation in reactive code (Reactor's `contextWrite`) | [`ThreadLocal::scope_future`], the attribute on `async fn` |
//! | `InheritableThreadLocal`, `childValue` | [`ThreadLocal::inheritable`], [`ThreadLocal::inheritable_with`], [`thread::spawn`] |
//! | `ReferenceQueue` of dead keys | [`death::subscribe`] |
//!
//! # From std's `thread_local!`
//! [`thread_local!`] takes std's syntax and declares [`LocalKey`]s with
//! std's methods (`with`, `try_with`, and `get`/`set`/`take`/`replace`,
//! `with_borrow`/`with_borrow_mut` for `Cell` and `RefCell`), so a codebase
//! written against std adopts tl by changing one `use` line; its
//! thread-locals are then per-thread keys the auditor counts, sizes and
//! lists (or task-scoped ones, marked `#[task_scoped]`). `MIGRATING.md` in
//! the repository covers std, the `thread_local` crate, tokio's
//! `task_local!` and Java.
//!
//! ```
//! use std::cell::RefCell;
//! use tl_core::thread_local; // the one line that changes
//!
//! thread_local! {
//!     static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::new());
//! }
//!
//! BUFFER.with_borrow_mut(|buf| buf.extend_from_slice(b"hello"));
//! assert_eq!(BUFFER.with_borrow(Vec::len), 5);
//! ```
//!
//! # Thread-locals and async
//! A multi-threaded executor (tokio's, with several workers) moves a task
//! between worker threads at every `.await`, and runs other tasks on the
//! thread it left. So a plain [`set`](ThreadLocal::set) does not survive an
//! `.await`: after it, the task may be on another worker, where it sees that
//! worker's value (another task's) or none, while its own value stays bound
//! on the first worker for whatever task runs there next; a `remove` after
//! the `.await` removes the wrong value. In this workspace's test
//! `a_plain_set_does_not_survive_an_await` (tl-macros), 320 tasks on 4
//! workers each `set` their id, `yield_now().await`, read and `remove`:
//! 304 read no value and 16 read (and removed) another task's value.
//!
//! Two ways do it right; both bind the task's value only while the task is
//! being polled, on whichever worker polls it, and leave nothing bound
//! between polls (as tokio's `task_local!` and tracing's `Instrument` do):
//!
//! - [`ThreadLocal::scope_future`] binds a value for a future, like
//!   [`ThreadLocal::scope`] for a block: `REQUEST_ID.scope_future(id,
//!   handle(request)).await`. The value is dropped when the future completes
//!   or is dropped.
//! - `#[thread_local_scoped(KEY)]` on an `async fn` (tl-macros): values the
//!   body binds with a plain `set` travel with the task; they are dropped on
//!   completion, return, `?`, panic or cancellation, and what the worker
//!   had bound is restored. Each poll is a task for the auditor, and so is
//!   the drop of a cancelled future: the body's locals and the function's
//!   parameters drop inside the task, seeing the task's values.
//!
//! ```
//! use core::future::Future;
//! use core::pin::pin;
//! use core::task::{Context, Poll, Waker};
//! use tl_core::ThreadLocal;
//!
//! static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new().named("REQUEST_ID");
//!
//! async fn lookup() -> Option<u64> {
//!     REQUEST_ID.get() // after any `.await`, on any worker
//! }
//!
//! let mut future = pin!(REQUEST_ID.scope_future(7, lookup()));
//! let poll = future.as_mut().poll(&mut Context::from_waker(Waker::noop()));
//! assert_eq!(poll, Poll::Ready(Some(7)));
//! assert!(!REQUEST_ID.is_set()); // nothing left on this thread
//! ```
//!
//! ```
//! # #[cfg(feature = "macros")] {
//! use tl_core::{ThreadLocal, thread_local_scoped};
//!
//! static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new().named("REQUEST_ID");
//!
//! #[thread_local_scoped(REQUEST_ID)]
//! async fn handle(request: u64) -> Option<u64> {
//!     REQUEST_ID.set(request);   // travels with the task across `.await`
//!     lookup().await
//! }
//! # async fn lookup() -> Option<u64> { REQUEST_ID.get() }
//! # use core::future::Future;
//! # let mut future = core::pin::pin!(handle(3));
//! # let cx = &mut core::task::Context::from_waker(core::task::Waker::noop());
//! # assert_eq!(future.as_mut().poll(cx), core::task::Poll::Ready(Some(3)));
//! # assert!(!REQUEST_ID.is_set());
//! # }
//! ```
//!
//! A `Guard` or `Scope` held across an `.await` is the same mistake as a
//! plain `set` (both are `!Send`, so a multi-threaded executor refuses such
//! a future); a plain `fn` returning a future cannot be guarded by the
//! attribute (a compile error says so).
//!
//! # Reentrancy and thread exit
//! A value's `Drop`, an initializer and a `with` closure may use any
//! thread-local, including the same one, except that a value cannot be
//! replaced or removed while it is borrowed (that panics, like `RefCell`, or
//! returns [`AccessError::Borrowed`] from the `try_` methods). When a thread
//! exits, its values are dropped on it; a destructor running after that sees
//! no values, and `set` drops its argument at once. (One exception, outside
//! Rust's thread-locals: on glibc, a POSIX thread-specific-data destructor
//! that is a thread's *first* use of tl-core binds values that are never
//! dropped, because the destructor tl-core registers then never runs.) Panics from values that
//! tl-core drops itself (dead keys, thread exit, a `set` after exit) are
//! caught and counted in [`stats`], so they can neither abort a thread exit
//! nor surface in an unrelated access.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

// Layers, bottom up: a module uses only modules listed above it (checked
// by scripts/check-layers in CI).
// - sync: atomics, cells, locks and TLS, swapped for loom's under `cfg(loom)`
// - blocks: heap blocks for key blocks and entries, recycled per thread
// - clock: coarse time for bind stamps
// - error: the access errors
// - tasks: a thread's task state (depth, the open task, the last tasks ended), a thread-local
// - slots: key ids: a dense, recycled slot plus a generation
// - key: a key's shared head, its metadata and its erased operations table
// - keyref: counted references to a key (holders and pins)
// - entry: one thread's entry for one key: header, value, bind and borrow
// - keybox: a key's typed block (hooks) and its operations on typed entries
// - table: the per-thread table of entries, indexed by slot
// - shields: a thread's stack of guard shields, a thread-local
// - registration: the thread list and each thread's shared, lock-guarded view
// - map: the per-thread map: lookup, link and unlink, dead-key sweep, exit
// - registry: the public reader: threads and snapshots of their entries
// - guard: `Scope` and `Guard`, and binds through shields
// - checkpoint: task scopes, leftovers and the overwrite check
// - death: death notices
// - lazykey: a handle's key, created on first use and killed on drop
// - ops: typed operations on the current thread's entry (set, remove, find)
// - inherit: inheritable values: capture and install
// - local: the `ThreadLocal` handle
// - thread: spawning with inheritance
// - carry: a task's binding of one key, moved on and off the polling thread
// - future: `ScopeFuture` and the attribute's `TaskFuture`
// - std_compat: `thread_local!` with std's syntax, and `LocalKey`
mod blocks;
mod carry;
mod entry;
mod error;
mod future;
mod guard;
mod key;
mod keybox;
mod keyref;
mod lazykey;
mod local;
mod map;
mod ops;
mod registration;
mod shields;
mod slots;
mod std_compat;
mod sync;
mod table;
mod tasks;

pub mod checkpoint;
pub mod clock;
pub mod death;
pub mod inherit;
pub mod registry;
pub mod thread;

pub use error::{AccessError, SetError};
pub use future::ScopeFuture;
pub use guard::{Guard, Scope};
pub use key::{KeyInfo, Policy};
pub use local::ThreadLocal;
pub use std_compat::LocalKey;
#[cfg(feature = "macros")]
pub use tl_macros::{ThreadLocalScoped, thread_local_scoped};

/// Process-wide counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Threads currently registered (holding or having held values).
    pub threads: usize,
    /// Panics caught while tl-core dropped values itself (dead keys, thread exit).
    pub drop_panics: u64,
    /// The longest time any thread's view lock (taken when a table grows,
    /// shrinks or loses entries, and by registry snapshots) was held, in
    /// wall time; `None` unless the `lock-stats` feature is on, since timing
    /// every acquisition costs. Includes time the holder was preempted.
    pub max_lock_hold: Option<core::time::Duration>,
    /// The same in the holder's CPU time (the work done under the lock,
    /// preemption excluded); wall time where the platform has no thread
    /// CPU clock.
    pub max_lock_hold_cpu: Option<core::time::Duration>,
}

/// Process-wide counters.
pub fn stats() -> Stats {
    Stats {
        threads: registry::threads().len(),
        drop_panics: map::DROP_PANICS.load(sync::Ordering::Relaxed),
        #[cfg(feature = "lock-stats")]
        max_lock_hold: Some(core::time::Duration::from_nanos(
            sync::MAX_LOCK_HOLD_NS.load(sync::Ordering::Relaxed),
        )),
        #[cfg(feature = "lock-stats")]
        max_lock_hold_cpu: Some(core::time::Duration::from_nanos(
            sync::MAX_LOCK_HOLD_CPU_NS.load(sync::Ordering::Relaxed),
        )),
        #[cfg(not(feature = "lock-stats"))]
        max_lock_hold: None,
        #[cfg(not(feature = "lock-stats"))]
        max_lock_hold_cpu: None,
    }
}

/// Items used by code that `tl-macros` generates. Not public API: may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::carry::{Carried, Carry, Entered};
    pub use crate::checkpoint::TaskScope;
    pub use crate::future::TaskFuture;
    pub use crate::guard::Guard;
    pub use crate::local::ThreadLocal;
    pub use crate::std_compat::LocalKey;
    pub use core::panic::Location;

    /// Names `key` for reports after construction, unless it was labelled
    /// already; returns whether this call labelled it. `declared_at`
    /// replaces the declaration site when given. What the derive (a field
    /// `Service.field`) and the attribute (an unnamed static) generate.
    #[inline]
    pub fn label<T: 'static>(
        key: &ThreadLocal<T>,
        name: &'static str,
        declared_at: Option<&'static Location<'static>>,
    ) -> bool {
        key.label(name, declared_at)
    }

    /// `thread_local!`'s key: `inner` must have an initializer.
    #[inline]
    pub const fn local_key<T: 'static>(inner: ThreadLocal<T>) -> LocalKey<T> {
        LocalKey::from_thread_local(inner)
    }

    /// An `async fn` handler's state for one listed key: starts empty (the
    /// body sees the enclosing binding until it binds or removes its own)
    /// and does not borrow `key`.
    ///
    /// The contract of [`Carried`] and [`Carry`], for [`TaskFuture`] (the
    /// only caller): before each poll, [`Carry::enter`] guards each key and
    /// applies the task's state (binds the task's value again with its
    /// original bind site, time and byte count and a fresh sequence number,
    /// or removes the key again), sheltering what the thread had bound; the
    /// returned scope's `Drop` moves a value bound during the poll (bind
    /// sequence number above the guard's token) off the thread, with its
    /// metadata, into the state, and restores what the thread had. Each
    /// step moves the value, so it is never dropped twice nor lost: it ends
    /// in the body (replaced or removed), in [`Carry::clear`] on completion,
    /// in `Drop` on cancellation, or with its key.
    #[inline]
    pub fn carried<T: 'static>(key: &ThreadLocal<T>) -> Carried<'static, T> {
        Carried::new(key)
    }

    /// The future an `async fn` handler returns: `body`, carrying `carry`
    /// through every poll, each poll a [`TaskScope`] named `task` at
    /// `location`, and so is dropping `body` if it has not completed.
    #[inline]
    pub fn task_future<C: Carry, F: core::future::Future>(
        task: &'static str,
        location: &'static Location<'static>,
        carry: C,
        body: F,
    ) -> TaskFuture<C, F> {
        TaskFuture::new(task, location, carry, body)
    }

    /// Models a thread exit in loom models (see `map::exit_thread`).
    #[cfg(loom)]
    pub fn loom_thread_exit() {
        crate::map::exit_thread();
    }

    /// `#[thread_local_scoped(KEY)]`'s guard for one thread-local: takes a
    /// reference so that `&self.field` deref-coerces from smart pointers.
    #[inline]
    pub fn guard<T: 'static>(key: &ThreadLocal<T>) -> Guard<T> {
        key.guard()
    }

    /// What `#[derive(ThreadLocalScoped)]` implements: the guards of the
    /// type's `#[thread_local_scoped]` fields, which handlers with the
    /// argument `self` (or no argument) take. A trait, not an inherent
    /// method, so that a handler on a type without the derive gets an error
    /// that says what is missing.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` does not derive `ThreadLocalScoped`: `#[thread_local_scoped]` without arguments, or with `self`, cleans up the scoped fields that the derive lists",
        label = "`{Self}` has no `#[derive(ThreadLocalScoped)]`",
        note = "derive `ThreadLocalScoped` on `{Self}` and mark its thread-local fields `#[thread_local_scoped]`, or list the keys instead: `#[thread_local_scoped(self.conn)]`"
    )]
    pub trait ScopedFields {
        /// Names each field's key and guards it; the guards drop in reverse
        /// order of creation. Opaque, so that a public service may hold
        /// thread-locals of private types.
        fn __thread_local_scoped_guards(&self) -> impl Sized + 'static;

        /// The fields' [`Carried`] states, for an `async fn` handler, as
        /// nested pairs in field order. Opaque like the guards.
        fn __thread_local_scoped_carried(&self) -> impl Carry + 'static;
    }

    /// `#[thread_local_scoped(self)]`'s guards: a function, so that a type
    /// without the derive is one unmet bound (and one error).
    #[inline]
    pub fn scoped_guards<S: ScopedFields + ?Sized>(service: &S) -> impl Sized + 'static {
        service.__thread_local_scoped_guards()
    }

    /// `#[thread_local_scoped(self)]`'s carried states, on an `async fn`.
    #[inline]
    pub fn scoped_carried<S: ScopedFields + ?Sized>(service: &S) -> impl Carry + 'static {
        service.__thread_local_scoped_carried()
    }

    /// The location of the call: generated with the span of a field or an
    /// argument (`quote_spanned!`), it names that token's file, line and column.
    #[track_caller]
    #[inline]
    pub fn here() -> &'static Location<'static> {
        Location::caller()
    }
}
