use tl_macros::thread_local_scoped;

#[thread_local_scoped]
enum Mode {
    On,
}

fn main() {
    let _ = Mode::On;
}
