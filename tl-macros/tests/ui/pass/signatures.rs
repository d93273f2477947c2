// Signatures are kept as written: visibility, docs and other attributes,
// generics, lifetimes, `where` clauses, `impl Trait`, receivers by value
// and by reference, `unsafe fn`, `extern fn`, raw identifiers.
#![deny(missing_docs, unused)]
//! Crate docs.

use std::fmt::Debug;

use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<String> = ThreadLocal::new();

/// Docs stay on the function.
#[thread_local_scoped(KEY)]
#[must_use = "kept"]
pub fn documented<'a, T: Debug + ?Sized, const N: usize>(value: &'a T, _array: [u8; N]) -> impl Debug + 'a
where
    T: 'a,
{
    KEY.set(format!("{value:?}"));
    value
}

/// Dyn returns and coercions in the tail expression still work.
#[thread_local_scoped(KEY)]
pub fn boxed() -> Box<dyn Debug> {
    KEY.set(String::new());
    Box::new(1)
}

/// # Safety
/// None needed; the body still needs its own `unsafe` blocks.
#[thread_local_scoped(KEY)]
pub unsafe fn unsafe_fn(ptr: *const u8) -> u8 {
    KEY.set(String::new());
    // SAFETY: tested with a valid pointer.
    unsafe { *ptr }
}

/// ABI kept.
#[thread_local_scoped(KEY)]
pub extern "C" fn extern_fn() -> u8 {
    KEY.set(String::new());
    1
}

/// Raw identifiers name the task.
#[thread_local_scoped(KEY)]
pub fn r#match() {
    KEY.set(String::new());
}

/// A service.
pub struct Service {
    key: ThreadLocal<u8>,
}

impl Service {
    /// By value.
    #[thread_local_scoped(self.key)]
    pub fn consume(self) -> u8 {
        self.key.set(1);
        self.key.get().unwrap_or(0)
    }

    /// By mutable reference.
    #[thread_local_scoped(self.key)]
    pub fn mutate(&mut self) -> &mut Self {
        self.key.set(2);
        self
    }

    /// Pinned.
    #[thread_local_scoped(self.key)]
    pub fn pinned(self: std::pin::Pin<&mut Self>) {
        self.key.set(3);
    }
}

fn main() {
    let _ = documented("x", [0; 2]);
    let _ = boxed();
    // SAFETY: a reference is a valid pointer.
    let _ = unsafe { unsafe_fn(&1) };
    let _ = extern_fn();
    r#match();
    let mut service = Service { key: ThreadLocal::new() };
    service.mutate();
    std::pin::Pin::new(&mut service).pinned();
    assert_eq!(service.consume(), 1);
    assert!(!KEY.is_set());
}
