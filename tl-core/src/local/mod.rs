//! [`ThreadLocal`]: the handle users declare, and its accessors. Its
//! `const` constructors and builder methods are in `builder`; its key, created
//! on first use and killed on drop, in `crate::lazykey`.

mod builder;

use core::fmt;
use core::marker::PhantomData;
use core::panic::Location;
use core::ptr::NonNull;

use crate::entry::{BindMeta, Entry};
use crate::error::{AccessError, SetError};
use crate::guard::{Guard, Scope};
use crate::key::{KeyInfo, KeyShared};
use crate::keybox::{KeyBox, KeySpec};
use crate::keyref::{KeyRef, NewKey};
use crate::lazykey::LazyKey;
use crate::map;
use crate::ops;

/// A thread-local variable with Java's semantics: each thread sees its own
/// value, bound with [`set`](Self::set) and unbound with [`remove`](Self::remove).
///
/// Usable as a `static` (every constructor is `const`, and the underlying key
/// is created on first use) or as an ordinary field: dropping a non-static
/// `ThreadLocal` kills its key, and every thread's value for it is dropped on
/// that thread at its next bind, unbind, scope or task start (reads do not
/// look), or at once on the dropping thread. The values a thread still holds for a dead key are what the audit
/// registry reports as stale.
///
/// Values need not be `Send` (an `Rc` or `RefCell` works); they are only ever
/// touched, and dropped, on the thread that bound them.
///
/// ```
/// use tl_core::ThreadLocal;
///
/// static CURRENT_USER: ThreadLocal<String> = ThreadLocal::new().named("CURRENT_USER");
///
/// assert_eq!(CURRENT_USER.set("alice".to_owned()), None);
/// assert_eq!(CURRENT_USER.get().as_deref(), Some("alice"));
/// assert_eq!(CURRENT_USER.with(|user| user.map(String::len)), Some(5));
/// assert_eq!(CURRENT_USER.remove().as_deref(), Some("alice"));
/// assert!(!CURRENT_USER.is_set());
/// ```
pub struct ThreadLocal<T: 'static> {
    /// Created on first use; its drop is the key's death.
    key: LazyKey,
    spec: KeySpec<T>,
    init: Init<T>,
    _marker: PhantomData<fn() -> T>,
}

enum Init<T> {
    None,
    Fn(fn() -> T),
    Boxed(Box<dyn Fn() -> T + Send + Sync>),
}

impl<T> Init<T> {
    fn is_some(&self) -> bool {
        !matches!(self, Self::None)
    }

    fn call(&self) -> Option<T> {
        match self {
            Self::None => None,
            Self::Fn(f) => Some(f()),
            Self::Boxed(f) => Some(f()),
        }
    }
}

// === impl ThreadLocal: the key ===

