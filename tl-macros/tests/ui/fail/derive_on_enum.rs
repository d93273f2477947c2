use tl_core::ThreadLocal;
use tl_macros::ThreadLocalScoped;

#[derive(ThreadLocalScoped)]
enum Service {
    One(#[thread_local_scoped] ThreadLocal<u64>),
}

fn main() {
    let _ = Service::One(ThreadLocal::new());
}
