use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

struct Service {
    conn: ThreadLocal<u64>,
}

impl Service {
    #[thread_local_scoped(KEY, self.conn, KEY, self . conn)]
    fn keys(&self) {}

    #[thread_local_scoped(self, self)]
    fn services(&self) {}

    #[thread_local_scoped(KEY, task = "a", task = "b")]
    fn tasks(&self) {}
}

fn main() {
    let service = Service { conn: ThreadLocal::new() };
    service.keys();
    service.services();
    service.tasks();
}
