//! A key's typed heap block: [`KeyBox<T>`], the erased [`KeyShared`] head
//! followed by the key's typed hooks, and the [`KeyOps`] table through which
//! erased code (the map, inheritance, reports) reaches values of type `T`.
//!
//! # Invariants
//! - A `KeyShared` whose `ops` is `KeyBox::<T>::OPS` heads a `KeyBox<T>`
//!   (`repr(C)`, head first), and every entry of that key holds a `T`.
//! - Hooks are written once, by `create`, and only read afterwards.

use core::fmt;
use core::panic::Location;
use core::ptr::NonNull;

use crate::blocks;
use crate::entry::Entry;
use crate::key::{ErasedEntry, Installer, KeyMeta, KeyOps, KeyShared, Policy};
use crate::keyref::{KeyPin, NewKey};
use crate::slots;

/// Optional per-key behaviour, chosen by the handle's `const` builder methods.
pub(crate) struct Hooks<T> {
    /// Java's `InheritableThreadLocal.childValue`, plus the `Send`-bounded
    /// packer that moves the child's copy to the new thread.
    pub(crate) inherit: Option<InheritHooks<T>>,
    /// Heap bytes owned by a value, added to `size_of::<T>()` in reports.
    pub(crate) heap_size: Option<fn(&T) -> usize>,
    /// Opt-in rendering of a value in reports (off by default: values hold secrets).
    pub(crate) reveal: Option<fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result>,
}

impl<T> Clone for Hooks<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Hooks<T> {}

impl<T> Hooks<T> {
    pub(crate) const NONE: Self = Self {
        inherit: None,
        heap_size: None,
        reveal: None,
    };
}

pub(crate) struct InheritHooks<T> {
    pub(crate) child_value: fn(&T) -> T,
    /// Built where `T: Send` is known, so the erased key can move a `T` to the child.
    pub(crate) package: fn(KeyPin, T) -> Installer,
}

impl<T> Clone for InheritHooks<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for InheritHooks<T> {}

/// A key's heap block: the erased head followed by the typed hooks.
#[repr(C)]
pub(crate) struct KeyBox<T> {
    shared: KeyShared,
    hooks: Hooks<T>,
}

/// What a handle knows about its key before the key exists.
pub(crate) struct KeySpec<T> {
    pub(crate) name: Option<&'static str>,
    pub(crate) declared_at: &'static Location<'static>,
    pub(crate) policy: Policy,
    pub(crate) hooks: Hooks<T>,
}

impl<T: 'static> KeyBox<T> {
    const OPS: &'static KeyOps = &KeyOps {
        drop_entry: Entry::<T>::drop_erased,
        free_key: Self::free,
        inherit: Self::inherit,
        reveal: Self::reveal,
    };

    /// Allocates a new key with a fresh id; the caller owns its two
    /// holder references.
    pub(crate) fn create(spec: &KeySpec<T>) -> NewKey {
        let meta = KeyMeta {
            name: spec.name,
            type_name: core::any::type_name::<T>(),
            declared_at: spec.declared_at,
            policy: spec.policy,
            value_size: size_of::<T>(),
            inheritable: spec.hooks.inherit.is_some(),
            revealing: spec.hooks.reveal.is_some(),
        };
        // Before the block is taken: it panics at the key limit, and a block
        // taken first would then be lost.
        let id = slots::allocate();
        let block = blocks::allocate::<Self>();
        // SAFETY: `allocate` returns memory for a `Self`, unused by anyone
        // else; nothing below can panic, so the block is never lost.
        unsafe {
            block.write(Self {
                shared: KeyShared::new(id, meta, Self::OPS),
                hooks: spec.hooks,
            });
        }
        // SAFETY: written just above, with two holder references and no
        // other reference.
        unsafe { NewKey::from_raw(block.cast()) }
    }

    /// # Safety
    /// `key` heads a `KeyBox<T>` whose pin count just reached zero.
    unsafe fn free(key: NonNull<KeyShared>) {
        let block = key.cast::<Self>();
        // SAFETY: `KeyShared` is the first field of the `repr(C)` `KeyBox<T>`
        // that `create` wrote, and no reference to it remains.
        let id = unsafe { block.as_ref() }.shared.id;
        // SAFETY: as above; the block is neither read nor dropped again.
        unsafe { block.drop_in_place() };
        // SAFETY: `create` took the block from `blocks::allocate::<Self>()`,
        // and its value was just dropped.
        unsafe { blocks::free(block) };
        // Every entry held a reference, so no table links one any more: the
        // slot is free for the next key.
        slots::release(id);
    }

    /// A copy of the key's hooks (a few `fn` pointers): a copy, so that no
    /// reference outlives the caller's guarantee that the key is live.
    ///
    /// # Safety
    /// `key` heads a live `KeyBox<T>`.
    pub(crate) unsafe fn hooks(key: NonNull<KeyShared>) -> Hooks<T> {
        // SAFETY: the caller guarantees `key` heads a live `KeyBox<T>` (repr(C),
        // head first), and hooks are never written after `create`.
        unsafe { (*key.cast::<Self>().as_ptr()).hooks }
    }

    /// # Safety
    /// Called on the entry's owning thread; `key` heads a live `KeyBox<T>` and
    /// `entry` is a live entry of that key.
    unsafe fn inherit(key: NonNull<KeyShared>, entry: NonNull<ErasedEntry>) -> Option<Installer> {
        // SAFETY: guaranteed by the caller.
        let hooks = unsafe { Self::hooks(key) }.inherit?;
        // SAFETY: entries of this key store a `T`; we are on the owning thread.
        let entry = unsafe { Entry::<T>::from_erased(entry) };
        let child = entry.with_shared(|value| (hooks.child_value)(value))?;
        // SAFETY: `key` is live; the installer holds its own pin.
        let key = unsafe { KeyPin::pin_raw(key) };
        Some((hooks.package)(key, child))
    }

    /// # Safety
    /// As for [`Self::inherit`].
    unsafe fn reveal(key: NonNull<KeyShared>, entry: NonNull<ErasedEntry>) -> Option<String> {
        // SAFETY: guaranteed by the caller.
        let reveal = unsafe { Self::hooks(key) }.reveal?;
        struct Shown<'a, T>(&'a T, fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result);
        impl<T> fmt::Display for Shown<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (self.1)(self.0, f)
            }
        }
        // SAFETY: entries of this key store a `T`; we are on the owning thread.
        let entry = unsafe { Entry::<T>::from_erased(entry) };
        entry.with_shared(|value| Shown(value, reveal).to_string())
    }
}
