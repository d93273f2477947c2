//! Several declarations in one invocation, of both forms, with and without
//! the last `;`.
use std::cell::Cell;

use tl_core::thread_local;

thread_local! {
    static A: Cell<u8> = Cell::new(1);
    static B: Cell<u8> = const { Cell::new(2) };
    static C: u8 = 3
}

thread_local! {
    static D: u8 = const { 4 }
}

thread_local! {
    static E: u8 = 5;
    static F: u8 = const { 6 };
}

thread_local! {}

fn main() {
    let sum = A.get() + B.get() + C.with(|c| *c) + D.with(|d| *d);
    assert_eq!(sum + E.with(|e| *e) + F.with(|f| *f), 21);
}
