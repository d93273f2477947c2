use tl_core::ThreadLocal;
use tl_macros::ThreadLocalScoped;

#[derive(ThreadLocalScoped)]
struct Service {
    #[thread_local_scoped(name = "user")]
    current_user: ThreadLocal<u64>,
    #[thread_local_scoped = "conn"]
    conn: ThreadLocal<u64>,
}

fn main() {
    let _ = Service { current_user: ThreadLocal::new(), conn: ThreadLocal::new() };
}
