//! Attributes and doc comments on declarations, under `missing_docs`.
#![deny(missing_docs, warnings)]
//! A crate with documented thread-locals.

use std::cell::Cell;

use tl_core::thread_local;

thread_local! {
    /// The number of requests served by this thread.
    ///
    /// Two lines of docs.
    pub static SERVED: Cell<u64> = const { Cell::new(0) };

    #[allow(dead_code)]
    static UNUSED: u8 = 0;

    #[cfg(any())]
    static COMPILED_OUT: u8 = missing_function();

    /// Documented, with an attribute after the docs.
    #[allow(clippy::declare_interior_mutable_const)]
    #[doc(alias = "scratch_buffer")]
    pub static SCRATCH: Cell<usize> = Cell::new(0)
}

fn main() {
    SERVED.set(SERVED.get() + 1);
    SCRATCH.set(1);
}
