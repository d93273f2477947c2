//! Keys: the shared, reference-counted identity behind every [`ThreadLocal`].
//!
//! # Design
//! A key is created lazily on a handle's first use (so a `ThreadLocal` can be a
//! `static` with a `const` constructor) and lives in one heap block, a
//! `KeyBox<T>` (see `keybox`), whose type-erased head is [`KeyShared`]. The handle holds one
//! reference; every per-thread entry holding a value for the key holds another.
//! That keeps a dead key's metadata readable for as long as any thread still
//! holds one of its values, which is exactly what a leak report needs.
//!
//! # Invariants
//! - Key ids are never reused (a recycled slot plus a new generation, see
//!   `slots`), so an id can never reach a value of another key (the
//!   `thread_local` crate's issue #75). The slot goes back for reuse only when
//!   the key's block is freed (`keybox`), after every entry of the key.
//! - An id belongs to exactly one `ThreadLocal<T>` handle, so every entry found
//!   under that id stores a `T`.
//! - `alive` goes from true to false once, when the handle is dropped.
//!
//! [`ThreadLocal`]: crate::ThreadLocal

use core::fmt;
use core::panic::Location;
use core::ptr::NonNull;

use crate::sync::{AtomicBool, AtomicUsize, OnceLock, Ordering};

/// How long a value is meant to stay bound on a thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Bound for one task (a request, a job) and removed before the task ends,
    /// like a Java `ThreadLocal` cleared in a `finally` block. A value still
    /// bound when its task ends on a pooled thread is a leak. The default.
    #[default]
    TaskScoped,
    /// A deliberate per-thread cache that lives as long as its thread (a
    /// scratch buffer, a per-thread RNG). Never reported as unreleased.
    PerThread,
}

impl Policy {
    /// `"task-scoped"` or `"per-thread"`, as used in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TaskScoped => "task-scoped",
            Self::PerThread => "per-thread",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name and declaration site given to a key after construction, by a derive
/// or a framework that knows the field better than the constructor call did.
#[derive(Clone, Copy)]
struct Label {
    name: &'static str,
    declared_at: &'static Location<'static>,
}

/// An entry of some key, type-erased, as the key's [`KeyOps`] receive it:
/// it heads an `entry::Entry<T>` of the key's value type. An opaque type, so
/// that this module needs nothing from the entry module above it; only
/// `entry` and `keybox` convert to and from it.
pub(crate) enum ErasedEntry {}

/// A child's copy of one inheritable value, ready to bind on the child
/// thread: made on the parent by the key's inherit hook (`inherit::package`),
/// run on the child by `Inheritance::install` with the capture's site.
pub(crate) struct Installer(Box<dyn FnOnce(&'static Location<'static>) + Send>);

impl Installer {
    pub(crate) fn new(install: impl FnOnce(&'static Location<'static>) + Send + 'static) -> Self {
        Self(Box::new(install))
    }

