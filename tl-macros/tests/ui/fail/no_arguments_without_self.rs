use tl_macros::thread_local_scoped;

#[thread_local_scoped]
fn handler() {}

fn main() {
    handler();
}
