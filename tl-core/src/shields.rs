//! A thread's stack of guard shields (see `guard`): what a `Guard` keeps of
//! an enclosing scope's value while its own scope rebinds or removes it.
//!
//! # Invariants
//! - The stack belongs to one thread: a destructor-less thread-local of its
//!   own, reached with [`with`], [`has`] and [`take`] (`ShieldStack` holds a
//!   `Cell`, so it is neither `Sync` nor shared).
//! - It is allocated on the first push and freed by [`take`] at thread exit
//!   (the map's teardown); a raw pointer rather than a `Box`, so that the
//!   thread-local needs no destructor.
//! - Nothing runs user code while the stack is borrowed: callers of
//!   [`with`] move values out and drop them after it returns.

use core::any::Any;
use core::cell::Cell;
use core::ptr;

use crate::entry::BindMeta;
use crate::sync;

/// One guard's record on the stack.
pub(crate) struct Shield {
    /// The key the guard is for.
    pub(crate) key_id: u64,
    /// The guard's sequence number: binds above it happened inside the guard.
    pub(crate) token: u64,
    /// The enclosing scope's value and how it was bound, once this guard's
    /// scope rebinds or removes it.
    pub(crate) saved: Option<(Box<dyn Any>, BindMeta)>,
}

/// The stack itself, empty until first used.
struct ShieldStack(Cell<*mut Vec<Shield>>);

sync::local! {
    static SHIELDS: ShieldStack = const { ShieldStack::new() };
}

/// Runs `f` on this thread's stack, allocating it first if needed.
///
/// # Safety
/// `f` runs no user code (drops no `Shield` with a saved value, runs no
/// value's `Drop`), so it cannot re-enter and alias the stack.
pub(crate) unsafe fn with<R>(f: impl FnOnce(&mut Vec<Shield>) -> R) -> R {
    // SAFETY: forwarded from the caller.
    sync::with_plain_local(&SHIELDS, |stack| unsafe { stack.with(f) }, ShieldStack::new)
}

/// Whether a shield for key `id` is on this thread's stack (without
/// allocating it).
pub(crate) fn has(id: u64) -> bool {
    sync::with_plain_local(&SHIELDS, |stack| stack.has(id), ShieldStack::new)
}

/// Takes this thread's whole stack, for thread exit; it is empty afterwards.
pub(crate) fn take() -> Vec<Shield> {
    sync::with_plain_local(&SHIELDS, ShieldStack::take, ShieldStack::new)
}

impl ShieldStack {
    const fn new() -> Self {
        Self(Cell::new(ptr::null_mut()))
    }

    /// # Safety
    /// As for [`with`].
    unsafe fn with<R>(&self, f: impl FnOnce(&mut Vec<Shield>) -> R) -> R {
        let mut stack = self.0.get();
        if stack.is_null() {
            stack = Box::into_raw(Box::default());
            self.0.set(stack);
        }
        // SAFETY: the vector is this thread's and only reached through this
        // stack; `f` cannot re-enter (caller), so this is the only reference.
        f(unsafe { &mut *stack })
    }

    fn has(&self, id: u64) -> bool {
        let stack = self.0.get();
        // SAFETY: as in `with`; a shared borrow for the duration of a search
        // that runs no user code.
        !stack.is_null() && unsafe { &*stack }.iter().any(|s| s.key_id == id)
    }

    fn take(&self) -> Vec<Shield> {
        let stack = self.0.replace(ptr::null_mut());
        if stack.is_null() {
            return Vec::new();
        }
        // SAFETY: allocated by `with` with `Box::into_raw`, and no longer
        // reachable from the stack.
        *unsafe { Box::from_raw(stack) }
    }
}
