use std::cell::Cell;

use tl_core::ThreadLocal;
use tl_macros::{ThreadLocalScoped, thread_local_scoped};

type Alias = ThreadLocal<u64>;

#[derive(ThreadLocalScoped)]
struct Service {
    #[thread_local_scoped]
    count: Cell<u64>,
    #[thread_local_scoped]
    many: Vec<ThreadLocal<u64>>,
    #[thread_local_scoped]
    alias: Alias,
    #[thread_local_scoped]
    conn: ThreadLocal<u64>,
}

impl Service {
    // Still compiles: the derive keeps the fields it could use.
    #[thread_local_scoped]
    fn handle(&self) {
        self.conn.set(1);
    }
}

fn main() {
    let service = Service {
        count: Cell::new(0),
        many: Vec::new(),
        alias: ThreadLocal::new(),
        conn: ThreadLocal::new(),
    };
    service.handle();
}
