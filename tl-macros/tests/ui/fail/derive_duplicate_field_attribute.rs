use tl_core::ThreadLocal;
use tl_macros::ThreadLocalScoped;

#[derive(ThreadLocalScoped)]
struct Service {
    #[thread_local_scoped]
    #[thread_local_scoped]
    current_user: ThreadLocal<u64>,
}

fn main() {
    let _ = Service { current_user: ThreadLocal::new() };
}
