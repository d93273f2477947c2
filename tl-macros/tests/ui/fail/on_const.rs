use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

#[thread_local_scoped]
const KEY: ThreadLocal<u64> = ThreadLocal::new();

fn main() {
    let _ = KEY;
}
