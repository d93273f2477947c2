use tl_core::ThreadLocal;

struct Service {
    #[thread_local_scoped]
    current_user: ThreadLocal<u64>,
}

fn main() {}
