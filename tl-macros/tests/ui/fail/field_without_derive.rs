use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

struct Service {
    #[thread_local_scoped]
    current_user: ThreadLocal<u64>,
}

fn main() {}
