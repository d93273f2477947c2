use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(KEY, task = checkout)]
fn identifier() {}

#[thread_local_scoped(KEY, task =)]
fn missing() {}

fn main() {
    identifier();
    missing();
}
