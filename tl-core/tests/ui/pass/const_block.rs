//! `static NAME: T = const { init };`: the initializer is evaluated at
//! compile time.
use std::cell::{Cell, RefCell};

use tl_core::thread_local;

const START: u32 = 3;

thread_local! {
    static COUNT: Cell<u32> = const { Cell::new(START) };
    static LIST: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static BLOCK: u32 = const {
        let base = START * 2;
        base + 1
    };
}

fn main() {
    COUNT.set(COUNT.get() + 1);
    LIST.with_borrow_mut(|list| list.push(COUNT.get()));
    assert_eq!(BLOCK.with(|b| *b), 7);
}
