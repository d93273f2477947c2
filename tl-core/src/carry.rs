//! Bindings that travel with a task: [`Carried`] keeps one key's binding in
//! a future's state between polls and puts it back on whichever thread polls
//! next, so that a task's thread-local values follow it from worker to worker.
//!
//! # Design
//! Each poll runs under a [`Guard`] of the key, exactly as a synchronous
//! `#[thread_local_scoped]` handler runs: the guard is entered first, then
//! the task's own state is applied (a value the task bound is bound again,
//! a value the task removed is removed again; either way the value the
//! thread had is moved aside into the poll's scope, typed, so that no box
//! is needed, and handed to no one). After the poll, a value bound during
//! the task (its bind sequence number is above the guard's token) is taken
//! off the thread, with its bind metadata, into the task's state; what the
//! thread had is put back, and the guard drops. A task that never binds or
//! removes the key sees the enclosing binding, as a nested synchronous
//! handler does (and the guard's shield keeps it, if the body then rebinds).
//!
//! # Invariants
//! - Between polls a task's value lives only in [`Carried`]'s state; during
//!   a poll only on the thread. Every step moves it, so it is dropped exactly
//!   once: by the body (`remove`, a `set` that replaces it), by the task's
//!   completion or drop, or by the key's death.
//! - A value put back gets a fresh sequence number from the polling thread
//!   (sequence numbers are per thread), and keeps its bind site, time and
//!   byte count: to an auditor it is the same bind.
//! - Between polls the thread is exactly as it was before the poll: the
//!   value moved aside (or the one the guard's shield kept) is put back
//!   with its own metadata, its sequence number at or below the guard's
//!   token, so guards and checkpoints see it as bound before the poll.
//!
//! # Thread exit
//! A poll during thread exit (after the thread's map was destroyed) cannot
//! bind: the task's value stays in its state and the body sees nothing.
//!
//! # Reentrancy
//! No user code runs while an entry reference is held: values displaced by
//! a step are returned and dropped after it. Applying the task's state to
//! an entry that an enclosing `with` borrows panics, as `set` does (a poll
//! inside `KEY.with(..)`); in a future's `drop` it is skipped instead.

use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ptr::NonNull;

use crate::entry::{BindMeta, Entry};
use crate::error::AccessError;
use crate::guard::{Guard, drop_in_guard};
use crate::key::KeyShared;
use crate::keyref::{KeyPin, KeyRef};
use crate::local::ThreadLocal;
use crate::map;
use crate::ops;
use crate::sync::{Ordering, fence};

/// A task's state for one key between polls.
enum State<T> {
    /// The task has neither bound nor removed the key: its body sees the
    /// enclosing binding, whatever the polling thread has.
    Inherit,
    /// The task's own value, and how it was bound.
    Bound(T, BindMeta),
    /// The task removed the key: its body sees nothing, whatever the thread has.
    Removed,
}

/// One key's binding, carried by a task between polls (see the module docs).
///
/// Holds the key's id and block; a `Carried` made by [`Carried::new`] owns a
/// pin on the block, so it does not borrow the `ThreadLocal` (a handler that
/// takes `&mut self` or `self` can still move `self` into its body), and one
/// made from a borrowed handle relies on the borrow instead.
pub struct Carried<'k, T: 'static> {
    id: u64,
    key: NonNull<KeyShared>,
    /// Whether `key` is a pin this value owns (released on drop).
    pinned: bool,
    state: State<T>,
    _key: PhantomData<&'k ()>,
}

// SAFETY: `key` points to a `KeyShared`, which is `Sync` (its mutable state
// is atomic), like `KeyPin`; the only other data is the task's `T`.
unsafe impl<T: Send> Send for Carried<'_, T> {}
// SAFETY: as above; `&Carried` gives no access to the value.
unsafe impl<T> Sync for Carried<'_, T> {}

