//! Code written for std compiles unchanged but for the `use` line: keys
//! passed as `&'static LocalKey<T>`, `try_with` errors, `Cell`/`RefCell`
//! methods.
use std::cell::{Cell, RefCell};

use tl_core::{AccessError, LocalKey, thread_local};

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
}

fn enter(key: &'static LocalKey<Cell<usize>>) -> usize {
    key.replace(key.get() + 1)
}

fn log(line: &str) -> Result<(), AccessError> {
    LOG.try_with(|log| log.borrow_mut().push(line.to_owned()))
}

fn main() {
    enter(&DEPTH);
    DEPTH.take();
    log("x").unwrap();
    let lines: Vec<String> = LOG.take();
    LOG.set(lines);
    LOG.with_borrow(|log| assert_eq!(log.len(), 1));
}
