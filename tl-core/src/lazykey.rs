//! The key behind a [`ThreadLocal`](crate::ThreadLocal) handle: created on
//! first use, so that a handle can be a `static` with a `const` constructor,
//! and killed when the handle is dropped.
//!
//! # Invariants
//! - `key` is published (one owned holder reference) before `id`, so a
//!   reader that sees a non-zero `id` also sees the key.
//! - Once published, the key stays alive at least until this `LazyKey` is
//!   dropped, which kills it, announces the death to threads still holding
//!   values, and releases the reference.

use core::ptr::{self, NonNull};

use crate::death;
use crate::key::KeyShared;
use crate::keyref::KeyRef;
use crate::map;
use crate::sync::{AtomicPtr, AtomicU64, Ordering, const_unless_loom, fence};

pub(crate) struct LazyKey {
    /// The key's id once created; 0 before.
    id: AtomicU64,
    /// One owned key reference once created (published before `id`).
    key: AtomicPtr<KeyShared>,
}

impl LazyKey {
    const_unless_loom! {
        pub(crate) fn new() -> Self {
            Self {
                id: AtomicU64::new(0),
                key: AtomicPtr::new(ptr::null_mut()),
            }
        }
    }

    /// The id, or 0 before the key exists: id 0 is never a key's, so a
    /// lookup with it just misses (the hot path has no "created?" branch).
    #[inline]
    pub(crate) fn id_or_zero(&self) -> u64 {
        self.id.load(Ordering::Acquire)
    }

    /// The id if the key exists; `None` means no thread ever bound a value.
    #[inline]
    pub(crate) fn existing_id(&self) -> Option<u64> {
        let id = self.id_or_zero();
        (id != 0).then_some(id)
    }

    /// The id, creating the key with `create` on first use (which returns
    /// a new key and its one reference).
    #[inline]
    pub(crate) fn id(&self, create: impl FnOnce() -> NonNull<KeyShared>) -> u64 {
        let id = self.id_or_zero();
        if id != 0 { id } else { self.publish(create()) }
    }

    #[cold]
    #[inline(never)]
    fn publish(&self, ours: NonNull<KeyShared>) -> u64 {
        let published = match self.key.compare_exchange(
            ptr::null_mut(),
            ours.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => ours,
            Err(theirs) => {
                // SAFETY: `ours` was never published; we own its only reference.
                drop(unsafe { KeyRef::from_raw(ours) });
                // SAFETY: a published key pointer is non-null.
                unsafe { NonNull::new_unchecked(theirs) }
            }
        };
        // SAFETY: our reference keeps the published key alive.
        let id = unsafe { published.as_ref() }.id;
        self.id.store(id, Ordering::Release);
        id
    }

    /// The key's id and block, creating the key if needed; the block stays
    /// live while `self` is. The pointer comes from the atomic, not from a
    /// reference: it carries the provenance the block's eventual
    /// drop and free need.
    pub(crate) fn parts(
        &self,
        create: impl FnOnce() -> NonNull<KeyShared>,
    ) -> (u64, NonNull<KeyShared>) {
        let id = self.id(create);
        let key =
            NonNull::new(self.key.load(Ordering::Acquire)).expect("key published with its id");
        (id, key)
    }

    /// The key, creating it if needed.
    pub(crate) fn key(&self, create: impl FnOnce() -> NonNull<KeyShared>) -> &KeyShared {
        let (_, key) = self.parts(create);
        // SAFETY: our reference keeps the key alive while `self` is borrowed.
        unsafe { key.as_ref() }
    }

    /// A new holder reference to the key, creating it if needed.
    pub(crate) fn key_ref(&self, create: impl FnOnce() -> NonNull<KeyShared>) -> KeyRef {
        let (_, key) = self.parts(create);
        // SAFETY: we hold a reference, so the key is live.
        unsafe { KeyRef::clone_from_raw(key) }
    }

    /// The key if it exists (without creating it).
    #[inline]
    pub(crate) fn existing(&self) -> Option<&KeyShared> {
        let key = self.key.load(Ordering::Acquire);
        // SAFETY: a published key is live while `self` is.
        unsafe { key.as_ref() }
    }
}

impl Drop for LazyKey {
    /// Key death: the key is marked dead, this thread's own value dropped at
    /// once, and the death announced to other threads holding values.
    fn drop(&mut self) {
        let Some(key) = NonNull::new(self.key.load(Ordering::Acquire)) else {
            return;
        };
        // SAFETY: the handle owned this reference; nothing else will release it.
        let key = unsafe { KeyRef::from_raw(key) };
        key.kill();
        // An inheritance in flight may be turning its pin into a holder on
        // another thread right now: the fence pairs with the installer's, so
        // either it sees the key dead, or the holder count read below sees
        // it and the death is announced (and `exclusive` below is not taken
        // while the child's entry holds the key). Unconditional: the pin was
        // taken by `inherit::capture` on the parent, through the parent's
        // entry, not this handle, so nothing orders it before this drop and a
        // `pin_count() > 1` test here can read a stale 1. The loom model
        // `inheritance_races_key_death_on_another_thread` found both results
        // of skipping it: a child's value stranded, and the key block freed
        // under the child's entry. One fence per key death is cheap.
        fence(Ordering::SeqCst);
        // This thread's own value goes now; other threads reclaim theirs at
        // their next bind, unbind, scope or task start, told by the death epoch.
        let own = map::with(|map| map.unlink(key.id));
        // References: this handle, our own entry, and everyone else's.
        let others = key.holder_count() - 1 - usize::from(own.is_some());
        if others > 0 {
            map::announce_death();
        }
        death::publish(&key, others);
        // With no other holder and no pin, nothing can reach the key but this
        // handle and its own entry (new references are only ever made from
        // existing ones), so the last two releases need no atomic.
        let exclusive = others == 0 && key.pin_count() == 1;
        if let Some(entry) = own {
            map::drop_entry(entry);
        }
        if exclusive {
            key.free_exclusive();
        } else {
            drop(key);
        }
    }
}