impl<T: 'static> Carried<'static, T> {
    /// State for `key` that starts empty (the task sees the enclosing
    /// binding until it binds or removes its own), pinning the key so that
    /// it does not borrow the handle.
    pub fn new(key: &ThreadLocal<T>) -> Self {
        let (id, ptr) = key.key_parts();
        // SAFETY: the handle's reference keeps the key live during the call.
        let pin = unsafe { KeyPin::pin_raw(ptr) };
        Self {
            id,
            key: pin.into_raw(),
            pinned: true,
            state: State::Inherit,
            _key: PhantomData,
        }
    }
}

impl<'k, T: 'static> Carried<'k, T> {
    /// State for `key` that starts with `value` bound, as if bound at
    /// `meta.site`; the borrow keeps the key live.
    pub(crate) fn bound(key: &'k ThreadLocal<T>, value: T, meta: BindMeta) -> Self {
        let (id, key) = key.key_parts();
        Self {
            id,
            key,
            pinned: false,
            state: State::Bound(value, meta),
            _key: PhantomData,
        }
    }

    /// Enters one poll: guards the key and applies the task's state. With
    /// `strict`, an entry borrowed by an enclosing `with` panics (the state
    /// cannot be applied); otherwise the poll runs with the thread's binding.
    ///
    /// # Panics
    /// With `strict`, as described.
    pub(crate) fn enter(&mut self, strict: bool) -> Entered<'_, 'k, T> {
        // SAFETY: `id` is the key's id, whose values are `T`.
        let guard = unsafe { Guard::<T>::enter(self.id) };
        let state = mem::replace(&mut self.state, State::Inherit);
        let own = !matches!(state, State::Inherit);
        let (id, key) = (self.id, self.key);
        let Applied {
            outer,
            unapplied,
            dead,
        } = match state {
            State::Inherit => Applied {
                outer: None,
                unapplied: None,
                dead: None,
            },
            State::Bound(value, meta) => apply(id, key, Some((value, meta))),
            State::Removed => apply(id, key, None),
        };
        let entered = Entered {
            carried: self,
            guard: ManuallyDrop::new(guard),
            outer,
            own,
            applied: unapplied.is_none(),
        };
        // A dead key's value, dropped here by tl-core: caught, as every value
        // tl-core drops itself (a panic could abort an unwinding drop).
        if let Some(dead) = dead {
            map::drop_caught(move || drop(dead));
        }
        if let Some((state, kind)) = unapplied {
            entered.carried.state = state;
            if strict && kind == AccessError::Borrowed {
                drop(entered);
                ops::borrowed_panic();
            }
        }
        entered
    }

    /// Drops the task's value, if it has one (the task completed).
    pub(crate) fn clear(&mut self) {
        if let State::Bound(value, _) = mem::replace(&mut self.state, State::Inherit) {
            drop_in_guard(value);
        }
    }
}

/// What applying a task's state did.
struct Applied<T> {
    /// The value the thread had bound, moved aside to restore after the poll.
    outer: Option<(T, BindMeta)>,
    /// The state, if it could not be applied, and why.
    unapplied: Option<(State<T>, AccessError)>,
    /// The task's value, if its key died: to drop.
    dead: Option<T>,
}

