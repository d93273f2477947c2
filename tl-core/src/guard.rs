//! Scope guards: [`Scope`] binds a value for a lexical scope; [`Guard`]
//! cleans up whatever a scope bound. Both act on every way out of the scope,
//! including a panic, and both nest.
//!
//! # Design
//! `Scope` keeps the value it displaced and puts it back on drop. `Guard`
//! binds nothing itself, so it cannot hold the displaced value up front; it
//! pushes a *shield* instead when a value is already bound on entry (bound by
//! an enclosing scope). While shielded, the first `set` or `remove` inside the
//! guard moves that enclosing value into the shield rather than returning it,
//! and the guard's drop puts it back. That is how
//! `#[thread_local_scoped]` handlers nested in one another restore the outer
//! binding even when the inner body rebinds without knowing about the outer one.
//!
//! # Invariants
//! - Every bind increments the thread's sequence number and records it in the
//!   entry; a guard takes a sequence number too, so "bound inside this guard"
//!   is exactly `entry.set_seq > guard.token`.
//! - The entry's `SHIELDED` flag is set iff some shield for its key is on
//!   this thread's shield stack; it sends `set`/`remove` to the slow path.
//! - No user code (a value's `Drop`) runs while a shield or entry reference is
//!   held: values are taken out first and dropped last.

use core::any::Any;
use core::marker::PhantomData;

use crate::entry::{BindMeta, Entry};
use crate::map::{self, LocalMap, drop_caught};
use crate::shields::{self, Shield};

/// Moves the current value into the innermost shield if it was bound outside
/// that shield's guard. Returns true if it did.
fn shelter<T: 'static>(entry: &Entry<T>) -> bool {
    let header = entry.header();
    if !header.is_set() {
        return false;
    }
    let bound = header.bind_meta();
    // SAFETY: the closure runs no user code: the value it unbinds moves into
    // the shield, and nothing is dropped.
    unsafe {
        shields::with(|shields| {
            let Some(shield) = shields
                .iter_mut()
                .rev()
                .find(|s| s.key_id == header.key_id())
            else {
                return false;
            };
            if shield.saved.is_some() || bound.seq > shield.token {
                return false;
            }
            let outer = entry.unbind().expect("a bound entry yields its value");
            shield.saved = Some((Box::new(outer), bound));
            true
        })
    }
}

/// `set` on a shielded entry (the caller checked it is not borrowed).
pub(crate) fn shielded_bind<T: 'static>(entry: &Entry<T>, value: T, meta: BindMeta) -> Option<T> {
    if shelter(entry) {
        let none = entry.bind(value, meta);
        debug_assert!(none.is_none());
        None
    } else {
        entry.bind(value, meta)
    }
}

/// `remove` on a shielded entry (the caller checked it is not borrowed).
pub(crate) fn shielded_unbind<T: 'static>(entry: &Entry<T>) -> Option<T> {
    if shelter(entry) { None } else { entry.unbind() }
}

/// Drops values from a guard's `drop`: caught while unwinding, where a second
/// panic would abort the process.
pub(crate) fn drop_in_guard<V>(value: V) {
    if std::thread::panicking() {
        drop_caught(move || drop(value));
    } else {
        drop(value);
    }
}

/// Cleans up a thread-local when dropped: removes any value bound for it
/// since the guard was created and restores the value an enclosing scope had
/// bound. Created by [`ThreadLocal::guard`](crate::ThreadLocal::guard); this
/// is what `#[thread_local_scoped]` generates.
///
/// While the guard lives, a `set` or `remove` of a value bound *before* the
/// guard does not hand that value back (it returns `None`): the value belongs
/// to the enclosing scope and the guard gives it back on drop.
///
/// Guards must be dropped in reverse order of creation (as locals are).
/// Dropping a guard inside a `with` of the same thread-local leaves the
/// borrowed value bound, and the enclosing value the guard sheltered, if
/// any, is dropped rather than restored.
#[must_use = "the guard cleans up when dropped; bind it with `let _guard = ...`"]
pub struct Guard<T: 'static> {
    id: u64,
    /// The guard's sequence number shifted left by one, and in the low bit
    /// whether it pushed a shield: two words in all, so that a guard is
    /// returned in registers and moving guards into a tuple (as the derive's
    /// generated method does) costs nothing.
    packed: u64,
    _type: PhantomData<fn() -> T>,
    /// Not `Send`: the guard acts on the thread that created it.
    _not_send: PhantomData<*const ()>,
}

