use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

struct Service {
    conn: ThreadLocal<u64>,
}

impl Service {
    #[thread_local_scoped(self.conn)]
    fn new() -> Self {
        Self { conn: ThreadLocal::new() }
    }
}

fn main() {
    let _ = Service::new();
}