/// Applies the task's own state inside the guard just entered: moves what
/// the thread has bound aside and binds the task's value with a fresh
/// sequence number, or leaves the key unbound (`own` is `None`: the task
/// removed it). Moving the enclosing value aside here, rather than into the
/// guard's shield, costs no allocation, and the body cannot tell the
/// difference: a value bound inside the guard is replaced and removed as
/// usual. The state is not applied when the entry is borrowed by an
/// enclosing `with`, or the thread is exiting.
fn apply<T: 'static>(id: u64, key: NonNull<KeyShared>, own: Option<(T, BindMeta)>) -> Applied<T> {
    let unapplied = |own: Option<(T, BindMeta)>, kind| Applied {
        outer: None,
        unapplied: Some((
            own.map_or(State::Removed, |(value, meta)| State::Bound(value, meta)),
            kind,
        )),
        dead: None,
    };
    let done = |outer| Applied {
        outer,
        unapplied: None,
        dead: None,
    };
    map::with(|map| {
        // No sweep: the guard's entry swept just now, and no user code ran.
        let entry = map.find_no_sweep(id).map(|header| {
            // SAFETY: entries found under `id` hold a `T`; no user code runs
            // while the reference is used.
            unsafe { Entry::<T>::from_header(header) }
        });
        let Some(entry) = entry else {
            let Some((value, meta)) = own else {
                return done(None);
            };
            if !map.go_live() {
                return unapplied(Some((value, meta)), AccessError::ThreadExiting);
            }
            // SAFETY: `key` is live: pinned by the `Carried`, or held by the
            // borrowed handle.
            let key_ref = unsafe { KeyRef::upgrade_raw(key) };
            // Pairs with the fence in `ThreadLocal::drop` (as in
            // `inherit::package`): either the dying handle counts this new
            // holder and announces the death, or this sees the key dead.
            fence(Ordering::SeqCst);
            match key_ref {
                Some(key_ref) if key_ref.is_alive() => {
                    let fresh = BindMeta {
                        seq: map.next_seq(),
                        ..meta
                    };
                    map.link(Entry::allocate(key_ref, value, fresh));
                    return done(None);
                }
                // The key died with its handle: its values go too.
                _ => {
                    return Applied {
                        outer: None,
                        unapplied: None,
                        dead: Some(value),
                    };
                }
            }
        };
        if entry.header().is_borrowed() {
            return unapplied(own, AccessError::Borrowed);
        }
        let outer = entry.header().is_set().then(|| {
            let meta = entry.header().bind_meta();
            (
                entry.unbind().expect("a bound entry yields its value"),
                meta,
            )
        });
        if let Some((value, meta)) = own {
            let fresh = BindMeta {
                seq: map.next_seq(),
                ..meta
            };
            let none = entry.bind(value, fresh);
            debug_assert!(none.is_none(), "unbound just above");
        }
        done(outer)
    })
}

/// One poll's scope for one key: dropping it takes the task's value off the
/// thread and restores what the thread had.
pub struct Entered<'a, 'k, T: 'static> {
    carried: &'a mut Carried<'k, T>,
    guard: ManuallyDrop<Guard<T>>,
    /// What the thread had bound, moved aside while the task's own state
    /// applies; restored, with its metadata, when the poll ends.
    outer: Option<(T, BindMeta)>,
    /// Whether the task had state of its own (bound or removed) on entry.
    own: bool,
    /// Whether that state was applied (if not, it is still in `carried`).
    applied: bool,
}

/// What a poll left bound for the key.
enum Left<T> {
    /// A value bound during the poll: the task's, and it travels.
    Task(T, BindMeta),
    /// A value bound before the poll (the enclosing one), or one that a
    /// `with` still borrows: not the task's to take.
    Enclosing,
    /// Nothing.
    Nothing,
}