    /// Binds the value on the calling thread, recorded as bound at `site`.
    pub(crate) fn install(self, site: &'static Location<'static>) {
        (self.0)(site);
    }
}

/// Type-erased operations on a key's values, one static table per value
/// type (`keybox::KeyBox::<T>::OPS`). Each function's contract: the
/// `KeyShared` and `ErasedEntry` it gets belong to a key of that table's type.
pub(crate) struct KeyOps {
    /// Frees an unlinked entry of this key, dropping its value if one is bound.
    pub(crate) drop_entry: unsafe fn(NonNull<ErasedEntry>),
    /// Frees the key's block, once its last pin is released.
    pub(crate) free_key: unsafe fn(NonNull<KeyShared>),
    /// The child's copy of the entry's value, on the entry's thread.
    pub(crate) inherit: unsafe fn(NonNull<KeyShared>, NonNull<ErasedEntry>) -> Option<Installer>,
    /// The entry's value rendered by the key's opt-in hook, on the entry's thread.
    pub(crate) reveal: unsafe fn(NonNull<KeyShared>, NonNull<ErasedEntry>) -> Option<String>,
}

/// What a key's block records about it at creation (see [`KeyShared::new`]).
pub(crate) struct KeyMeta {
    pub(crate) name: Option<&'static str>,
    pub(crate) type_name: &'static str,
    pub(crate) declared_at: &'static Location<'static>,
    pub(crate) policy: Policy,
    pub(crate) value_size: usize,
    pub(crate) inheritable: bool,
    pub(crate) revealing: bool,
}

/// The type-erased head of a key's heap block.
#[repr(C)]
pub(crate) struct KeyShared {
    /// Holders: the handle and every entry (see `keyref`).
    pub(crate) holders: AtomicUsize,
    /// Pins, plus one shared by all holders; the block is freed at zero.
    pub(crate) pins: AtomicUsize,
    pub(crate) id: u64,
    name: Option<&'static str>,
    type_name: &'static str,
    declared_at: &'static Location<'static>,
    pub(crate) policy: Policy,
    pub(crate) value_size: usize,
    /// The key has an inherit hook (cheap filter for `inherit::capture`).
    pub(crate) inheritable: bool,
    /// The key opted in to showing values in own-thread reports.
    pub(crate) revealing: bool,
    label: OnceLock<Label>,
    alive: AtomicBool,
    pub(crate) ops: &'static KeyOps,
}

impl KeyShared {
    /// A live key with `id` (fresh from `crate::slots::allocate`) and two
    /// holder references, both the caller's (`keyref::NewKey`), whose values
    /// `ops` handles.
    #[inline]
    pub(crate) fn new(id: u64, meta: KeyMeta, ops: &'static KeyOps) -> Self {
        Self {
            holders: AtomicUsize::new(2),
            pins: AtomicUsize::new(1),
            id,
            name: meta.name,
            type_name: meta.type_name,
            declared_at: meta.declared_at,
            policy: meta.policy,
            value_size: meta.value_size,
            inheritable: meta.inheritable,
            revealing: meta.revealing,
            label: OnceLock::new(),
            alive: AtomicBool::new(true),
            ops,
        }
    }

    #[inline]
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Marks the key dead (once, from the handle's `drop`).
    #[inline]
    pub(crate) fn kill(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Pins, plus one for all holders together.
    #[inline]
    pub(crate) fn pin_count(&self) -> usize {
        self.pins.load(Ordering::Acquire)
    }

    /// The handle (while alive) plus every entry, on any thread.
    #[inline]
    pub(crate) fn holder_count(&self) -> usize {
        self.holders.load(Ordering::Acquire)
    }

    /// Named with `named`, or labelled.
    #[inline]
    pub(crate) fn is_labelled(&self) -> bool {
        self.name.is_some() || self.label.get().is_some()
    }

    /// Labels the key unless it was labelled already (a static name given
    /// with `named` also counts as a label). Returns whether it labelled it.
    pub(crate) fn set_label(
        &self,
        name: &'static str,
        declared_at: Option<&'static Location<'static>>,
    ) -> bool {
        if self.is_labelled() {
            return false;
        }
        let declared_at = declared_at.unwrap_or(self.declared_at);
        self.label.set(Label { name, declared_at }).is_ok()
    }

    pub(crate) fn name(&self) -> Option<&'static str> {
        self.label.get().map(|l| l.name).or(self.name)
    }

    pub(crate) fn declared_at(&self) -> &'static Location<'static> {
        self.label.get().map_or(self.declared_at, |l| l.declared_at)
    }

    /// A copy of the reportable metadata.
    pub(crate) fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id,
            name: self.name(),
            type_name: self.type_name,
            declared_at: self.declared_at(),
            policy: self.policy,
            alive: self.is_alive(),
        }
    }
}

/// Everything a report needs to know about a key. Never contains a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyInfo {
    /// Unique for the life of the process, never reused.
    pub id: u64,
    /// The name given with `named` (or by the derive), if any.
    pub name: Option<&'static str>,
    /// `core::any::type_name` of the value type.
    pub type_name: &'static str,
    /// Where the `ThreadLocal` was declared (the constructor call, or the
    /// field, when named by the derive).
    pub declared_at: &'static Location<'static>,
    /// Task-scoped or per-thread.
    pub policy: Policy,
    /// False once the `ThreadLocal` handle was dropped.
    pub alive: bool,
}

impl KeyInfo {
    /// The name, or `ThreadLocal<type>@file:line` when the key has none.
    pub fn display_name(&self) -> String {
        match self.name {
            Some(name) => name.to_owned(),
            None => format!("ThreadLocal<{}>@{}", self.type_name, self.declared_at),
        }
    }
}
