//! Inheritable thread-locals: Java's `InheritableThreadLocal`, with values
//! copied when a thread is spawned through [`crate::thread`], or when any
//! closure installs an [`Inheritance`] captured on the parent.

use core::panic::Location;

use crate::entry::EntryHeader;
use crate::key::Installer;
use crate::keybox::KeyBox;
use crate::keyref::KeyPin;
use crate::map;
use crate::ops;
use crate::sync::{Ordering, fence};

/// Packs a child value for the move to the child thread. Instantiated only
/// where `T: Send` is known (`ThreadLocal::inheritable_with`).
pub(crate) fn package<T: Send + 'static>(key: KeyPin, value: T) -> Installer {
    Installer::new(move |site| {
        // Install as a holder, unless the handle (and every entry) is gone.
        let Some(holder) = key.upgrade() else {
            return;
        };
        // Pairs with the fence in `ThreadLocal::drop`: either the dying
        // handle counts this holder (and announces the death), or this
        // sees the key dead.
        fence(Ordering::SeqCst);
        if !holder.is_alive() {
            return;
        }
        // SAFETY: `key` heads a live `KeyBox<T>`: the installer holds a pin.
        let hooks = unsafe { KeyBox::<T>::hooks(key.as_ptr()) };
        let id = key.id;
        // SAFETY: `id` is the id of `key`, whose values are `T`.
        let displaced = unsafe { ops::set(id, value, site, &hooks, || holder) };
        // A destroyed map hands the value back; dropping it must not panic
        // out of a thread's start.
        map::drop_caught(move || drop(displaced));
        // The key may have died after the check above, and this thread may
        // have swept before the value was bound, consuming the death notice:
        // the installer holds no handle, so it must look again itself.
        if !key.is_alive() {
            if let Some(entry) = map::with(|map| map.unlink(id)) {
                map::drop_entry(entry);
            }
        }
    })
}

/// The inheritable values of a parent thread, captured for a child.
///
/// ```
/// use tl_core::{ThreadLocal, inherit};
///
/// static TENANT: ThreadLocal<String> = ThreadLocal::new().inheritable();
///
/// TENANT.set("acme".to_owned());
/// let inherited = inherit::capture();
/// std::thread::spawn(move || {
///     inherited.install();
///     assert_eq!(TENANT.get().as_deref(), Some("acme"));
///     TENANT.remove();
/// })
/// .join()
/// .unwrap();
/// # TENANT.remove();
/// ```
#[must_use = "install it on the child thread"]
pub struct Inheritance {
    installers: Vec<Installer>,
    site: &'static Location<'static>,
}

/// Captures this thread's inheritable values: each child value is computed
/// now, on this thread, by the key's `child_value`. A value mutably borrowed
/// by an enclosing `with_mut` on this thread cannot be read, so it is not
/// captured.
#[track_caller]
pub fn capture() -> Inheritance {
    let site = Location::caller();
    let entries = map::with(|map| {
        map.reclaim_dead();
        map.entries()
            .into_iter()
            .filter_map(|header| {
                // SAFETY: linked entries are live; no user code has run yet.
                let header = unsafe { header.as_ref() };
                let key = header.key();
                (header.is_set() && key.is_alive() && key.inheritable).then(|| header.pin_key())
            })
            .collect::<Vec<_>>()
    });
    // `child_value` is user code that may bind or kill thread-locals, so each
    // entry is found again by id before use.
    let installers = entries
        .into_iter()
        .filter_map(|key| {
            let header = map::with(|map| map.find(key.id))?;
            // SAFETY: `key` and `header` belong together and are live on this
            // thread; `inherit` runs on the owning thread.
            unsafe { (key.ops.inherit)(key.as_ptr(), EntryHeader::erased(header)) }
        })
        .collect();
    Inheritance { installers, site }
}

impl Inheritance {
    /// Binds the captured values on the calling thread (keys that died since
    /// the capture are skipped).
    pub fn install(self) {
        for installer in self.installers {
            installer.install(self.site);
        }
    }

    /// How many values were captured.
    pub fn len(&self) -> usize {
        self.installers.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.installers.is_empty()
    }
}

impl core::fmt::Debug for Inheritance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inheritance")
            .field("values", &self.len())
            .finish()
    }
}
