use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(KEY)]
const fn handler() -> u64 {
    1
}

fn main() {
    let _ = handler();
}
