use std::rc::Rc;

use tl_core::ThreadLocal;

static KEY: ThreadLocal<Rc<u64>> = ThreadLocal::new();

fn require_send<T: Send>(_: T) {}

fn main() {
    // The value is dropped on whichever thread drops the future: not `Send`.
    require_send(KEY.scope_future(Rc::new(1), async {}));
}
