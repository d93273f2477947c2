use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

struct Service {
    conn: ThreadLocal<u64>,
}

impl Service {
    #[thread_local_scoped]
    async fn handle(&self) {
        self.conn.set(1);
    }
}

fn main() {
    let service = Service { conn: ThreadLocal::new() };
    let _future = service.handle();
}
