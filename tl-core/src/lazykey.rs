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
use crate::keyref::{KeyRef, NewKey};
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

    /// The id, creating the key with `create` on first use.
    #[inline]
    pub(crate) fn id(&self, create: impl FnOnce() -> NewKey) -> u64 {
        let id = self.id_or_zero();
        if id != 0 {
            id
        } else {
            self.publish(create()).0
        }
    }

    /// The id, and the new key's spare holder reference when this call
    /// created the key (see `NewKey`): for the caller's first entry.
    #[inline]
    pub(crate) fn id_and_spare(&self, create: impl FnOnce() -> NewKey) -> (u64, Option<KeyRef>) {
        let id = self.id_or_zero();
        if id != 0 {
            (id, None)
        } else {
            self.publish(create())
        }
    }

    /// Publishes `ours` unless another thread published its key first; the
    /// published key's id, and `ours`' spare if `ours` was published.
    #[cold]
    #[inline(never)]
    fn publish(&self, ours: NewKey) -> (u64, Option<KeyRef>) {
        let NewKey { handle, spare } = ours;
        let ours = handle.into_raw();
        let (published, spare) = match self.key.compare_exchange(
            ptr::null_mut(),
            ours.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => (ours, Some(spare)),
            Err(theirs) => {
                // SAFETY: `ours` was never published; we own both its
                // references, which were its only ones.
                drop(unsafe { KeyRef::from_raw(ours) });
                drop(spare);
                // SAFETY: a published key pointer is non-null.
                (unsafe { NonNull::new_unchecked(theirs) }, None)
            }
        };
        // SAFETY: the handle's published reference keeps the key alive.
        let id = unsafe { published.as_ref() }.id;
        self.id.store(id, Ordering::Release);
        (id, spare)
    }

    /// The key's id and block, creating the key if needed; the block stays
    /// live while `self` is. The pointer comes from the atomic, not from a
    /// reference: it carries the provenance the block's eventual
    /// drop and free need.
    pub(crate) fn parts(&self, create: impl FnOnce() -> NewKey) -> (u64, NonNull<KeyShared>) {
        let id = self.id(create);
        let key =
            NonNull::new(self.key.load(Ordering::Acquire)).expect("key published with its id");
        (id, key)
    }

    /// The key, creating it if needed.
    pub(crate) fn key(&self, create: impl FnOnce() -> NewKey) -> &KeyShared {
        let (_, key) = self.parts(create);
        // SAFETY: our reference keeps the key alive while `self` is borrowed.
        unsafe { key.as_ref() }
    }

    /// A new holder reference to the key, creating it if needed.
    pub(crate) fn key_ref(&self, create: impl FnOnce() -> NewKey) -> KeyRef {
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
        // A task's carried value or an inheritance in flight may be turning
        // a pin into a holder on another thread right now (`carry`,
        // `inherit::package`): the fence pairs with theirs, so either they
        // see the key dead, or the holder count read below sees the new
        // holder and the death is announced (and `exclusive` below is not
        // taken while that entry holds the key). Only those two upgrade a
        // pin, so other keys need no fence:
        // - An inheritable key always fences: `inherit::capture` pins it on
        //   the parent through the parent's entry, not this handle, so
        //   nothing orders that pin before this drop and a pin count read
        //   here can be a stale 1. The loom model
        //   `inheritance_races_key_death_on_another_thread` found both
        //   results of skipping it: a child's value stranded, and the key
        //   block freed under the child's entry.
        // - A task's `Carried` pins the key through this handle, so the pin
        //   happens before this drop and the count read here sees it; a
        //   count of 1 read after the task released its pin synchronizes
        //   with that release, and so sees any holder the task made before
        //   (the count is read before the holders for that reason). The loom
        //   model `carried_value_races_key_death` checks this branch.
        if key.inheritable || key.pin_count() > 1 {
            fence(Ordering::SeqCst);
        }
        // This thread's own value goes now; other threads reclaim theirs at
        // their next bind, unbind, scope or task start, told by the death epoch.
        let own = map::with(|map| map.unlink(key.id));
        // SAFETY: `unlink` hands over an unlinked, live entry of this thread.
        let own_ref = own.map(|entry| unsafe { entry.as_ref() }.take_key_ref());
        // References: this handle, our own entry, and everyone else's.
        let others = key.holder_count() - 1 - usize::from(own_ref.is_some());
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
            key.free_exclusive(own_ref);
        } else {
            drop(own_ref);
            drop(key);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use core::panic::Location;

    use super::LazyKey;
    use crate::key::Policy;
    use crate::keybox::{Hooks, KeyBox, KeySpec};

    fn spec() -> KeySpec<u8> {
        KeySpec {
            name: Some("lazykey::tests"),
            declared_at: Location::caller(),
            policy: Policy::TaskScoped,
            hooks: Hooks::NONE,
        }
    }

    /// The creator of the published key gets its spare, and the handle and
    /// the spare are the key's two holders; a key that lost the race is
    /// freed with both its references (Miri reports it leaked otherwise).
    #[test]
    fn the_published_key_hands_out_its_spare_and_a_losing_key_is_freed() {
        let spec = spec();
        let lazy = LazyKey::new();
        let (id, spare) = lazy.id_and_spare(|| KeyBox::create(&spec));
        let spare = spare.expect("this call created the key");
        assert_eq!(spare.id, id);
        assert_eq!(lazy.existing().unwrap().holder_count(), 2);

        let (again, lost) = lazy.publish(KeyBox::create(&spec));
        assert_eq!((again, lost.is_none()), (id, true));
        let (again, none) = lazy.id_and_spare(|| unreachable!("created already"));
        assert_eq!((again, none.is_none()), (id, true));

        drop(spare);
        assert_eq!(lazy.existing().unwrap().holder_count(), 1);
    }

    /// A key created for its id alone releases the spare at once.
    #[test]
    fn a_key_created_for_its_id_keeps_only_the_handle_as_holder() {
        let spec = spec();
        let lazy = LazyKey::new();
        let id = lazy.id(|| KeyBox::create(&spec));
        assert_eq!(lazy.existing_id(), Some(id));
        assert_eq!(lazy.existing().unwrap().holder_count(), 1);
    }
}