impl<T: 'static> Drop for Entered<'_, '_, T> {
    fn drop(&mut self) {
        let token = self.guard.token();
        let id = self.carried.id;
        let outer = self.outer.take();
        // With its own state applied, the thread's value was moved aside at
        // entry: whatever is bound now is the task's, even one bound again
        // with older metadata (a `Scope` held across `.await` restoring it).
        let all_task = self.own && self.applied;
        let (left, unrestored, key_died) = map::with(|map| {
            // No sweep: bookkeeping runs no user code (as `Guard::exit`).
            let Some(header) = map.find_no_sweep(id) else {
                // The key died during the poll: the enclosing value goes too.
                return (Left::Nothing, outer.map(|(value, _)| value), true);
            };
            // SAFETY: entries found under `id` hold a `T`; no user code runs
            // until return.
            let entry = unsafe { Entry::<T>::from_header(header) };
            let header = entry.header();
            let left = if !header.is_set() {
                Left::Nothing
            } else if header.is_borrowed() || (header.bind_seq() <= token && !all_task) {
                Left::Enclosing
            } else {
                let meta = header.bind_meta();
                let value = entry.unbind().expect("a bound entry yields its value");
                Left::Task(value, meta)
            };
            let unrestored = match outer {
                // As it was: the same value, site, time, bytes and sequence
                // number (at or below the guard's token, so the guard keeps it).
                Some((value, meta)) if !header.is_set() => {
                    entry.rebind(value, meta);
                    None
                }
                Some((value, _)) => Some(value),
                None => None,
            };
            (left, unrestored, false)
        });
        let state = match left {
            Left::Task(value, meta) => State::Bound(value, meta),
            // The state was not applied: it is still where it was.
            _ if !self.applied => mem::replace(&mut self.carried.state, State::Inherit),
            // The task had its own state and left nothing: it removed the
            // key (or the key died). Without state of its own, the body
            // removed the enclosing value if there was one.
            Left::Nothing if self.own || self.guard.shielded() => State::Removed,
            Left::Enclosing if self.own => State::Removed,
            Left::Nothing | Left::Enclosing => State::Inherit,
        };
        let displaced = mem::replace(&mut self.carried.state, state);
        // SAFETY: dropped once, here; the field is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if let State::Bound(value, _) = displaced {
            drop_in_guard(value);
        }
        if key_died {
            // A dead key's value, dropped by tl-core itself: caught.
            map::drop_caught(move || drop(unrestored));
        } else {
            drop_in_guard(unrestored);
        }
    }
}

impl<T: 'static> Drop for Carried<'_, T> {
    fn drop(&mut self) {
        if self.pinned {
            // SAFETY: `new` leaked this pin into `key`; released once, here.
            drop(unsafe { KeyPin::from_raw(self.key) });
        }
    }
}

impl<T: 'static> core::fmt::Debug for Carried<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match self.state {
            State::Inherit => "inherit",
            State::Bound(..) => "bound",
            State::Removed => "removed",
        };
        f.debug_struct("Carried")
            .field("key_id", &self.id)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

// === the keys of one task ===

/// The keys a task carries: one [`Carried`], `()` for none, or a pair of
/// sets (nested pairs list any number). Pairs enter left to right and exit
/// right to left, as guards nest.
pub trait Carry {
    /// The scope of one poll: dropping it ends the poll for every key.
    type Entered<'a>
    where
        Self: 'a;

    /// Enters one poll for every key (see [`Carried::enter`]).
    #[doc(hidden)]
    fn enter(&mut self, strict: bool) -> Self::Entered<'_>;

    /// Drops the task's values (it completed).
    #[doc(hidden)]
    fn clear(&mut self);
}

impl Carry for () {
    type Entered<'a> = ();

    #[inline]
    fn enter(&mut self, _strict: bool) {}

    #[inline]
    fn clear(&mut self) {}
}

impl<'k, T: 'static> Carry for Carried<'k, T> {
    type Entered<'a>
        = Entered<'a, 'k, T>
    where
        Self: 'a;

    #[inline]
    fn enter(&mut self, strict: bool) -> Self::Entered<'_> {
        Carried::enter(self, strict)
    }

    #[inline]
    fn clear(&mut self) {
        Carried::clear(self);
    }
}

impl<A: Carry, B: Carry> Carry for (A, B) {
    /// The second's scope first: a tuple drops its fields in order.
    type Entered<'a>
        = (B::Entered<'a>, A::Entered<'a>)
    where
        Self: 'a;

    #[inline]
    fn enter(&mut self, strict: bool) -> Self::Entered<'_> {
        let first = self.0.enter(strict);
        let second = self.1.enter(strict);
        (second, first)
    }

    #[inline]
    fn clear(&mut self) {
        self.1.clear();
        self.0.clear();
    }
}
