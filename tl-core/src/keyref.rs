//! Counted references to a key, split like `Arc`'s strong and weak counts.
//!
//! - [`KeyRef`] is a *holder*: the handle, or an entry holding a value for the
//!   key on some thread. When the handle dies, the holder count tells how many
//!   entries other threads still have, which is what a death notice reports
//!   and what decides whether other threads must be told to sweep.
//! - [`KeyPin`] only keeps the key's metadata readable (an inheritance in
//!   flight, a report being built, an exiting thread's entries whose values
//!   are being dropped), without counting as a holder.
//!
//! `pins` counts the pins plus one shared by all holders; the key block is
//! freed when it reaches zero. The orderings are `Arc`'s.

use core::ptr::NonNull;

use crate::key::KeyShared;
use crate::sync::{Ordering, fence};

/// A holder's reference to a key.
pub(crate) struct KeyRef(NonNull<KeyShared>);

/// A non-holding reference to a key.
pub(crate) struct KeyPin(NonNull<KeyShared>);

/// The two holder references a key starts with (`KeyShared::new`): one for
/// its handle, and a spare for the creating thread's first entry, so that
/// creating a key and binding its first value costs no atomic increment.
/// A spare nobody takes is released like any other holder.
pub(crate) struct NewKey {
    pub(crate) handle: KeyRef,
    pub(crate) spare: KeyRef,
}

impl NewKey {
    /// Takes over the two holder references of a key just created.
    ///
    /// # Safety
    /// The caller owns both holder references `KeyShared::new` gave the
    /// live key at `ptr`, and no one else references it.
    pub(crate) unsafe fn from_raw(ptr: NonNull<KeyShared>) -> Self {
        Self {
            handle: KeyRef(ptr),
            spare: KeyRef(ptr),
        }
    }
}

// SAFETY: `KeyShared` is only read through shared references and its mutable
// state is atomic; the typed tail holds only `fn` pointers.
unsafe impl Send for KeyRef {}
// SAFETY: as above.
unsafe impl Sync for KeyRef {}
// SAFETY: as above.
unsafe impl Send for KeyPin {}
// SAFETY: as above.
unsafe impl Sync for KeyPin {}

/// Drops one pin, freeing the key block with the last.
///
/// # Safety
/// The caller owns one pin (or the holders' shared pin) of the live key.
unsafe fn release_pin(key: NonNull<KeyShared>) {
    // SAFETY: live while the caller's pin is.
    let shared = unsafe { key.as_ref() };
    if shared.pins.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        // SAFETY: that was the last pin, hence the last reference of any kind;
        // `free_key` matches the `KeyBox<T>` the key was created as.
        unsafe { (shared.ops.free_key)(key) };
    }
}

impl KeyRef {
    /// Takes over one holder reference leaked with [`Self::into_raw`] or
    /// returned by `KeyBox::create`.
    ///
    /// # Safety
    /// The caller owns one holder reference to the live key at `ptr`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<KeyShared>) -> Self {
        Self(ptr)
    }

    /// Adds a holder to the live key at `ptr`.
    ///
    /// # Safety
    /// Someone holds a holder reference to `ptr` for the whole call.
    pub(crate) unsafe fn clone_from_raw(ptr: NonNull<KeyShared>) -> Self {
        // SAFETY: the key is live (caller).
        unsafe { ptr.as_ref() }
            .holders
            .fetch_add(1, Ordering::Relaxed);
        Self(ptr)
    }

    pub(crate) fn into_raw(self) -> NonNull<KeyShared> {
        let ptr = self.0;
        core::mem::forget(self);
        ptr
    }

    /// A new holder reference to the key at `ptr`, unless every holder
    /// (the handle included) is gone.
    ///
    /// # Safety
    /// Someone holds a reference (of either kind) to `ptr` for the whole call.
    pub(crate) unsafe fn upgrade_raw(ptr: NonNull<KeyShared>) -> Option<Self> {
        // SAFETY: the key is live (caller).
        let holders = &unsafe { ptr.as_ref() }.holders;
        let mut count = holders.load(Ordering::Relaxed);
        loop {
            if count == 0 {
                return None;
            }
            match holders.compare_exchange_weak(
                count,
                count + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Self(ptr)),
                Err(seen) => count = seen,
            }
        }
    }

    /// Frees the key block: `self` and `other`, a second holder reference to
    /// the same key if given, are the only references of any kind left (no
    /// other holder, no pins), so no count needs updating.
    pub(crate) fn free_exclusive(self, other: Option<KeyRef>) {
        let holders = 1 + usize::from(other.is_some());
        debug_assert!(other.as_ref().is_none_or(|other| other.0 == self.0));
        debug_assert_eq!(self.holders.load(Ordering::Relaxed), holders);
        debug_assert_eq!(self.pins.load(Ordering::Relaxed), 1);
        fence(Ordering::Acquire);
        let _ = other.map(Self::into_raw);
        let key = self.into_raw();
        // SAFETY: the last reference, as checked by the caller; `free_key`
        // matches the `KeyBox<T>` the key was created as.
        unsafe { (key.as_ref().ops.free_key)(key) };
    }

    /// Turns this holder into a pin: the key stays readable, but no longer
    /// counts this reference as an entry.
    pub(crate) fn demote(self) -> KeyPin {
        // SAFETY: `self` keeps the key live during the call.
        let pin = unsafe { KeyPin::pin_raw(self.0) };
        drop(self);
        pin
    }
}

impl KeyPin {
    /// Adds a pin to the live key at `ptr`.
    ///
    /// # Safety
    /// Someone holds a reference (of either kind) to `ptr` for the whole call.
    pub(crate) unsafe fn pin_raw(ptr: NonNull<KeyShared>) -> Self {
        // SAFETY: the key is live (caller).
        unsafe { ptr.as_ref() }.pins.fetch_add(1, Ordering::Relaxed);
        Self(ptr)
    }

    /// Takes over one pin leaked with [`Self::into_raw`].
    ///
    /// # Safety
    /// The caller owns one pin of the live key at `ptr`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<KeyShared>) -> Self {
        Self(ptr)
    }

    pub(crate) fn into_raw(self) -> NonNull<KeyShared> {
        let ptr = self.0;
        core::mem::forget(self);
        ptr
    }

    pub(crate) fn as_ptr(&self) -> NonNull<KeyShared> {
        self.0
    }

    /// A holder reference, unless every holder (the handle included) is gone.
    pub(crate) fn upgrade(&self) -> Option<KeyRef> {
        // SAFETY: our pin keeps the key live during the call.
        unsafe { KeyRef::upgrade_raw(self.0) }
    }
}

impl core::ops::Deref for KeyRef {
    type Target = KeyShared;
    #[inline]
    fn deref(&self) -> &KeyShared {
        // SAFETY: we own a reference, so the key is live.
        unsafe { self.0.as_ref() }
    }
}

impl core::ops::Deref for KeyPin {
    type Target = KeyShared;
    #[inline]
    fn deref(&self) -> &KeyShared {
        // SAFETY: we own a pin, so the key is live.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for KeyRef {
    fn clone(&self) -> Self {
        // SAFETY: we own a reference, so the key is live.
        unsafe { Self::clone_from_raw(self.0) }
    }
}

impl Drop for KeyRef {
    fn drop(&mut self) {
        if self.holders.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            // SAFETY: the last holder releases the holders' shared pin.
            unsafe { release_pin(self.0) };
        }
    }
}

impl Drop for KeyPin {
    fn drop(&mut self) {
        // SAFETY: we own a pin.
        unsafe { release_pin(self.0) };
    }
}
