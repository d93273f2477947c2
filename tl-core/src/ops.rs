//! Typed operations on the current thread's entry for a key id.
//!
//! Shared by the `ThreadLocal` methods, the guards and inheritance; all of
//! them rely on the key invariant that an id only ever maps to entries holding
//! one type `T` (see `key`).

use core::panic::Location;

use crate::checkpoint;
use crate::clock;
use crate::entry::{BindMeta, Entry};
use crate::error::{AccessError, SetError};
use crate::keybox::Hooks;
use crate::keyref::KeyRef;
use crate::map::{self, LocalMap, Unmirrored};

/// The current thread's entry for `id`, if it has one.
///
/// An entry is freed only when its key dies (by a sweep, which runs user
/// `Drop` code, or by the handle's own `drop`) or when the thread exits, and
/// never while it is borrowed. So the reference stays valid while no user
/// code runs, and across user code when the caller holds the key's handle
/// (which keeps the key alive) or a borrow of the entry.
///
/// The lifetime is the caller's, guarded only by this contract, for the
/// reason given on `Entry::from_header`: the limits above are not a scope
/// that a Rust lifetime can name.
///
/// # Safety
/// `id` is the id of a key whose values are `T`, and the caller uses the
/// reference within the limits above.
#[inline]
pub(crate) unsafe fn find<'a, T: 'static>(map: &LocalMap, id: u64) -> Option<&'a Entry<T>> {
    // SAFETY: entries found under `id` hold a `T`; lifetime per the caller.
    map.find(id)
        .map(|header| unsafe { Entry::from_header(header) })
}

/// [`find`] without first reclaiming dead keys' values: the read path
/// (`get`, `with`, `with_mut`, `is_set`), which so pays no death-epoch
/// check. Reads never reach a dead key's entry (ids are never reused), and
/// the sweep runs where a thread changes its bindings: `set`, `remove`,
/// scopes, guards and the start of a task.
///
/// # Safety
/// As for [`find`].
#[inline]
pub(crate) unsafe fn find_for_read<'a, T: 'static>(
    map: &LocalMap,
    id: u64,
) -> Option<&'a Entry<T>> {
    // SAFETY: entries found under `id` hold a `T`; lifetime per the caller.
    map.find_no_sweep(id)
        .map(|header| unsafe { Entry::from_header(header) })
}

/// `get`'s fast path: the current thread's value for `id`, cloned, if its
/// entry is found at once and readable; `None` sends the caller to the full
/// path (unbound, borrowed, no entry yet, or a key not created yet: id 0).
///
/// # Safety
/// `id` is the id of a key whose values are `T`, or 0, and the caller keeps
/// the key alive (holds its handle).
#[inline]
pub(crate) unsafe fn clone_if_readable<T: Clone + 'static>(id: u64) -> Option<T> {
    // Two copies of the check, one per kind of slot (see `map`'s docs). With
    // one shared copy, the compiler's layout either made the table's path
    // take 1.6x its time or lost the mirror's gain (the `get` and
    // `get_high_slot` benches, on an AMD EPYC).
    match map::with(|map| map.mirrored_at_slot_of(id)) {
        Ok(header) => {
            let header = header?;
            // SAFETY: found at `id`'s slot of the mirror of this thread's
            // table; linked entries are live, and this one stays so during
            // the clone: either it is `id`'s, whose key the caller keeps
            // alive, or the check fails before any user code runs. `id`'s
            // values are `T` (caller).
            unsafe { Entry::<T>::clone_if_readable(header, id) }
        }
        Err(Unmirrored) => {
            let header = map::with(|map| map.at_slot_of(id))?;
            // SAFETY: as above, found in the table itself.
            unsafe { Entry::<T>::clone_if_readable(header, id) }
        }
    }
}

#[inline]
pub(crate) fn bind_meta<T>(
    map: &LocalMap,
    site: &'static Location<'static>,
    hooks: &Hooks<T>,
    value: &T,
) -> BindMeta {
    BindMeta {
        site,
        seq: map.next_seq(),
        now_ms: clock::coarse_ms(),
        bytes: hooks
            .heap_size
            .map(|heap| size_of::<T>().saturating_add(heap(value))),
        by_init: false,
    }
}

/// Binds `value` for `id`, creating the entry with `key` if this thread has none.
///
/// # Safety
/// `id` is the id of a key whose values are `T`, and `key()` returns a
/// reference to that key.
#[inline]
pub(crate) unsafe fn set<T: 'static>(
    id: u64,
    value: T,
    site: &'static Location<'static>,
    hooks: &Hooks<T>,
    key: impl FnOnce() -> KeyRef,
) -> Result<Option<T>, SetError<T>> {
    map::with(|map| {
        let meta = bind_meta(map, site, hooks, &value);
        // SAFETY: forwarded from the caller.
        match unsafe { find::<T>(map, id) } {
            Some(entry)
                if entry.header().is_plain()
                    && !checkpoint::may_displace_leftover(entry.header()) =>
            {
                Ok(entry.bind(value, meta))
            }
            Some(entry) => set_slow(map, entry, value, meta),
            None => insert(map, value, meta, key),
        }
    })
}

#[cold]
#[inline(never)]
fn set_slow<T: 'static>(
    map: &LocalMap,
    entry: &Entry<T>,
    value: T,
    meta: BindMeta,
) -> Result<Option<T>, SetError<T>> {
    if entry.header().is_borrowed() {
        return Err(SetError {
            value,
            kind: AccessError::Borrowed,
        });
    }
    let displaced = checkpoint::may_displace_leftover(entry.header())
        .then(|| checkpoint::displaced_leftover(map, entry.header()))
        .flatten();
    let previous = if entry.header().is_plain() {
        entry.bind(value, meta)
    } else {
        crate::guard::shielded_bind(entry, value, meta)
    };
    // After the bind, with no entry reference in use: the hook runs user code.
    if let Some((hook, task, leftover)) = displaced {
        hook(task, &leftover);
    }
    Ok(previous)
}

#[cold]
#[inline(never)]
fn insert<T: 'static>(
    map: &LocalMap,
    value: T,
    meta: BindMeta,
    key: impl FnOnce() -> KeyRef,
) -> Result<Option<T>, SetError<T>> {
    if !map.go_live() {
        return Err(SetError {
            value,
            kind: AccessError::ThreadExiting,
        });
    }
    map.link(Entry::allocate(key(), value, meta));
    Ok(None)
}

/// Unbinds the value for `id`.
///
/// # Safety
/// `id` is the id of a key whose values are `T`.
#[inline]
pub(crate) unsafe fn remove<T: 'static>(id: u64) -> Result<Option<T>, AccessError> {
    map::with(|map| {
        // SAFETY: forwarded from the caller.
        let Some(entry) = (unsafe { find::<T>(map, id) }) else {
            return if map.is_destroyed() {
                Err(AccessError::ThreadExiting)
            } else {
                Ok(None)
            };
        };
        if entry.header().is_plain() {
            return Ok(entry.unbind());
        }
        if entry.header().is_borrowed() {
            return Err(AccessError::Borrowed);
        }
        Ok(crate::guard::shielded_unbind(entry))
    })
}

#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn borrowed_panic() -> ! {
    panic!(
        "tl-core: thread-local value replaced or removed while borrowed by `with`/`with_mut` on this thread"
    )
}