impl<T: 'static> ThreadLocal<T> {
    /// Creates this handle's key (`LazyKey` publishes it once).
    fn create_key(&self) -> NewKey {
        KeyBox::<T>::create(&self.spec)
    }

    /// The key id, creating the key on first use.
    #[inline]
    fn key_id(&self) -> u64 {
        self.key.id(|| self.create_key())
    }

    /// The key id if the key exists; `None` means no thread ever bound a value.
    #[inline]
    fn existing_id(&self) -> Option<u64> {
        self.key.existing_id()
    }

    /// A new reference to the key, created if needed.
    fn key_ref(&self) -> KeyRef {
        self.key.key_ref(|| self.create_key())
    }

    /// The key, created if needed; the handle's reference keeps it alive.
    fn key(&self) -> &KeyShared {
        self.key.key(|| self.create_key())
    }

    /// The key's id and block, creating the key if needed; the handle's
    /// reference keeps the block live while the handle is.
    pub(crate) fn key_parts(&self) -> (u64, NonNull<KeyShared>) {
        self.key.parts(|| self.create_key())
    }

    /// What binding `value` at `site` would record, except the sequence
    /// number (0: the binder assigns one).
    pub(crate) fn bind_meta_for(&self, value: &T, site: &'static Location<'static>) -> BindMeta {
        BindMeta {
            site,
            seq: 0,
            now_ms: crate::clock::coarse_ms(),
            bytes: Some(self.spec.hooks.heap_size.map_or(size_of::<T>(), |heap| {
                size_of::<T>().saturating_add(heap(value))
            })),
            by_init: false,
        }
    }

    /// The key's id: unique for the process, never reused. Creates the key if
    /// needed.
    pub fn id(&self) -> u64 {
        self.key_id()
    }

    /// This thread-local's report metadata. Creates the key if needed.
    pub fn info(&self) -> KeyInfo {
        self.key().info()
    }

    /// Names the key for reports after construction, unless it was labelled
    /// already; returns whether this call labelled it. `declared_at` replaces
    /// the declaration site when given.
    ///
    /// `#[derive(ThreadLocalScoped)]` uses it to name a field
    /// `Service.field`, declared at the field; `#[thread_local_scoped(KEY)]`
    /// to name an unnamed static `KEY` (through `__private::label`). Costs
    /// two loads once labelled.
    #[inline]
    pub(crate) fn label(
        &self,
        name: &'static str,
        declared_at: Option<&'static Location<'static>>,
    ) -> bool {
        if self.key.existing().is_some_and(KeyShared::is_labelled) {
            return false;
        }
        self.label_slow(name, declared_at)
    }

    #[cold]
    #[inline(never)]
    fn label_slow(
        &self,
        name: &'static str,
        declared_at: Option<&'static Location<'static>>,
    ) -> bool {
        self.key().set_label(name, declared_at)
    }
}

// === impl ThreadLocal: access ===

