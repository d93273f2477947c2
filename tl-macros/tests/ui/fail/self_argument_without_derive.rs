use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();

struct Service {
    conn: ThreadLocal<u64>,
}

impl Service {
    #[thread_local_scoped(REQUEST_ID, self)]
    fn handle(&mut self) {
        REQUEST_ID.set(1);
        self.conn.set(1);
    }
}

fn main() {
    Service { conn: ThreadLocal::new() }.handle();
}
