//! `static NAME: T = init;`: the initializer runs lazily, once per thread.
use std::cell::RefCell;
use std::collections::HashMap;

use tl_core::thread_local;

fn start() -> u64 {
    7
}

thread_local! {
    static NUMBER: u64 = start() * 6;
}
thread_local!(static MAP: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new()));
thread_local![static BOXED: Box<dyn Fn() -> u8> = Box::new(|| 1);];

fn main() {
    assert_eq!(NUMBER.with(|n| *n), 42);
    MAP.with_borrow_mut(|m| m.insert("a".to_owned(), vec![1]));
    assert_eq!(BOXED.with(|f| f()), 1);
}