impl<T: 'static> ThreadLocal<T> {
    /// Binds `value` on this thread, returning the value it replaces
    /// (Java's `set`, which returns nothing).
    ///
    /// Inside a [`guard`](Self::guard) of this thread-local, a value bound
    /// before the guard is not returned but kept by the guard, which restores
    /// it on exit.
    ///
    /// # Panics
    /// If the value is borrowed by an enclosing [`with`](Self::with) or
    /// [`with_mut`](Self::with_mut) on this thread (see [`try_set`](Self::try_set)).
    /// During thread exit, after this thread's thread-locals were destroyed,
    /// `value` is dropped at once and `None` is returned.
    #[inline]
    #[track_caller]
    pub fn set(&self, value: T) -> Option<T> {
        match self.set_at(value, Location::caller()) {
            Ok(previous) => previous,
            Err(SetError {
                value,
                kind: AccessError::ThreadExiting,
            }) => {
                // Dropped from a destructor during thread exit: a panic
                // there would abort the process.
                map::drop_caught(move || drop(value));
                None
            }
            Err(SetError {
                value,
                kind: AccessError::Borrowed,
            }) => {
                drop(value);
                ops::borrowed_panic()
            }
        }
    }

    /// Binds `value`, or hands it back with the reason it could not be bound.
    #[inline]
    #[track_caller]
    pub fn try_set(&self, value: T) -> Result<Option<T>, SetError<T>> {
        self.set_at(value, Location::caller())
    }

    #[inline]
    fn set_at(&self, value: T, site: &'static Location<'static>) -> Result<Option<T>, SetError<T>> {
        // A key created here comes with a spare reference for its first
        // entry, which this thread is about to make (see `NewKey`).
        let (id, spare) = self.key.id_and_spare(|| self.create_key());
        // SAFETY: the id is this handle's, whose values are `T`.
        unsafe {
            ops::set(id, value, site, &self.spec.hooks, || {
                spare.unwrap_or_else(|| self.key_ref())
            })
        }
    }

    /// Unbinds and returns this thread's value (Java's `remove`). The next
    /// read re-runs the initializer, if there is one.
    ///
    /// # Panics
    /// If the value is borrowed by an enclosing `with`/`with_mut` on this thread.
    #[inline]
    pub fn remove(&self) -> Option<T> {
        let id = self.existing_id()?;
        // SAFETY: the id is this handle's, whose values are `T`.
        match unsafe { ops::remove::<T>(id) } {
            Ok(value) => value,
            Err(AccessError::ThreadExiting) => None,
            Err(AccessError::Borrowed) => ops::borrowed_panic(),
        }
    }

    /// Whether a value is bound on this thread (never runs the initializer).
    #[inline]
    pub fn is_set(&self) -> bool {
        let Some(id) = self.existing_id() else {
            return false;
        };
        map::with(|map| {
            map.find_no_sweep(id).is_some_and(|header| {
                // SAFETY: linked entries are live.
                unsafe { header.as_ref() }.is_set()
            })
        })
    }

    /// Clones this thread's value out (Java's `get`), binding the initial
    /// value first if there is an initializer and nothing is bound.
    ///
    /// # Panics
    /// If the value is mutably borrowed by an enclosing `with_mut`.
    #[inline(always)]
    #[track_caller]
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        // No "key created yet?" branch: id 0 is never a key's, so its lookup
        // misses and falls to the slow path, which creates the key if needed.
        let id = self.key.id_or_zero();
        // SAFETY: the id is this handle's (or 0, which finds nothing), whose
        // values are `T`; the handle keeps the key alive during the clone.
        if let Some(value) = unsafe { ops::clone_if_readable::<T>(id) } {
            return Some(value);
        }
        self.get_slow(id, Location::caller())
    }

    /// [`Self::get`] when the fast path declined: unbound, borrowed, being
    /// cloned (a `get` in the value's `Clone`), or no entry yet.
    #[cold]
    #[inline(never)]
    fn get_slow(&self, id: u64, site: &'static Location<'static>) -> Option<T>
    where
        T: Clone,
    {
        // SAFETY: as in `get`.
        if let Some(entry) = map::with(|map| unsafe { ops::find_for_read::<T>(map, id) }) {
            match entry.clone_out() {
                Ok(Some(value)) => return Some(value),
                Ok(None) => {}
                Err(_) => ops::borrowed_panic(),
            }
        }
        self.with_unbound(site, |value| value.cloned())
    }

    /// Runs `f` with a reference to this thread's value, without cloning it,
    /// binding the initial value first if there is an initializer and nothing
    /// is bound. `f` may use any thread-local, including this one, except to
    /// replace or remove this value while it is borrowed.
    ///
    /// After this thread's thread-locals were destroyed (thread exit), `f`
    /// gets `None` and the initializer does not run.
    ///
    /// # Panics
    /// If the value is mutably borrowed by an enclosing `with_mut` (see
    /// [`try_with`](Self::try_with)).
    #[inline(always)]
    #[track_caller]
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        match self.borrow_bound() {
            Ok(Some(value)) => f(Some(&value)),
            Ok(None) => self.with_unbound(Location::caller(), f),
            Err(_) => ops::borrowed_panic(),
        }
    }

    /// [`Self::with`] when nothing is bound: kept out of line so that the
    /// hot path's borrow and release compile to straight-line code.
    #[cold]
    #[inline(never)]
    fn with_unbound<R>(
        &self,
        site: &'static Location<'static>,
        f: impl FnOnce(Option<&T>) -> R,
    ) -> R {
        match self.borrow_unbound(site) {
            Ok(Some(value)) => f(Some(&value)),
            Ok(None) | Err(AccessError::ThreadExiting) => f(None),
            Err(AccessError::Borrowed) => ops::borrowed_panic(),
        }
    }

    /// Like [`with`](Self::with), but reports a mutable borrow or a destroyed
    /// map as an error instead of panicking or passing `None`.
    #[inline]
    #[track_caller]
    pub fn try_with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> Result<R, AccessError> {
        match self.borrow(Location::caller())? {
            Some(value) => Ok(f(Some(&value))),
            None => Ok(f(None)),
        }
    }

    /// Runs `f` with a mutable reference to this thread's value, binding the
    /// initial value first if needed.
    ///
    /// # Panics
    /// If the value is already borrowed by an enclosing `with`/`with_mut`.
    #[track_caller]
    pub fn with_mut<R>(&self, f: impl FnOnce(Option<&mut T>) -> R) -> R {
        let site = Location::caller();
        let Some(id) = self.id_for_read() else {
            return f(None);
        };
        // SAFETY: the id is this handle's, whose values are `T`; the handle
        // keeps the key, hence the entry, alive while `f` runs.
        let entry = map::with(|map| unsafe { ops::find_for_read::<T>(map, id) });
        let entry = match entry {
            Some(entry) if entry.header().is_set() => Some(entry),
            _ => self.initialize(id, site).unwrap_or(None),
        };
        let Some(entry) = entry else { return f(None) };
        let mut value = match entry.borrow_mut() {
            Ok(Some(value)) => value,
            Ok(None) => return f(None),
            Err(_) => ops::borrowed_panic(),
        };
        let result = f(Some(value.value()));
        if let Some(heap) = self.spec.hooks.heap_size {
            let bytes = size_of::<T>().saturating_add(heap(value.value()));
            value.record_bytes(bytes);
        }
        result
    }

    /// Removes and returns the value, or `T::default()` if none was bound;
    /// the thread-local is left unbound (unlike `Cell::take`, nothing is left
    /// behind to leak).
    #[inline]
    pub fn take(&self) -> T
    where
        T: Default,
    {
        self.remove().unwrap_or_default()
    }

    /// Binds `value` and returns the previous value, or `T::default()` if none
    /// was bound.
    #[inline]
    #[track_caller]
    pub fn replace(&self, value: T) -> T
    where
        T: Default,
    {
        self.set(value).unwrap_or_default()
    }

    /// Binds `value` until the returned [`Scope`] is dropped, which removes it
    /// or restores the value bound before, on every path including a panic.
    ///
    /// ```
    /// use tl_core::ThreadLocal;
    ///
    /// static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
    ///
    /// {
    ///     let _outer = REQUEST_ID.scope(1);
    ///     {
    ///         let _inner = REQUEST_ID.scope(2);
    ///         assert_eq!(REQUEST_ID.get(), Some(2));
    ///     }
    ///     assert_eq!(REQUEST_ID.get(), Some(1));
    /// }
    /// assert_eq!(REQUEST_ID.get(), None);
    /// ```
    ///
    /// # Panics
    /// As [`set`](Self::set).
    #[track_caller]
    pub fn scope(&self, value: T) -> Scope<T> {
        let id = self.key_id();
        // How the displaced value was bound, so that it comes back as it was
        // (an auditor must not see it as newly bound).
        let before = map::with(|map| {
            // SAFETY: linked entries are live; the sweep inside `find` ran
            // before the header was fetched, and nothing runs after.
            let header = map.find(id).map(|header| unsafe { header.as_ref() });
            header
                .filter(|header| header.is_set())
                .map(crate::entry::EntryHeader::bind_meta)
        });
        let previous = self.set(value);
        let previous = previous.map(|value| {
            // `before` is missing only if a heap size hook bound the value
            // during `set`; restore it as if bound by this call.
            let meta = before.unwrap_or_else(|| BindMeta {
                site: Location::caller(),
                seq: 0,
                now_ms: crate::clock::coarse_ms(),
                bytes: None,
                by_init: false,
            });
            (value, meta)
        });
        Scope::new(id, previous)
    }

    /// A [`Guard`] that, when dropped, removes whatever was bound after its
    /// creation and restores what an enclosing scope had bound: Java's
    /// `try { ... } finally { tl.remove(); }`, made nesting-safe.
    ///
    /// ```
    /// use tl_core::ThreadLocal;
    ///
    /// static CONN: ThreadLocal<String> = ThreadLocal::new();
    ///
    /// fn handler(fail: bool) -> Result<(), String> {
    ///     let _guard = CONN.guard();
    ///     CONN.set("connection #7".to_owned());
    ///     if fail {
    ///         return Err("early return".to_owned()); // still cleaned up
    ///     }
    ///     Ok(())
    /// }
    ///
    /// handler(true).unwrap_err();
    /// assert!(!CONN.is_set());
    ///
    /// let _outer = CONN.scope("outer".to_owned());
    /// handler(false).unwrap();
    /// assert_eq!(CONN.get().as_deref(), Some("outer"));
    /// ```
    pub fn guard(&self) -> Guard<T> {
        // SAFETY: the id is this handle's, whose values are `T`.
        unsafe { Guard::enter(self.key_id()) }
    }

    /// The id to read with: the existing one, or a new key when there is an
    /// initializer to bind; `None` when nothing can be bound.
    #[inline]
    fn id_for_read(&self) -> Option<u64> {
        match self.existing_id() {
            Some(id) => Some(id),
            None if self.init.is_some() => Some(self.key_id()),
            None => None,
        }
    }

    /// Borrows this thread's value, binding the initial value if needed.
    #[inline(always)]
    fn borrow(
        &self,
        site: &'static Location<'static>,
    ) -> Result<Option<crate::entry::Ref<'_, T>>, AccessError> {
        match self.borrow_bound()? {
            Some(value) => Ok(Some(value)),
            None => self.borrow_unbound(site),
        }
    }

    /// Borrows the bound value; `Ok(None)` if none is bound (or no key exists).
    #[inline(always)]
    fn borrow_bound(&self) -> Result<Option<crate::entry::Ref<'_, T>>, AccessError> {
        // Id 0 (no key yet) is never a key's, so its lookup just misses.
        let id = self.key.id_or_zero();
        // SAFETY: the id is this handle's (or 0, which finds nothing), whose
        // values are `T`; the handle keeps the key alive while borrowed.
        match map::with(|map| unsafe { ops::find_for_read::<T>(map, id) }) {
            Some(entry) => entry.borrow(),
            None => Ok(None),
        }
    }

    /// The rest of [`Self::borrow`]: nothing is bound, or there is no key yet;
    /// binds the initial value if there is an initializer.
    #[cold]
    #[inline(never)]
    fn borrow_unbound(
        &self,
        site: &'static Location<'static>,
    ) -> Result<Option<crate::entry::Ref<'_, T>>, AccessError> {
        let Some(id) = self.id_for_read() else {
            return if map::with(map::LocalMap::is_destroyed) {
                Err(AccessError::ThreadExiting)
            } else {
                Ok(None)
            };
        };
        match self.initialize(id, site)? {
            Some(entry) => entry.borrow(),
            None => Ok(None),
        }
    }

    /// Binds the initial value when nothing is bound. `Ok(None)` without an
    /// initializer.
    #[cold]
    #[inline(never)]
    fn initialize(
        &self,
        id: u64,
        site: &'static Location<'static>,
    ) -> Result<Option<&Entry<T>>, AccessError> {
        if !self.init.is_some() {
            return if map::with(map::LocalMap::is_destroyed) {
                Err(AccessError::ThreadExiting)
            } else {
                Ok(None)
            };
        }
        if map::with(map::LocalMap::is_destroyed) {
            return Err(AccessError::ThreadExiting);
        }
        // Java's `setInitialValue`: the initializer may use other thread-locals,
        // or even bind this one; its result wins and any value it bound here is
        // dropped, before the entry is looked up again.
        let value = self.init.call().expect("checked above");
        let displaced = match self.set_at(value, site) {
            Ok(displaced) => displaced,
            Err(SetError { value, kind }) => {
                map::drop_caught(move || drop(value));
                return Err(kind);
            }
        };
        // Marked before `displaced` (user code) drops, while the bind is ours.
        map::with(|map| {
            if let Some(header) = map.find_no_sweep(id) {
                // SAFETY: a linked entry of this thread, and no user code runs
                // while the reference is held.
                unsafe { header.as_ref() }.mark_by_initializer();
            }
        });
        drop(displaced);
        // SAFETY: the id is this handle's, whose values are `T`.
        Ok(map::with(|map| unsafe { ops::find::<T>(map, id) }))
    }
}

impl<T: 'static> fmt::Debug for ThreadLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadLocal")
            .field("name", &self.spec.name)
            .field("type", &core::any::type_name::<T>())
            .field("declared_at", &format_args!("{}", self.spec.declared_at))
            .field("policy", &self.spec.policy)
            .finish_non_exhaustive()
    }
}
