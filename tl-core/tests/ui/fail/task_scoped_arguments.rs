//! `#[task_scoped]` takes no arguments: with them it is not the marker.
use tl_core::thread_local;

thread_local! {
    #[task_scoped(always)]
    static USER: u8 = 0;
}

fn main() {}
