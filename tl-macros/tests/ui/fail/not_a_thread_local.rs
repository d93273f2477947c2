use std::cell::Cell;

use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static COUNT: u64 = 0;

struct Service {
    conn: Cell<u64>,
    key: ThreadLocal<u64>,
}

impl Service {
    #[thread_local_scoped(COUNT, self.key)]
    fn static_is_not(&self) {}

    #[thread_local_scoped(self.conn)]
    fn field_is_not(&self) {}
}

fn main() {
    let service = Service { conn: Cell::new(0), key: ThreadLocal::new() };
    service.static_is_not();
    service.field_is_not();
}
