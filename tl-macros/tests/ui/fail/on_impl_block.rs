use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

struct Service;

#[thread_local_scoped(KEY)]
impl Service {
    fn handle(&self) {
        KEY.set(1);
    }
}

fn main() {
    Service.handle();
}
