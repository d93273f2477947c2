//! Declared inside a function (and a block), as std allows.
use std::cell::Cell;

use tl_core::thread_local;

fn counter() -> u32 {
    thread_local! { static CALLS: Cell<u32> = const { Cell::new(0) } }
    CALLS.set(CALLS.get() + 1);
    CALLS.get()
}

fn main() {
    counter();
    assert_eq!(counter(), 2);
    {
        thread_local!(static LOCAL: u8 = 1);
        assert_eq!(LOCAL.with(|l| *l), 1);
    }
}
