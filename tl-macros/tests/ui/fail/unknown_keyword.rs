use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(KEY, name = "checkout")]
fn handler() {}

fn main() {
    handler();
}
