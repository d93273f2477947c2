//! A `const { .. }` initializer must be evaluable at compile time, as with std.
use tl_core::thread_local;

thread_local! {
    static NAME: String = const { String::from("not const") };
}

fn main() {}