impl<T: 'static> Guard<T> {
    /// # Safety
    /// `id` is the id of a key whose values are `T`.
    pub(crate) unsafe fn enter(id: u64) -> Self {
        map::with(|map| {
            // The lookup may sweep, running `Drop` code that binds values;
            // the token comes after it, so such a value counts as bound
            // before the guard, not inside it.
            let header = map.find(id);
            let token = map.next_seq();
            // SAFETY: linked entries are live; no user code runs below.
            let shielded = match header.map(|h| unsafe { h.as_ref() }) {
                Some(header) if header.is_set() => {
                    let shield = Shield {
                        key_id: id,
                        token,
                        saved: None,
                    };
                    // SAFETY: a push runs no user code.
                    unsafe { shields::with(|shields| shields.push(shield)) };
                    header.set_shielded(true);
                    true
                }
                _ => false,
            };
            // A thread would need 2^63 binds to overflow the shift.
            debug_assert!(token < 1 << 63);
            Self {
                id,
                packed: token << 1 | u64::from(shielded),
                _type: PhantomData,
                _not_send: PhantomData,
            }
        })
    }

    /// The guard's sequence number: a value whose bind sequence number is
    /// greater was bound inside the guard.
    #[inline]
    pub(crate) fn token(&self) -> u64 {
        self.packed >> 1
    }

    /// Whether a value was bound when the guard was entered (the guard
    /// shields it).
    #[inline]
    pub(crate) fn shielded(&self) -> bool {
        self.packed & 1 != 0
    }

    /// Undoes the guard's scope; returns the values to drop.
    fn exit(&self, map: &LocalMap) -> (Option<T>, Option<Box<dyn Any>>) {
        let saved = if self.shielded() {
            // SAFETY: the saved value is moved out, not dropped, so the
            // closure runs no user code.
            unsafe {
                shields::with(|shields| {
                    shields
                        .iter()
                        .rposition(|s| s.token == self.token() && s.key_id == self.id)
                        .and_then(|i| shields.remove(i).saved)
                })
            }
        } else {
            None
        };
        // Enclosing guards' shields keep the flag set, whether or not this
        // guard pushed one.
        let still_shielded = shields::has(self.id);
        // No sweep here: a sweep runs user code, and bookkeeping comes first.
        let Some(header) = map.find_no_sweep(self.id) else {
            return (None, saved.map(|(value, _)| value));
        };
        // SAFETY: the id's entries hold a `T`; no user code runs until return.
        let entry = unsafe { Entry::<T>::from_header(header) };
        entry.header().set_shielded(still_shielded);
        if entry.header().is_borrowed() {
            return (None, saved.map(|(value, _)| value));
        }
        let inner = if entry.header().bind_seq() > self.token() {
            entry.unbind()
        } else {
            None
        };
        let unused = match saved {
            Some((value, meta)) if !entry.header().is_set() => match value.downcast::<T>() {
                Ok(value) => {
                    entry.rebind(*value, meta);
                    None
                }
                Err(value) => Some(value),
            },
            Some((value, _)) => Some(value),
            None => None,
        };
        (inner, unused)
    }
}

impl<T: 'static> Drop for Guard<T> {
    fn drop(&mut self) {
        let (inner, unused) = map::with(|map| self.exit(map));
        drop_in_guard(inner);
        drop_in_guard(unused);
    }
}

impl<T: 'static> core::fmt::Debug for Guard<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Guard")
            .field("key_id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Binds a value for a scope: created by
/// [`ThreadLocal::scope`](crate::ThreadLocal::scope), it removes the value on
/// drop, or restores the value that was bound before (nested scopes unwind in
/// order), on every path including a panic.
///
/// Like [`Guard`], a scope must be dropped on its thread, in reverse order of
/// creation, and not inside a `with` of the same thread-local.
#[must_use = "the value is unbound when the scope is dropped; bind it with `let _scope = ...`"]
pub struct Scope<T: 'static> {
    id: u64,
    /// The value the scope displaced, and how it was bound, to restore both.
    previous: Option<(T, BindMeta)>,
    /// Not `Send`: the scope acts on the thread that created it.
    _marker: PhantomData<*const ()>,
}

impl<T: 'static> Scope<T> {
    pub(crate) fn new(id: u64, previous: Option<(T, BindMeta)>) -> Self {
        Self {
            id,
            previous,
            _marker: PhantomData,
        }
    }

    fn exit(&mut self, map: &LocalMap) -> (Option<T>, Option<T>) {
        let previous = self.previous.take();
        let Some(header) = map.find_no_sweep(self.id) else {
            return (None, previous.map(|(value, _)| value));
        };
        // SAFETY: the id's entries hold a `T`; no user code runs until return.
        let entry = unsafe { Entry::<T>::from_header(header) };
        if entry.header().is_borrowed() {
            return (None, previous.map(|(value, _)| value));
        }
        let shielded = entry.header().is_shielded();
        let displaced = match previous {
            Some((value, meta)) if shielded => shielded_bind(entry, value, meta),
            Some((value, meta)) => entry.bind(value, meta),
            None if shielded => shielded_unbind(entry),
            None => entry.unbind(),
        };
        (displaced, None)
    }
}

impl<T: 'static> Drop for Scope<T> {
    fn drop(&mut self) {
        let (displaced, unused) = map::with(|map| self.exit(map));
        drop_in_guard(displaced);
        drop_in_guard(unused);
    }
}

impl<T: 'static> core::fmt::Debug for Scope<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scope")
            .field("key_id", &self.id)
            .finish_non_exhaustive()
    }
}
